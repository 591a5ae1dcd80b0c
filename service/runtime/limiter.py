"""Bounded heavy work: a per-worker cap on concurrent operations with a short wait queue.

``WorkLimiter.run(fn, *args)`` runs ``fn`` in a worker thread (never on the event loop) when
one of ``max_concurrency`` slots is free. Up to ``max_queue`` requests may wait, each at most
``queue_timeout_s``; beyond that the answer is an immediate 503 with ``Retry-After``
(imgproxy-style load shedding, so memory never piles up behind a burst). A call that runs
longer than ``processing_timeout_s`` is answered 504; its thread finishes in the background
and keeps its slot until then, so the cap still bounds CPU and memory.

``WorkLimiter.admit()`` bounds memory before that: a request must be admitted before its body
is read, and at most ``max_concurrency + max_queue`` requests are admitted at once per worker
(the rest get 503 at once). Bodies in memory are therefore at most that many times
``max_upload_bytes``. The number admitted is the worker's *load*.

The limiter knows nothing of what others do with its load; it offers hooks, which the worker's
lifespan (:mod:`service.runtime.lifecycle`) subscribes:

* ``on_idle()``: called when the last admitted request ends (the heap trimmer,
  :mod:`service.runtime.memory`);
* :meth:`WorkLimiter.watch_load`: ``on_load(admitted)`` on every change of the load, and a
  ``release_when(admitted)`` predicate that :meth:`WorkLimiter.should_release_connection`
  asks (the load board, :mod:`service.runtime.balancing`).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio
import anyio.to_thread

from ..config import Settings
from ..errors import OverloadedError, ProcessingTimeoutError
from .observability import count_rejection

__all__ = ["IdleHook", "LoadHook", "ReleaseRule", "WorkLimiter"]

T = TypeVar("T")

LoadHook = Callable[[int], object]
"""Called with the number of requests admitted, each time it changes."""
IdleHook = Callable[[], object]
"""Called when the last admitted request ends."""
ReleaseRule = Callable[[int], bool]
"""Given the number admitted, True if the current response should close its connection."""


class WorkLimiter:
    """Admission control for CPU-bound work in one worker process."""

    def __init__(self, settings: Settings, *, on_idle: IdleHook | None = None) -> None:
        self._slots = anyio.CapacityLimiter(settings.max_concurrency)
        self._max_queue = settings.max_queue
        self._queue_timeout = settings.queue_timeout_s
        self._timeout = settings.processing_timeout_s
        self._waiting = 0
        self._admitted = 0
        self._max_admitted = settings.max_concurrency + settings.max_queue
        self.on_idle = on_idle
        self._on_load: LoadHook | None = None
        self._release_when: ReleaseRule | None = None

    def watch_load(self, on_load: LoadHook | None, release_when: ReleaseRule | None = None) -> None:
        """Report the load to ``on_load`` (now, then on every change); ask ``release_when``.

        ``watch_load(None)`` detaches both; a later call replaces the earlier hooks.
        """
        self._on_load = on_load
        self._release_when = release_when
        if on_load is not None:
            on_load(self._admitted)

    def should_release_connection(self) -> bool:
        """What the ``release_when`` predicate says of the current load; False without one.

        Call it while the current request is admitted; True then asks the client to
        reconnect (``Connection: close``), see :mod:`service.runtime.balancing`.
        """
        release_when = self._release_when
        return release_when is not None and release_when(self._admitted)

    @property
    def admitted(self) -> int:
        """Requests admitted now (the worker's load)."""
        return self._admitted

    @property
    def in_flight(self) -> int:
        """Operations holding a slot now."""
        return int(self._slots.borrowed_tokens)

    def _overloaded(self) -> OverloadedError:
        count_rejection("overload")
        return OverloadedError(
            "the service is at its limit of concurrent work; retry shortly",
            retry_after=max(1, math.ceil(self._queue_timeout)),
        )

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of ``max_concurrency + max_queue`` admissions; 503 when none is left."""
        if self._admitted >= self._max_admitted:
            raise self._overloaded()
        self._admitted += 1
        if self._on_load is not None:
            self._on_load(self._admitted)
        try:
            yield
        finally:
            self._admitted -= 1
            if self._on_load is not None:
                self._on_load(self._admitted)
            if not self._admitted and self.on_idle is not None:
                self.on_idle()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in a thread once a slot is free; 503 if none frees up in time."""
        token = object()
        try:
            # A free slot is taken at once; only a caller that really waits counts as queued
            # (``acquire_on_behalf_of`` yields after acquiring, which would count it meanwhile).
            self._slots.acquire_on_behalf_of_nowait(token)
        except anyio.WouldBlock:
            if self._waiting >= self._max_queue:
                raise self._overloaded() from None
            self._waiting += 1
            try:
                with anyio.fail_after(self._queue_timeout):
                    await self._slots.acquire_on_behalf_of(token)
            except TimeoutError:
                raise self._overloaded() from None
            finally:
                self._waiting -= 1
        # The slot goes back on the event loop once the thread is done. Only a thread the caller
        # abandoned (504, or a cancelled request) hands it back itself, when it finishes: the
        # cap keeps bounding CPU and memory. (Releasing through a blocking
        # ``anyio.from_thread.run_sync`` in every thread would cost a loop round trip per
        # request; docs/performance.md.)
        lock = threading.Lock()
        finished = abandoned = False

        def release() -> None:
            self._slots.release_on_behalf_of(token)

        def work() -> T:
            nonlocal finished
            try:
                return fn(*args)
            finally:
                with lock:
                    finished = True
                    give_back = abandoned
                if give_back:
                    with contextlib.suppress(RuntimeError):  # the event loop is gone (shutdown)
                        anyio.from_thread.run_sync(release)

        try:
            with anyio.fail_after(self._timeout):
                return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except TimeoutError:
            raise ProcessingTimeoutError(
                f"processing took longer than {self._timeout:g} s and was abandoned"
            ) from None
        finally:
            with lock:
                abandoned = not finished
            if not abandoned:
                release()
