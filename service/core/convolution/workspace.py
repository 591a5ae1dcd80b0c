"""Scratch memory: band sizes, and buffers reused through a small process-wide pool."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from ..types import Array
from .program import Program

_BAND_BYTES = 384 * 1024  # per band buffer: the band's few buffers stay in L2/L3 cache


def _band_rows(width: int, itemsize: int, span_rows: int = 0) -> int:
    """Rows per band: about ``_BAND_BYTES`` of scratch, and at least ``2 * span_rows``."""
    return max(1, _BAND_BYTES // (width * itemsize), 2 * span_rows)


_POOL: list[npt.NDArray[np.uint8]] = []
_POOL_LOCK = threading.Lock()
_POOL_KEEP = 8  # buffers kept for reuse, process-wide
_POOL_MAX_BYTES = 8 * 1024 * 1024  # larger buffers are allocated (and freed) per call


class _Workspace:
    """Scratch buffers for one call, drawn from a small process-wide pool and returned after.

    At most ``_POOL_KEEP`` buffers of at most ``_POOL_MAX_BYTES`` are kept for reuse; bigger
    ones are allocated per call and freed. Reuse spares the page faults of fresh memory
    (docs/performance.md, "Where the time goes").
    """

    def __init__(self) -> None:
        self._taken: list[npt.NDArray[np.uint8]] = []

    def __enter__(self) -> _Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        with _POOL_LOCK:
            for buf in self._taken:
                if len(_POOL) < _POOL_KEEP:
                    _POOL.append(buf)
        self._taken.clear()

    def empty(self, size: int, dtype: np.dtype[Any] | type[Any]) -> Array:
        """An uninitialised 1-D array, like ``numpy.empty``, valid until the workspace closes."""
        kind = np.dtype(dtype)
        nbytes = size * kind.itemsize
        if nbytes > _POOL_MAX_BYTES:
            return np.empty(size, dtype=kind)
        buf = None
        with _POOL_LOCK:
            for i in range(len(_POOL) - 1, -1, -1):
                if _POOL[i].size >= nbytes:
                    buf = _POOL.pop(i)
                    break
        if buf is None:
            buf = np.empty(max(nbytes, 1 << 16), dtype=np.uint8)
        self._taken.append(buf)
        return buf[:nbytes].view(kind)

    def scratch(
        self, ops: Program, length: int, work: np.dtype[Any], *, acc: bool = True
    ) -> dict[str, Array]:
        """The buffers ``ops`` writes, sized for bands of ``length`` items plus their extras.

        With ``acc=False`` the caller supplies ``acc`` (a view into its own buffer).
        """
        sizes: dict[str, int] = {}
        for op in ops:
            if acc or op.dst != "acc":
                sizes[op.dst] = max(sizes.get(op.dst, 0), length + op.extra)
        return {name: self.empty(size, work) for name, size in sizes.items()}
