"""Spread keep-alive connections over the worker processes by their load.

Each worker listens on its own ``SO_REUSEPORT`` socket (:mod:`service.runtime.worker`), and the
kernel gives a new connection to one of them by a hash of its addresses, blind to load.
Keep-alive clients (benchmarks, SDKs, a proxy's upstream pool) stay where they landed: 8
connections over 2 workers split binomially (4/4 with probability C(8,4)/2**8, about 27 %),
and at 2/6 one worker queues six requests while the other idles. The measurements before
and after: docs/decisions/0002-load-board.md.

A server cannot move a connection, but it can end one: a worker busier than a sibling
answers ``Connection: close``, the client reconnects, and the kernel hashes the new
connection afresh (new source port), so with ``N`` workers it lands elsewhere with
probability ``(N - 1) / N``. The rule, checked once per processed response while that
response's own request still counts::

    close  iff  load_self >= load_sibling + 2  for some live sibling

where a worker's *load* is its requests admitted for processing (reading, queued or running;
:meth:`service.runtime.limiter.WorkLimiter.admit`). For closed-loop clients (each connection
sends its next request when the answer arrives) load is the worker's busy connections; a
response in transit lowers a sibling's figure by one, so the margin of 2 keeps a balanced
4/4 (read as 4 against 3 or 4) from closing anything, while 5/3 and worse converge in a
few responses. Idle keep-alive connections carry no load and are never closed for balance.
Unlike a server closing an idle connection, this cannot race a client's next request: the
close is announced in the response the client is reading (HTTP/1.1 clients that pipeline
requests must retry the ones after it, as RFC 9112 requires of them anyway).

The workers of one server share a :class:`LoadBoard`: a small file of ``(pid, load)`` int64
records, memory-mapped by each worker, who writes only its own record. ``serve`` creates it
and names it in ``IMGFILTER_LOAD_BOARD`` before starting the workers; a worker takes a
record at ASGI lifespan startup (:func:`join_from_environment`) and frees it at shutdown.
A record whose process died (killed worker) is skipped by readers and reused by its
replacement.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
from pathlib import Path
from typing import Final

__all__ = ["BOARD_ENV", "MARGIN", "LoadBoard", "join_from_environment"]

BOARD_ENV: Final = "IMGFILTER_LOAD_BOARD"
MARGIN: Final = 2
_FIELDS: Final = 2  # int64s per record: pid, load
_RECORD_BYTES: Final = 8 * _FIELDS

logger = logging.getLogger("imgfilter.balancing")


def _alive(pid: int) -> bool:
    """True if a process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LoadBoard:
    """One worker's view of the shared load records; it writes only its own.

    Build the file with :meth:`create` (supervisor), then :meth:`join` in each worker.
    """

    __slots__ = ("_fd", "_load_at", "_map", "_pid_at", "_view", "path", "pid")

    def __init__(self, path: Path, fd: int, mapping: mmap.mmap, slot: int, pid: int) -> None:
        self.path = path
        self.pid = pid
        self._fd = fd
        self._map = mapping
        self._view = memoryview(mapping).cast("q")
        self._pid_at = slot * _FIELDS
        self._load_at = self._pid_at + 1

    @staticmethod
    def create(path: Path, slots: int) -> None:
        """Write an empty board of ``slots`` records at ``path`` (new file, mode 0600)."""
        if slots < 1:
            raise ValueError("a board needs at least one slot")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(bytes(slots * _RECORD_BYTES))

    @classmethod
    def join(cls, path: Path, pid: int | None = None) -> LoadBoard | None:
        """Take a free record for process ``pid`` (default: this one); None if all are taken.

        A record is free when its pid is 0 or names a process that no longer exists; the
        caller's own earlier record is taken again. Claims are serialised by ``flock``.

        Raises
        ------
        OSError
            The file cannot be opened or mapped.
        ValueError
            The file is not a board (empty, or not a whole number of records).
        """
        pid = os.getpid() if pid is None else pid
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            if size == 0 or size % _RECORD_BYTES:
                raise ValueError(f"{path} is not a load board ({size} bytes)")
            mapping = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        view = memoryview(mapping).cast("q")
        slot: int | None = None
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            owners = [view[i] for i in range(0, len(view), _FIELDS)]
            mine = [i for i, owner in enumerate(owners) if owner == pid]
            free = [i for i, owner in enumerate(owners) if owner == 0 or not _alive(owner)]
            candidates = mine + free
            slot = candidates[0] if candidates else None
            if slot is not None:
                view[slot * _FIELDS + 1] = 0
                view[slot * _FIELDS] = pid
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            view.release()
        if slot is None:
            mapping.close()
            os.close(fd)
            return None
        return cls(path, fd, mapping, slot, pid)

    def publish(self, load: int) -> None:
        """Record this worker's load (requests admitted now)."""
        self._view[self._load_at] = load

    def siblings(self) -> list[tuple[int, int]]:
        """``(pid, load)`` of the other taken records (dead processes included)."""
        view = self._view
        return [
            (view[i], view[i + 1])
            for i in range(0, len(view), _FIELDS)
            if view[i] and i != self._pid_at
        ]

    def busier_than_a_sibling(self, load: int, margin: int = MARGIN) -> bool:
        """True if a live sibling's load is at most ``load - margin``."""
        view = self._view
        for i in range(0, len(view), _FIELDS):
            pid = view[i]
            if pid and i != self._pid_at and view[i + 1] + margin <= load and _alive(pid):
                return True
        return False

    def leave(self) -> None:
        """Free this worker's record and unmap the board (idempotent)."""
        if self._map.closed:
            return
        if self._view[self._pid_at] == self.pid:
            self._view[self._load_at] = 0
            self._view[self._pid_at] = 0
        self._view.release()
        self._map.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)


def join_from_environment() -> LoadBoard | None:
    """The board named by ``IMGFILTER_LOAD_BOARD`` with a record taken, or None.

    None when the variable is unset (one process, tests), and, with a warning in the log,
    when the board cannot be used or has no free record: the worker then serves without
    balancing.
    """
    name = os.environ.get(BOARD_ENV)
    if not name:
        return None
    try:
        board = LoadBoard.join(Path(name))
    except (OSError, ValueError) as exc:
        logger.warning("connection balancing off: %s", exc)
        return None
    if board is None:
        logger.warning("connection balancing off: no free record in %s", name)
    return board
