"""The FFT path: overlap-save on tiles, and the tiling's cost."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..types import Array
from .padding import _Source
from .program import _emit
from .workspace import _Workspace

if TYPE_CHECKING:
    from .plan import _Plan

_FFT_MAX_SIDE = 640  # larger tiles fall out of cache: the model doubles their per-item cost
# Cost model, in nanoseconds per element (see `plan`).
_FFT_NS = 0.45  # per element per log2(size) of one forward + inverse float64 pass
_FFT_COPY_NS = 1.5  # per tile element: copying in, zeroing, rounding and emitting
_FFT_TILE_NS = 20_000.0  # fixed cost per tile (calls, small allocations)


@lru_cache(maxsize=64)
def _smooth_sizes(limit: int) -> tuple[int, ...]:
    """All ``2^a 3^b 5^c`` up to ``limit``: the tile sides the cost model considers."""
    sizes = {1}
    for prime in (2, 3, 5):
        grown = set(sizes)
        for size in sizes:
            value = size * prime
            while value <= limit:
                grown.add(value)
                value *= prime
        sizes = grown
    return tuple(sorted(sizes))


@lru_cache(maxsize=256)
def _fft_cost(out_rows: int, out_cols: int, kr: int, kc: int) -> tuple[float, int, int]:
    """(estimated ns, tile rows, tile cols) of the cheapest overlap-save tiling."""

    def sides(out: int, k: int) -> list[int]:
        need = out + k - 1
        whole = next(s for s in _smooth_sizes(2 * need + 64) if s >= need)
        cands = [s for s in _smooth_sizes(_FFT_MAX_SIDE) if s >= max(2 * k, 16) and s < whole]
        return [*cands, whole]

    best = (math.inf, 0, 0)
    for l1 in sides(out_rows, kr):
        tiles_r = -(-out_rows // (l1 - kr + 1))
        for l2 in sides(out_cols, kc):
            tiles = tiles_r * -(-out_cols // (l2 - kc + 1))
            area = l1 * l2
            slow = 2.0 if area > _FFT_MAX_SIDE**2 else 1.0
            per_item = math.log2(max(area, 2)) * _FFT_NS * slow + _FFT_COPY_NS
            cost = tiles * (area * per_item + _FFT_TILE_NS)
            if cost < best[0]:
                best = (cost, l1, l2)
    return best


@lru_cache(maxsize=8)  # l1 * (l2 // 2 + 1) complex128 each: few, kept apart from the plans
def _kernel_spectrum(
    kernel: bytes, shape: tuple[int, int], l1: int, l2: int
) -> npt.NDArray[np.complex128]:
    """The ``rfft2`` of the flipped kernel on an ``l1 x l2`` grid.

    Correlating with ``k`` is convolving with ``k[::-1, ::-1]``, which the FFT computes.
    """
    kern = np.frombuffer(kernel, dtype=np.float64).reshape(shape)
    spectrum = np.fft.rfft2(kern[::-1, ::-1], s=(l1, l2))
    spectrum.flags.writeable = False
    return spectrum


def _fft_plane(
    source: _Source,
    span: tuple[int, int, int],
    out: Array,
    plan: _Plan,
    scale: float,
    ws: _Workspace,
) -> None:
    """Overlap-save: each tile of ``out`` is the valid part of a circular convolution.

    A tile of ``l1 x l2`` padded pixels yields ``(l1 - kr + 1) x (l2 - kc + 1)`` outputs. The
    transforms run in float64, which rounds integer sums exactly up to `FFT_EXACT_BOUND`.
    Tiles sit on the whole plane's grid (row ``0``, ``step``, ...) with the whole plane's
    extent (``span``: start, stop, total rows) whatever ``start`` is, so a stripe's values
    equal the whole call's bit for bit; rows of a tile outside ``start .. stop - 1`` are
    computed and not emitted.
    """
    start, stop, total = span
    kr, kc = plan.kernel.shape
    l1, l2 = plan.fft_shape
    out_cols = out.shape[1]
    spectrum = _kernel_spectrum(plan.kernel.tobytes(), (kr, kc), l1, l2)
    width = plan.width
    src = ws.empty((l1 + 1) * width, plan.work)  # one row of tiles' source at a time
    padded = ws.empty(l1 * l2, np.float64).reshape(l1, l2)
    full = ws.empty(l1 * l2, np.float64).reshape(l1, l2)
    freq = ws.empty(spectrum.size, np.complex128).reshape(spectrum.shape)
    step_r, step_c = l1 - kr + 1, l2 - kc + 1
    for i0 in range(start - start % step_r, stop, step_r):
        t1 = min(step_r, total - i0)
        e0, e1 = max(start, i0) - i0, min(stop, i0 + t1) - i0  # the tile's rows to emit
        h = t1 + kr - 1
        source.rows(i0, i0 + h, src)
        grid = src[: h * width].reshape(h, width)
        for j0 in range(0, out_cols, step_c):
            t2 = min(step_c, out_cols - j0)
            w = t2 + kc - 1
            padded[:h, :w] = grid[:, j0 : j0 + w]
            padded[h:] = 0.0
            padded[:h, w:] = 0.0
            np.fft.rfft2(padded, out=freq)
            np.multiply(freq, spectrum, out=freq)
            # irfft2 in two steps: NumPy 2.4's irfft2 ignores ``out`` and would allocate a
            # fresh (page-faulting) array per tile; ifft and irfft honour it
            np.fft.ifft(freq, axis=0, out=freq)
            np.fft.irfft(freq, n=l2, axis=1, out=full)
            valid = full[kr - 1 + e0 : kr - 1 + e1, kc - 1 : kc - 1 + t2]
            _emit(valid, out[i0 + e0 - start : i0 + e1 - start, j0 : j0 + t2], scale, plan.rint)
