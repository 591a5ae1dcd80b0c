"""Bounded heavy work: a per-worker cap on concurrent operations with a short wait queue.

``WorkLimiter.run(fn, *args)`` runs ``fn`` in a worker thread (never on the event loop) when
one of ``max_concurrency`` slots is free. Up to ``max_queue`` requests may wait, each at most
``queue_timeout_s``; beyond that the answer is an immediate 503 with ``Retry-After``
(imgproxy-style load shedding, so memory never piles up behind a burst). A call that runs
longer than ``processing_timeout_s`` is answered 504; its thread finishes in the background
and keeps its slot until then, so the cap still bounds CPU and memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from .config import Settings
from .errors import OverloadedError, ProcessingTimeoutError

T = TypeVar("T")


class WorkLimiter:
    """Admission control for CPU-bound work in one worker process."""

    def __init__(self, settings: Settings) -> None:
        self._slots = anyio.CapacityLimiter(settings.max_concurrency)
        self._max_queue = settings.max_queue
        self._queue_timeout = settings.queue_timeout_s
        self._timeout = settings.processing_timeout_s
        self._waiting = 0

    @property
    def in_flight(self) -> int:
        """Operations holding a slot now."""
        return int(self._slots.borrowed_tokens)

    def _overloaded(self) -> OverloadedError:
        from .observability import count_rejection

        count_rejection("overload")
        retry = str(max(1, math.ceil(self._queue_timeout)))
        return OverloadedError(
            "the service is at its limit of concurrent work; retry shortly",
            headers={"Retry-After": retry},
        )

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a thread once a slot is free; 503 if none frees up in time."""
        if self._slots.available_tokens == 0 and self._waiting >= self._max_queue:
            raise self._overloaded()
        token = object()
        self._waiting += 1
        try:
            with anyio.fail_after(self._queue_timeout):
                await self._slots.acquire_on_behalf_of(token)
        except TimeoutError:
            raise self._overloaded() from None
        finally:
            self._waiting -= 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._slots.release_on_behalf_of(token)

        def work() -> T:
            try:
                return fn(*args)
            finally:
                # The slot is held until the thread finishes, even after a 504.
                anyio.from_thread.run_sync(release)

        try:
            with anyio.fail_after(self._timeout):
                return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except TimeoutError:
            raise ProcessingTimeoutError(
                f"processing took longer than {self._timeout:g} s and was abandoned"
            ) from None
