"""Give freed heap memory back to the OS when a worker falls idle (glibc ``malloc_trim``).

glibc keeps memory that requests freed: large arrays are allocated from the heap once its
dynamic mmap threshold has risen (it rises to the size of the largest block freed, up to 32
MiB), and a heap only shrinks from its top. After a burst of large uploads a worker's RSS
therefore stays at the burst's high-water mark, up to ``max_concurrency`` operations and
``max_concurrency + max_queue`` bodies' worth (measurements:
docs/decisions/0003-idle-heap-trimming.md).

:class:`IdleTrimmer` trims when the worker has no admitted request left, at most once a
second, and only when RSS grew by ``threshold`` bytes since the last trim, so steady traffic
(RSS flat) never pays for it. The trim runs in a thread (it holds the allocator's locks while
it walks the heaps; the event loop keeps serving). Where ``malloc_trim`` does not exist
(musl, macOS) or ``/proc`` cannot be read, it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Final

__all__ = ["IdleTrimmer", "malloc_trim", "resident_bytes"]

logger = logging.getLogger("imgfilter.memory")

CHECK_INTERVAL_S: Final = 1.0
_PAGE_BYTES: Final = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    trim: Callable[[int], int] = function
    return trim


malloc_trim: Final = _load_malloc_trim()
"""glibc's ``malloc_trim(pad)``, or None where the C library has none."""


def resident_bytes() -> int | None:
    """This process's resident set size in bytes (``/proc/self/statm``), None if unknown."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None


class IdleTrimmer:
    """Trim the heap when a worker falls idle after RSS grew by ``threshold`` bytes.

    Call :meth:`idle` whenever the worker's last admitted request ends; it is cheap when
    nothing needs doing (a clock read, and at most once a second a read of ``/proc``).
    ``threshold`` 0 disables trimming.
    """

    def __init__(
        self,
        threshold: int,
        *,
        trim: Callable[[int], int] | None = malloc_trim,
        rss: Callable[[], int | None] = resident_bytes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self._trim = trim
        self._rss = rss
        self._clock = clock
        self._baseline = rss() or 0
        self._next_check = 0.0
        self._running = threading.Lock()
        self.trims = 0

    @property
    def enabled(self) -> bool:
        """True when trimming is on and possible here."""
        return self.threshold > 0 and self._trim is not None

    def idle(self) -> threading.Thread | None:
        """Start a trim in a thread if RSS grew enough since the last; return the thread."""
        trim = self._trim
        if self.threshold <= 0 or trim is None:
            return None
        now = self._clock()
        if now < self._next_check:
            return None
        self._next_check = now + CHECK_INTERVAL_S
        rss = self._rss()
        if rss is None or rss - self._baseline < self.threshold:
            return None
        if not self._running.acquire(blocking=False):
            return None  # a trim is still running
        thread = threading.Thread(
            target=self._run, args=(trim, rss), name="malloc-trim", daemon=True
        )
        thread.start()
        return thread

    def _run(self, trim: Callable[[int], int], before: int) -> None:
        try:
            started = time.perf_counter()
            trim(0)
            elapsed = time.perf_counter() - started
            after = self._rss()
            self._baseline = after if after is not None else before
            self.trims += 1
            logger.debug(
                "heap trimmed",
                extra={
                    "rss_before_mib": round(before / 2**20, 1),
                    "rss_after_mib": round(self._baseline / 2**20, 1),
                    "trim_ms": round(elapsed * 1000, 2),
                },
            )
        finally:
            self._running.release()
