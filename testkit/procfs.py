"""Processes read from ``/proc`` (Linux): children, liveness, workers, RSS, CPU time, sockets.

The one place tests and benchmarks parse ``/proc``. Each function answers for a process that
may vanish while it is read: a gone process reads as empty, False or None.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> set[int]:
    """Direct child PIDs of ``pid`` (empty if it is gone)."""
    found: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found.update(int(child) for child in (task / "children").read_text().split())
    return found


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (children, theirs, ...), less multiprocessing's resource
    tracker (a helper, not a worker); depth first."""
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in sorted(children(stack.pop())):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if b"resource_tracker" not in cmdline:
                found.append(child)
            stack.append(child)
    return found


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an exited child not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def dead_pid() -> int:
    """The PID of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def worker_pids(supervisor: int) -> set[int]:
    """Live (non-zombie) worker processes of a uvicorn supervisor: children in ``spawn_main``."""
    workers: set[int] = set()
    for pid in children(supervisor):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"spawn_main" in cmdline and running(pid):
            workers.add(pid)
    return workers


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB (``VmRSS``), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def established_connections(pid: int, port: int) -> int:
    """TCP connections to local ``port``, in state ESTABLISHED, whose socket ``pid`` holds."""
    inodes: set[str] = set()
    with contextlib.suppress(FileNotFoundError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                established = state == "01"
                if established and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
                    count += 1
    return count
