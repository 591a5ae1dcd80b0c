"""Exact sums: kernel orientation and normalization, the sum bound, the accumulator dtype.

An integer-valued image, kernel and ``cval`` give an integer sum, bounded by
``max|pixel| * sum|k|``; the direct, separable and box paths accumulate it in the narrowest
integer dtype that holds that bound, and the FFT path rounds to it up to `FFT_EXACT_BOUND`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ..types import Array

#: Exact (integer) sums are bounded by ``max|pixel| * sum|k|``; up to this bound the float64
#: FFT path rounds to the exact integer (its margin to the worst case: docs/performance.md).
FFT_EXACT_BOUND = 2**40


@dataclass(frozen=True)
class _KernelInfo:
    kernel: bytes  # float64 C-order bytes of the kernel oriented for correlation
    anchor: tuple[int, int]
    integral: bool  # every entry is an integer
    scale: float  # folded into the final multiply: 1 / sum (normalized), a float step
    abs_sum: float  # sum |k|, which bounds every partial sum per unit of |pixel|


@lru_cache(maxsize=256)
def _kernel_info(kernel: bytes, shape: tuple[int, int], flip: bool, normalize: bool) -> _KernelInfo:
    """Orient (``flip``) and normalize a kernel, keeping integral kernels integral.

    An integral kernel with ``normalize`` keeps its integers and divides the finished sum;
    a float kernel that is exactly ``step * integers`` becomes those integers, with ``step``
    in the scale. Either way the exact integer paths apply.
    """
    kern = np.frombuffer(kernel, dtype=np.float64).reshape(shape)
    kr, kc = shape
    if flip:
        kern = kern[::-1, ::-1]
        anchor = (kr - 1 - kr // 2, kc - 1 - kc // 2)
    else:
        anchor = (kr // 2, kc // 2)
    integral = _is_integral(kern)
    scale = 1.0
    if normalize:
        total = float(kern.sum())
        if total != 0.0:
            if integral:  # keep the kernel integral (exact sums): divide the finished sum
                scale = 1.0 / total
            else:
                kern = kern / total
                integral = _is_integral(kern)
    if not integral and np.any(kern):
        # a float kernel that is exactly step * (integers), e.g. [1/16, 2/16, 1/16]: sum the
        # integers exactly (and fast) and multiply the step into the final scale
        step = float(np.abs(kern[kern != 0]).min())
        ints = kern / step
        if _is_integral(ints) and np.abs(ints).max() < 2**15 and np.array_equal(ints * step, kern):
            kern, integral, scale = ints, True, scale * step
    kern = np.ascontiguousarray(kern)
    return _KernelInfo(kern.tobytes(), anchor, integral, scale, float(np.abs(kern).sum()))


def _is_integral(kern: npt.NDArray[np.float64]) -> bool:
    return bool(np.all(kern == np.rint(kern))) and bool(np.abs(kern).max() < 2.0**31)


_BYTE_PEAK = {"u": 255, "i": 128, "b": 1}


def _max_abs_value(img: Array, fill: float) -> int:
    """``max(|pixel|, |fill|)`` as an exact integer (the dtype's range for 8-bit types).

    ``fill`` is integer-valued here (the caller checks it). Python integers keep the bound
    exact: a float bound could round a sum just over ``2**63 - 1`` down into int64's range.
    """
    if img.dtype.itemsize == 1:
        peak = _BYTE_PEAK[img.dtype.kind]
    else:
        peak = max(abs(int(img.min())), abs(int(img.max())))
    return max(peak, int(abs(fill)))


_EXACT_DTYPES = tuple((np.dtype(t), int(np.iinfo(t).max)) for t in (np.int16, np.int32, np.int64))


def _exact_dtype(bound: int) -> np.dtype[Any]:
    """The narrowest integer dtype holding every partial sum (at most ``bound`` in size).

    Every partial sum any program forms -- a group of taps, a horizontal pass, a doubling
    window -- is a sum of ``|k| * |pixel|`` terms, so ``max|pixel| * sum|k|`` bounds them all.
    The comparison is between exact integers: a sum of exactly ``2**63`` needs float64.
    """
    for kind, limit in _EXACT_DTYPES:
        if bound <= limit:
            return kind
    return np.dtype(np.float64)


def _factor_rank1(
    kern: npt.NDArray[np.float64], integral: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """``(u, v)`` with ``outer(u, v) == kern`` (integers if ``integral``), or None.

    ``v`` is the row holding the largest entry -- divided by the gcd of its entries when
    integral: a rank-1 integer matrix is then ``u v^T`` with ``u`` integral too -- and ``u``
    the ratios of the matching column. Accepted only if the product reproduces ``kern``
    (exactly when integral, else to ``1e-7`` of the largest entry).
    """
    peak = np.abs(kern)
    r0, c0 = np.unravel_index(int(np.argmax(peak)), kern.shape)
    v = kern[r0].copy()
    if integral:
        v /= float(np.gcd.reduce(v.astype(np.int64)))
    u = kern[:, c0] / v[c0]
    product = np.outer(u, v)
    if integral:
        if not np.all(u == np.rint(u)) or not np.array_equal(product, kern):
            return None
    elif np.abs(product - kern).max() > 1e-7 * peak[r0, c0]:
        return None
    return u, v
