"""Returning freed heap memory to the OS when a worker falls idle (service.runtime.memory)."""

from __future__ import annotations

import ctypes
import threading

import pytest

from service.runtime import memory
from service.runtime.lifecycle import work_limiter
from service.runtime.limiter import WorkLimiter
from service.runtime.memory import IdleTrimmer, resident_bytes
from tests.conftest import make_settings

MIB = 2**20


class FakeProcess:
    """An RSS, a clock and a trim function that a test moves by hand."""

    def __init__(self, rss: int = 100 * MIB) -> None:
        self.rss: int | None = rss
        self.now = 1000.0
        self.trimmed: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def trim(self, pad: int) -> int:
        self.gate.wait(10)
        self.trimmed.append(pad)
        if self.rss is not None:
            self.rss = 100 * MIB
        return 1

    def trimmer(self, threshold: int = 32 * MIB) -> IdleTrimmer:
        return IdleTrimmer(threshold, trim=self.trim, rss=lambda: self.rss, clock=lambda: self.now)


def _idle(trimmer: IdleTrimmer) -> bool:
    """Call ``idle``; True if it started a trim (waited for)."""
    thread = trimmer.idle()
    if thread is not None:
        thread.join(10)
    return thread is not None


def test_trims_only_after_rss_grew_by_the_threshold() -> None:
    fake = FakeProcess()
    trimmer = fake.trimmer()
    fake.rss = 100 * MIB + 32 * MIB - 1
    assert not _idle(trimmer)
    fake.now += 1.0
    fake.rss = 132 * MIB
    assert _idle(trimmer)
    assert fake.trimmed == [0]
    assert trimmer.trims == 1
    fake.now += 1.0
    fake.rss = 131 * MIB  # the baseline is now the trimmed 100 MiB
    assert not _idle(trimmer)


def test_checks_at_most_once_a_second() -> None:
    fake = FakeProcess()
    trimmer = fake.trimmer()
    assert not _idle(trimmer)  # a check: nothing to do
    fake.rss = 500 * MIB
    fake.now += memory.CHECK_INTERVAL_S - 0.01
    assert not _idle(trimmer)  # too soon after the last check
    fake.now += 0.01
    assert _idle(trimmer)
    fake.rss = 500 * MIB
    assert not _idle(trimmer)  # too soon after the trim


def test_one_trim_at_a_time() -> None:
    fake = FakeProcess(rss=100 * MIB)
    trimmer = fake.trimmer()
    fake.rss = 200 * MIB
    fake.gate.clear()
    running = trimmer.idle()
    assert running is not None
    fake.now += 5.0
    assert trimmer.idle() is None  # the first is still in malloc_trim
    fake.gate.set()
    running.join(10)
    assert fake.trimmed == [0]


def test_disabled_by_zero_threshold_missing_trim_or_unknown_rss() -> None:
    fake = FakeProcess()
    fake.rss = 10_000 * MIB
    off = IdleTrimmer(0, trim=fake.trim, rss=lambda: fake.rss, clock=lambda: fake.now)
    assert not off.enabled
    assert not _idle(off)
    no_libc = IdleTrimmer(MIB, trim=None, rss=lambda: fake.rss, clock=lambda: fake.now)
    assert not no_libc.enabled
    assert not _idle(no_libc)
    unknown = IdleTrimmer(MIB, trim=fake.trim, rss=lambda: None, clock=lambda: fake.now)
    assert unknown.enabled
    assert not _idle(unknown)
    assert fake.trimmed == []


def test_work_limiter_reports_idle_when_its_last_request_ends() -> None:
    calls: list[int] = []
    limiter = WorkLimiter(
        make_settings(max_concurrency=1, max_queue=4),
        on_idle=lambda: calls.append(limiter.admitted),
    )
    with limiter.admit():
        with limiter.admit():
            pass
        assert calls == []
    assert calls == [0]


def test_settings_threshold_reaches_the_limiter() -> None:
    """The app's limiter (``lifecycle.work_limiter``) has the trimmer on its idle hook."""
    trimmer = work_limiter(make_settings(idle_trim_mib=7)).on_idle.__self__  # type: ignore[union-attr]
    assert isinstance(trimmer, IdleTrimmer)
    assert trimmer.threshold == 7 * MIB
    off = work_limiter(make_settings(idle_trim_mib=0)).on_idle.__self__  # type: ignore[union-attr]
    assert not off.enabled


@pytest.mark.skipif(memory.malloc_trim is None, reason="no glibc malloc_trim here")
def test_glibc_keeps_freed_heap_until_trimmed() -> None:
    """The allocator behaviour the trimmer exists for, and that trimming undoes it.

    Freeing an 8 MiB block raises glibc's mmap threshold, so the next 1 MiB blocks come from
    the heap; freeing all but the last (which pins the heap's top) leaves them resident.
    """
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

    def touched(size: int) -> int:
        pointer = libc.malloc(size)
        assert pointer
        libc.memset(pointer, 1, size)
        return int(pointer)

    libc.free(touched(8 * MIB))
    blocks = [touched(MIB) for _ in range(96)]
    for pointer in blocks[:-1]:
        libc.free(pointer)
    before = resident_bytes()
    assert before is not None
    trimmer = IdleTrimmer(1, clock=lambda: 1e9)
    trimmer._baseline = 0  # whatever came before: grown past the threshold
    assert _idle(trimmer)
    after = resident_bytes()
    libc.free(blocks[-1])
    assert after is not None
    assert before - after > 64 * MIB, (before / MIB, after / MIB)
