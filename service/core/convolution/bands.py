"""One channel: the direct and two-pass paths band by band, or the FFT path, per plan."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..types import Array
from .fft import _fft_plane
from .padding import _Source
from .program import _emit, _run
from .workspace import _band_rows, _Workspace

if TYPE_CHECKING:
    from .plan import _Plan


def _correlate_plane(
    plane: Array,
    out: Array,
    plan: _Plan,
    border: str,
    fill: float,
    scale: float,
    ws: _Workspace,
    r0: int,
    r1: int,
) -> None:
    """Filter output rows ``r0 .. r1 - 1`` of one (M, N) channel into ``out`` (float32,
    ``r1 - r0`` rows, possibly a strided channel view)."""
    rows, cols = plane.shape
    kr, kc = plan.kernel.shape
    a, b = plan.anchor
    if border in ("keep", "valid"):
        pads = (0, 0, 0, 0)
        start, stop = r0, r1  # rows of the computed region (the windows that fit)
        if border == "keep":
            np.copyto(out, plane[r0:r1], casting="unsafe")
            start, stop = max(r0, a), min(r1, a + rows - kr + 1)
            out = out[start - r0 : max(start, stop) - r0, b : b + cols - kc + 1]
            start, stop = start - a, stop - a
            if start >= stop:
                return
    else:
        pads = (a, kr - 1 - a, b, kc - 1 - b)
        start, stop = r0, r1
    if plan.method == "direct" and not plan.first:
        out[...] = 0.0
        return
    # Only `constant` reads `fill`; elsewhere it may not fit an integer work type.
    source = _Source(plane, pads, border, fill if border == "constant" else 0.0, plan.work)
    if plan.method == "fft":
        total = rows - kr + 1 if border in ("keep", "valid") else rows
        _fft_plane(source, (start, stop, total), out, plan, scale, ws)
    elif plan.method == "direct":
        _direct(plan, source, _Target(out, start, stop, scale), ws)
    else:
        _two_pass(plan, source, _Target(out, start, stop, scale), ws)


class _Target(NamedTuple):
    """Output rows ``start .. stop - 1`` of a channel: ``out`` holds them from its row 0."""

    out: Array
    start: int
    stop: int
    scale: float

    def emit(self, acc: Array, r0: int, r1: int, width: int) -> None:
        """Emit rows ``r0 .. r1 - 1``, ``float32(acc * scale)``, from the flat accumulator
        ``acc`` (row width ``width``; the columns past ``out``'s are dropped)."""
        block = acc[: (r1 - r0) * width].reshape(r1 - r0, width)[:, : self.out.shape[1]]
        _emit(block, self.out[r0 - self.start : r1 - self.start], self.scale)


def _direct(plan: _Plan, source: _Source, target: _Target, ws: _Workspace) -> None:
    """Per band of the target's rows: pad the band's source rows, run the tap program, emit."""
    start, stop = target.start, target.stop
    width, work = plan.width, plan.work
    halo = plan.kernel.shape[0] - 1
    band = min(stop - start, _band_rows(width, work.itemsize))
    src = ws.empty((band + halo + 1) * width, work)
    bufs = ws.scratch(plan.first, band * width, work)
    for r0 in range(start, stop, band):
        r1 = min(stop, r0 + band)
        source.rows(r0, r1 + halo, src)
        _run(plan.first, src, 0, (r1 - r0) * width, bufs)
        target.emit(bufs["acc"], r0, r1, width)


def _two_pass(plan: _Plan, source: _Source, target: _Target, ws: _Workspace) -> None:
    """Horizontal then vertical pass per band, through a rolling buffer of band + halo rows.

    Row ``j`` of ``rows_h`` is the horizontal pass of padded row ``r0 + j``. Moving to the next
    band keeps the ``halo = kr - 1`` rows both bands need and computes only the new ones.
    """
    start, stop = target.start, target.stop
    width, work = plan.width, plan.work
    halo = plan.kernel.shape[0] - 1
    span = halo + 1 if plan.method == "box" else 0
    band = min(stop - start, _band_rows(width, work.itemsize, span))
    src = ws.empty((band + halo + 1) * width, work)
    rows_h = ws.empty((band + halo) * width, work)
    bufs_h = ws.scratch(plan.first, (band + halo) * width, work, acc=False)
    bufs_v = ws.scratch(plan.second, band * width, work)
    for r0 in range(start, stop, band):
        r1 = min(stop, r0 + band)
        if r0 == start:
            kept, todo = 0, r1 - r0 + halo
        else:  # the previous band was full: its last ``halo`` rows start at row ``band``
            rows_h[: halo * width] = rows_h[band * width : (band + halo) * width]
            kept, todo = halo, r1 - r0
        source.rows(r0 + kept, r0 + kept + todo, src)
        bufs_h["acc"] = rows_h[kept * width : (kept + todo) * width]
        _run(plan.first, src, 0, todo * width, bufs_h)
        _run(plan.second, rows_h, 0, (r1 - r0) * width, bufs_v)
        target.emit(bufs_v["acc"], r0, r1, width)
