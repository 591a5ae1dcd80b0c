"""2-D cross-correlation (standard mode): one exact definition, several fast paths.

`correlate` computes ``out[r, c] = weight * sum_{m,n} k[m, n] * img[r + m - a, c + n - b]``
with ``(a, b) = (kr // 2, kc // 2)``, exactly `scipy.ndimage.correlate` (``flip=True``:
`scipy.ndimage.convolve`), for every border mode scipy has plus ``keep`` and ``valid``.

How it is fast, with NumPy only:

* Padded rows are laid out flat with row width ``W = N + kc - 1`` (plus one zero row of
  slack). A kernel tap ``(m, n)`` is then the constant flat offset ``m * W + n``, so every tap
  is one contiguous 1-D slice and every operation one ufunc call with ``out=``. The ``kc - 1``
  columns per row that straddle two image rows are computed and discarded.
* Work runs in bands of rows sized to stay in the CPU cache: each band's padded source rows
  are built on the fly (no padded copy of the whole image), and scratch buffers are reused
  from band to band and, through a small pool, from call to call. Zero taps are skipped, taps
  of equal magnitude are summed before one multiply, +1/-1 taps are plain adds and subtracts
  (a global sign is folded into the final scale), and 1-D passes peel ``(1 +/- x)`` factors:
  ``[1, 2, 1]`` is two adds, ``[1, 4, 6, 4, 1]`` four.
* Paths, chosen by an operation-count cost model (or forced with ``method``):

  - ``direct``: the tap program above;
  - ``separable``: rank-1 kernels ``k = u v^T`` (exact integer factorisation for integer
    kernels): a horizontal then a vertical 1-D pass, through a rolling buffer of rows;
  - ``box``: all-equal kernels; running window sums by doubling (about ``2 log2 k`` adds per
    axis whatever the size);
  - ``fft``: `numpy.fft.rfft2` overlap-save on cache-sized tiles, in float64.

Exactness: when the image is integer-valued (integer or bool dtype), the kernel is
integer-valued and so is ``cval`` (for ``constant``), the exact sum is an integer. The
direct, separable and box paths then accumulate in an integer dtype (int16 when
``max|pixel| * sum|k|`` fits, else int32/int64), which is exact; the FFT path computes in
float64 and rounds to the nearest integer, which is the exact sum while the bound
``max|pixel| * sum|k|`` is at most `FFT_EXACT_BOUND` (2**40); 'auto' never takes the FFT
path above it (a forced ``method='fft'`` there rounds float64 sums, exact only to about
2**-50 of the bound). Every path chosen by 'auto' therefore hands the *same* integer to the
final step ``float32(sum * weight)`` (evaluated in float64), and the 8-bit output does not
depend on the path. Bounds above ``2**63 - 1`` sum in float64 on every path.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from .._docstrings import docfiller
from .._validation import check_choice, check_finite, check_image, check_int, check_kernel
from ..errors import KernelError, ParameterError
from ..types import BORDERS, METHODS, Border, Method

#: The ``numpy.pad`` mode that builds the same padding as each scipy.ndimage mode.
NUMPY_PAD_MODE: dict[str, str] = {
    "reflect": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap",
    "constant": "constant",
}

Array = npt.NDArray[Any]
# One instruction of a band program: (kind, destination, operand A, operand B, extra length).
# Operands are (buffer, offset) pairs; buffer "src" is the padded image, the others scratch.
# For "mul" operand B is the constant. The instruction covers ``band length + extra`` items.
Operand = tuple[str, int]
Op = tuple[str, str, Operand, Operand | Any, int]

_BAND_BYTES = 384 * 1024  # per band buffer: the band's few buffers stay in L2/L3 cache
_FFT_MAX_SIDE = 640  # tiles bigger than this fall out of cache and cost ~2x per pixel
# Cost model, in nanoseconds per element: one ufunc pass by accumulator itemsize, and FFT.
_OP_NS = {1: 0.04, 2: 0.05, 4: 0.09, 8: 0.17}
_FFT_NS = 0.45  # per element per log2(size) of one forward + inverse float64 pass
_FFT_COPY_NS = 1.5  # per tile element: copying in, zeroing, rounding and emitting
_FFT_TILE_NS = 20_000.0  # fixed cost per tile (calls, small allocations)
_EMIT_OPS = 1  # the final convert-and-scale pass, in ufunc passes
#: Exact (integer) sums are bounded by ``max|pixel| * sum|k|``; up to this bound the float64
#: FFT path rounds to the exact integer. Worst-case inputs (every pixel +/-max, kernel
#: entries +/-equal, tiles up to 640 x 640) first round wrongly at 2**50: a 1024x margin.
FFT_EXACT_BOUND = 2**40


@docfiller
def correlate(
    image: npt.ArrayLike,
    kernel: npt.ArrayLike,
    *,
    weight: float = 1.0,
    border: Border = "reflect",
    cval: float = 0.0,
    flip: bool = False,
    normalize: bool = False,
    alpha: bool = False,
    max_kernel_side: int = 63,
    method: Method = "auto",
) -> npt.NDArray[np.float32]:
    """Correlate each channel of an image with a 2-D kernel (standard mode).

    Parameters
    ----------
    %(image)s
    kernel : array_like of shape (kr, kc)
        Any rectangle from 1 x 1 up to ``max_kernel_side`` per side, even sides included;
        finite real values.
    %(weight)s
    %(border)s
    %(cval)s
    flip : bool, optional
        If True compute the true convolution, exactly `scipy.ndimage.convolve`: the kernel is
        flipped on both axes and, along an even side, the anchor moves to ``side // 2 - 1``
        of the flipped kernel. Default False.
    normalize : bool, optional
        If True divide the kernel by its sum when that sum is not 0 (``weight`` still
        applies). Default False.
    %(alpha)s
    max_kernel_side : int, optional
        The largest kernel side accepted. Default 63.
    method : {'auto', 'direct', 'separable', 'box', 'fft'}, optional
        The computation path; 'auto' picks the fastest that applies. Forcing 'separable' needs
        a rank-1 kernel and 'box' an all-equal one. All paths agree to float32 rounding, and
        exactly for integer images and kernels (see Notes). Default 'auto'.

    Returns
    -------
    ndarray of np.float32
        Shape ``(M, N)`` or ``(M, N, C)`` like ``image``; with ``border='valid'``
        ``(M - kr + 1, N - kc + 1[, C])``. Values are not clipped; see
        `service.core.scaling.apply_scale` for the conversion to 8 bits.

    Raises
    ------
    ImageError
        ``image`` is not (M, N) or (M, N, C) with C in 1..4, empty, not real or not finite.
    KernelError
        ``kernel`` is empty, not 2-D, not finite, has a side over ``max_kernel_side``, is
        larger than the image with ``border='valid'``, or does not suit a forced ``method``.
    ParameterError
        ``border``, ``method``, ``weight``, ``cval``, ``alpha`` or ``max_kernel_side`` is
        invalid.

    See Also
    --------
    service.core.codelab.codelab_correlate : the lesson's loop, bit for bit.
    scipy.ndimage.correlate, scipy.ndimage.convolve : the definitions matched here.

    Notes
    -----
    %(correlate_formula)s

    With ``flip=True`` the sum is ``w sum k[m, n] img[r - m + a', c - n + b']`` with
    ``a' = kr // 2``, ``b' = kc // 2`` -- `scipy.ndimage.convolve`.

    The sum is formed in float32 (float64 for float64 images) -- or exactly, in an integer
    type, when image, kernel and ``cval`` are integer-valued; then every path gives the same
    result and ``weight`` is applied in float64 before rounding to float32. With
    ``normalize`` and an integer kernel the division by the sum is folded into the weight,
    keeping that exactness; so is the step of a float kernel that is exactly a multiple of
    an integer one (``[[1/16, 2/16, 1/16], ...]`` sums the integers, then scales by 1/16).

    Examples
    --------
    >>> img = np.array([[0, 0, 0, 0],
    ...                 [0, 9, 0, 0],
    ...                 [0, 0, 0, 0]], dtype=np.uint8)
    >>> correlate(img, [[1, 2]], border="constant")
    array([[ 0.,  0.,  0.,  0.],
           [ 0., 18.,  9.,  0.],
           [ 0.,  0.,  0.,  0.]], dtype=float32)

    The kernel's anchor is element ``(0, 1)`` (``kc // 2 = 1``), so output pixel ``(1, 2)``
    is ``1 * img[1, 1] + 2 * img[1, 2] = 9``. With ``flip=True`` (true convolution) the
    kernel becomes ``[[2, 1]]`` and, its side being even, the anchor moves to ``(0, 0)``,
    exactly as `scipy.ndimage.convolve` does:

    >>> correlate(img, [[1, 2]], border="constant", flip=True)
    array([[ 0.,  0.,  0.,  0.],
           [ 9., 18.,  0.,  0.],
           [ 0.,  0.,  0.,  0.]], dtype=float32)

    Border modes on a 1 x 4 row, with the kernel ``[1, 1, 1]`` (each output is the sum of a
    pixel and its two neighbours):

    >>> row = np.array([[1, 2, 3, 4]])
    >>> correlate(row, [[1, 1, 1]])                          # 'reflect': 1 | 1 2 3 4 | 4
    array([[ 4.,  6.,  9., 11.]], dtype=float32)
    >>> correlate(row, [[1, 1, 1]], border="mirror")         # 2 | 1 2 3 4 | 3
    array([[ 5.,  6.,  9., 10.]], dtype=float32)
    >>> correlate(row, [[1, 1, 1]], border="wrap")           # 4 | 1 2 3 4 | 1
    array([[7., 6., 9., 8.]], dtype=float32)
    >>> correlate(row, [[1, 1, 1]], border="constant", cval=10)
    array([[13.,  6.,  9., 17.]], dtype=float32)
    >>> correlate(row, [[1, 1, 1]], border="keep")
    array([[1., 6., 9., 4.]], dtype=float32)
    >>> correlate(row, [[1, 1, 1]], border="valid", weight=0.5)
    array([[3. , 4.5]], dtype=float32)
    """
    job = _Job.prepare(
        image, kernel, weight, border, cval, flip, normalize, alpha, max_kernel_side, method
    )
    return job.rows(0, job.out_rows)


@docfiller
def correlate_stripes(
    image: npt.ArrayLike,
    kernel: npt.ArrayLike,
    *,
    stripe_rows: int,
    threads: int = 1,
    weight: float = 1.0,
    border: Border = "reflect",
    cval: float = 0.0,
    flip: bool = False,
    normalize: bool = False,
    alpha: bool = False,
    max_kernel_side: int = 63,
    method: Method = "auto",
) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    """`correlate`, output rows ``stripe_rows`` at a time: yields ``(first row, stripe)``.

    The stripes, stacked, are exactly ``correlate(image, kernel, ...)`` with the same
    arguments, bit for bit: each stripe runs the same plan (path, accumulator, FFT tiles
    placed on the whole image's grid) on the rows it needs, padding included, so a caller
    can convert and drop each stripe and never hold the whole float32 result. Arguments are
    checked before the first stripe is computed.

    Parameters
    ----------
    %(image)s
    kernel : array_like of shape (kr, kc)
        As for `correlate`.
    stripe_rows : int
        Output rows per stripe (the last may be shorter); at least 1.
    threads : int, optional
        Stripes computed at once, on a thread pool (NumPy releases the GIL in its loops);
        stripes are still yielded in order, at most ``threads`` ahead. Default 1.
    weight, border, cval, flip, normalize, alpha, max_kernel_side, method
        As for `correlate`.

    Examples
    --------
    >>> img = np.arange(12, dtype=np.uint8).reshape(4, 3)
    >>> [(r0, s.shape) for r0, s in correlate_stripes(img, [[1], [1]], stripe_rows=3)]
    [(0, (3, 3)), (3, (1, 3))]
    """
    rows = check_int(stripe_rows, "stripe_rows", minimum=1)
    workers = check_int(threads, "threads", minimum=1)
    job = _Job.prepare(
        image, kernel, weight, border, cval, flip, normalize, alpha, max_kernel_side, method
    )
    return _stripes(job, rows, workers)


def _stripes(job: _Job, rows: int, workers: int) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    starts = range(0, job.out_rows, rows)
    if workers == 1 or len(starts) == 1:
        for r0 in starts:
            yield r0, job.rows(r0, min(job.out_rows, r0 + rows))
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stripe") as pool:
        pending: deque[tuple[int, Future[npt.NDArray[np.float32]]]] = deque()
        for r0 in starts:
            pending.append((r0, pool.submit(job.rows, r0, min(job.out_rows, r0 + rows))))
            if len(pending) >= workers:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()


@dataclass(frozen=True)
class _Job:
    """One checked `correlate` call: everything but the output rows to compute."""

    img: Array
    plan: _Plan | None  # None: 'keep' with a kernel larger than the image (a plain copy)
    border: str
    fill: float
    scale: float
    alpha: bool
    out_rows: int

    @classmethod
    def prepare(
        cls,
        image: npt.ArrayLike,
        kernel: npt.ArrayLike,
        weight: float,
        border: str,
        cval: float,
        flip: bool,
        normalize: bool,
        alpha: bool,
        max_kernel_side: int,
        method: str,
    ) -> _Job:
        """Check the arguments and plan the call (see `correlate`)."""
        img = check_image(image, alpha=alpha)
        kern = check_kernel(kernel, max_side=max_kernel_side)
        check_choice(border, BORDERS, "border")
        check_choice(method, METHODS, "method")
        scale = check_finite(weight, "weight")
        fill = check_finite(cval, "cval")
        for name, flag in (("flip", flip), ("normalize", normalize)):
            if not isinstance(flag, bool | np.bool_):
                raise ParameterError(name, f"`{name}` must be true or false, got {flag!r}")

        rows, cols = img.shape[:2]
        kr, kc = kern.shape
        if border == "valid" and (kr > rows or kc > cols):
            raise KernelError(
                "kernel",
                f"`kernel` is {kr} x {kc}, larger than the {rows} x {cols} image: "
                "border 'valid' leaves no output pixel",
            )
        info = _kernel_info(
            np.ascontiguousarray(kern).tobytes(), (kr, kc), bool(flip), bool(normalize)
        )
        scale *= info.scale

        # The computed region: the whole image when padded, the windows that fit otherwise.
        if border in ("keep", "valid"):
            region = (rows - kr + 1, cols - kc + 1)
            if region[0] <= 0 or region[1] <= 0:  # only 'keep' gets here: nothing to compute
                return cls(img, None, border, fill, scale, bool(alpha), rows)
        else:
            region = (rows, cols)
        exact = info.integral and img.dtype.kind in "biu"
        exact = exact and (border != "constant" or fill.is_integer())
        fft_exact = True
        if exact:
            bound = _max_abs_value(img, fill if border == "constant" else 0.0) * int(info.abs_sum)
            work = _exact_dtype(bound)
            fft_exact = bound <= FFT_EXACT_BOUND
        else:
            work = np.dtype(np.float64 if img.dtype == np.float64 else np.float32)
        plan = _plan(info.kernel, (kr, kc), info.anchor, exact, work.str, region, method, fft_exact)
        out_rows = region[0] if border == "valid" else rows
        return cls(img, plan, border, fill, plan.scale * scale, bool(alpha), out_rows)

    def rows(self, r0: int, r1: int) -> npt.NDArray[np.float32]:
        """Output rows ``r0 .. r1 - 1`` (float32), as the whole call computes them."""
        img, plan, border = self.img, self.plan, self.border
        if plan is None:
            return img[r0:r1].astype(np.float32)
        kc = plan.kernel.shape[1]
        a, b = plan.anchor
        cols = img.shape[1] - kc + 1 if border == "valid" else img.shape[1]
        out = np.empty((r1 - r0, cols, *img.shape[2:]), np.float32)
        channels = 1 if img.ndim == 2 else img.shape[2]
        filtered = channels - 1 if self.alpha else channels
        with _Workspace() as ws:
            for ch in range(filtered):
                plane = img if img.ndim == 2 else img[:, :, ch]
                target = out if img.ndim == 2 else out[:, :, ch]
                _correlate_plane(plane, target, plan, border, self.fill, self.scale, ws, r0, r1)
        if self.alpha:
            if border == "valid":
                out[:, :, -1] = img[a + r0 : a + r1, b : b + cols, -1]
            else:
                out[:, :, -1] = img[r0:r1, :, -1]
        return out


# --------------------------------------------------------------------------------------------
# Planning: which path, which accumulator dtype, which programs.


@dataclass(frozen=True)
class _Plan:
    """How to filter every channel of one call (cached, immutable)."""

    kernel: npt.NDArray[np.float64]  # oriented for correlation (already flipped)
    anchor: tuple[int, int]
    width: int  # row width of the padded flat buffer
    work: np.dtype[Any]  # accumulator dtype of the direct/separable/box paths
    rint: bool  # the exact sum is an integer: round the FFT result to it
    method: str
    scale: float  # folded into the final multiply: program sign, box value
    first: tuple[Op, ...] = ()  # the direct program, or the horizontal pass
    second: tuple[Op, ...] = ()  # the vertical pass (separable, box)
    fft_shape: tuple[int, int] = (0, 0)  # the overlap-save tile


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


@lru_cache(maxsize=64)
def _plan(
    kernel_bytes: bytes,
    shape: tuple[int, int],
    anchor: tuple[int, int],
    exact: bool,
    work_str: str,
    region: tuple[int, int],
    method: str,
    fft_exact: bool = True,
) -> _Plan:
    """Pick the path (the cheapest by the cost model unless forced) and compile its programs.

    ``region`` is the computed output (rows, cols); the padded source has
    ``region + kernel - 1`` rows and columns. ``fft_exact`` False (an exact sum that may
    exceed `FFT_EXACT_BOUND`) keeps 'auto' off the FFT path.
    """
    kern = np.frombuffer(kernel_bytes, dtype=np.float64).reshape(shape)
    kern.flags.writeable = False
    work = np.dtype(work_str)
    kr, kc = shape
    out_rows, out_cols = region
    padded_rows, width = out_rows + kr - 1, out_cols + kc - 1
    nonzero = np.count_nonzero(kern)
    if nonzero == 0:  # "direct" with an empty program fills zeros
        return _Plan(kern, anchor, width, work, exact, "direct", 1.0)

    op_ns = _OP_NS[work.itemsize]
    costs: dict[str, float] = {}
    options: dict[str, tuple[tuple[Op, ...], tuple[Op, ...], float]] = {}
    direct, sign = _compile_taps(_taps(kern, width), work)
    costs["direct"] = (len(direct) + _EMIT_OPS) * out_rows * width * op_ns
    options["direct"] = (direct, (), float(sign))
    fft_ns, l1, l2 = _fft_cost(out_rows, out_cols, kr, kc)
    if fft_exact:
        costs["fft"] = fft_ns
    options["fft"] = ((), (), 1.0)
    factors = _factor_rank1(kern, exact)
    if factors is not None:
        u, v = factors
        first, factor_h = _compile_line(v, 1, work)
        second, factor_v = _compile_line(u, width, work)
        passes = len(first) * padded_rows + (len(second) + _EMIT_OPS) * out_rows
        costs["separable"] = passes * width * op_ns
        options["separable"] = (first, second, factor_h * factor_v)
    if nonzero == kern.size and np.all(kern == kern.flat[0]):
        first, second = _compile_window(kc, 1), _compile_window(kr, width)
        band = _band_rows(width, work.itemsize, kr)  # the vertical doubling redoes kr rows
        redo = 1.0 + kr / band
        row_passes = len(first) * padded_rows + (len(second) * redo + _EMIT_OPS) * out_rows
        costs["box"] = row_passes * width * op_ns
        options["box"] = (first, second, float(kern.flat[0]))

    if method == "auto":
        method = min(costs, key=lambda name: costs[name])
    elif method not in options:
        needs = {"separable": "a rank-1 kernel", "box": "a kernel with all entries equal"}
        raise KernelError("kernel", f"method {method!r} needs {needs[method]}")
    first, second, factor = options[method]
    if second:  # either pass may take the sign: the result is linear in each
        second, factor = _absorb_sign(second, factor)
        if method == "separable":
            first, factor = _absorb_sign(first, factor)
    else:
        first, factor = _absorb_sign(first, factor)
    return _Plan(kern, anchor, width, work, exact, method, factor, first, second, (l1, l2))


def _absorb_sign(ops: tuple[Op, ...], factor: float) -> tuple[tuple[Op, ...], float]:
    """Make a negative final ``factor`` positive by swapping the operands of a final subtract.

    ``acc = a - b`` times ``-f`` is ``acc = b - a`` times ``f``; a factor of exactly 1 then
    saves the emit's multiply (Sobel's ``[-1, 0, 1]`` factor leaves ``-1`` otherwise).
    """
    if factor >= 0 or not ops:
        return ops, factor
    kind, dst, a, b, extra = ops[-1]
    if kind != "sub" or dst != "acc" or not isinstance(b, tuple):
        return ops, factor
    return (*ops[:-1], ("sub", dst, b, a, extra)), -factor


# --------------------------------------------------------------------------------------------
# Band programs.


def _taps(kern: npt.NDArray[np.float64], width: int) -> list[tuple[int, float]]:
    """The non-zero taps as (flat offset ``m * width + n``, value)."""
    return [(m * width + n, float(kern[m, n])) for m, n in zip(*np.nonzero(kern), strict=True)]


def _compile_taps(
    taps: list[tuple[int, float]],
    work: np.dtype[Any],
    *,
    dst: str = "acc",
    tmp: str = "tmp",
    extra: int = 0,
) -> tuple[tuple[Op, ...], int]:
    """Program computing ``sign * sum(value * src[i + offset])`` into ``dst``; returns sign.

    Taps of equal magnitude are summed (adds/subtracts) before one multiply and +/-1 taps
    need no multiply; ``sign`` (+1/-1) is what ``dst`` holds relative to the true sum.
    """
    groups: dict[float, list[tuple[int, int]]] = {}
    for offset, value in taps:
        groups.setdefault(abs(value), []).append((offset, 1 if value > 0 else -1))
    units = groups.pop(1.0, [])
    ops: list[Op] = []
    sign = 0  # 0 while dst is unwritten

    def combine(target: str, members: list[tuple[int, int]]) -> int:
        (o0, s0), (o1, s1) = members[0], members[1]
        if s0 == s1:
            ops.append(("add", target, ("src", o0), ("src", o1), extra))
            group_sign = s0
        else:
            pos, neg = (o0, o1) if s0 > 0 else (o1, o0)
            ops.append(("sub", target, ("src", pos), ("src", neg), extra))
            group_sign = 1
        for offset, s in members[2:]:
            kind = "add" if s == group_sign else "sub"
            ops.append((kind, target, (target, 0), ("src", offset), extra))
        return group_sign

    if len(units) >= 2:
        sign = combine(dst, units)
        units = []
    for magnitude, members in groups.items():
        target = dst if sign == 0 else tmp
        relative = 1 if target == dst else sign
        if len(members) == 1:
            offset, s = members[0]
            factor = work.type(magnitude * s * relative)
            ops.append(("mul", target, ("src", offset), factor, extra))
        else:
            group_sign = combine(target, members)
            factor = work.type(magnitude * group_sign * relative)
            ops.append(("mul", target, (target, 0), factor, extra))
        if target == dst:
            sign = 1
        else:
            ops.append(("add", dst, (dst, 0), (tmp, 0), extra))
    for offset, s in units:
        if sign == 0:
            ops.append(("copy", dst, ("src", offset), None, extra))
            sign = s
        else:
            kind = "add" if s == sign else "sub"
            ops.append((kind, dst, (dst, 0), ("src", offset), extra))
    return tuple(ops), sign or 1


def _peel_binomials(coeffs: list[float]) -> tuple[list[float], list[int]]:
    """Write the polynomial ``sum c[j] x^j`` as ``rest(x) * prod (1 + s x)``, s = +/-1.

    Synthetic division by ``1 + x`` and ``1 - x`` while it is exact; e.g. ``[1, 2, 1]`` is
    ``(1 + x)^2`` and ``[1, 4, 6, 4, 1]`` is ``(1 + x)^4``. Returns ``rest`` and the signs.
    """
    rest, signs = list(coeffs), []
    progress = True
    while progress and len(rest) > 1:
        progress = False
        for s in (1, -1):
            quotient = [rest[0]]
            for value in rest[1:-1]:
                quotient.append(value - s * quotient[-1])
            if s * quotient[-1] == rest[-1]:
                rest, progress = quotient, True
                signs.append(s)
                break
    return rest, signs


def _compile_line(
    coeffs: npt.NDArray[np.float64], step: int, work: np.dtype[Any]
) -> tuple[tuple[Op, ...], float]:
    """Program for ``acc[i] = sum_j c[j] src[i + j step] / factor``; returns (ops, factor).

    Either the taps directly (`_compile_taps`) or, when shorter, a chain: the taps of the
    polynomial left after peeling ``(1 +/- x)`` factors (`_peel_binomials`), then one add or
    subtract per factor, ``t'[i] = t[i] +/- t[i + step]``. A constant left over is not applied
    but returned in ``factor`` (the final scale multiplies it in).
    """
    taps = [(j * step, float(c)) for j, c in enumerate(coeffs) if c]
    direct, sign = _compile_taps(taps, work)
    nonzero = [j for j, c in enumerate(coeffs) if c]
    first = nonzero[0]
    rest, signs = _peel_binomials([float(c) for c in coeffs[first : nonzero[-1] + 1]])
    if not signs:
        return direct, float(sign)
    factor = 1.0
    names = ["t0", "t1"]
    chain: list[Op] = []
    extra = len(signs) * step
    if len(rest) == 1:  # a constant: fold it into the scale
        factor, current, base = rest[0], "src", first * step
    else:
        rest_taps = [((first + j) * step, c) for j, c in enumerate(rest) if c]
        ops, rest_sign = _compile_taps(rest_taps, work, dst="t0", tmp="t1", extra=extra)
        chain.extend(ops)
        factor, current, base = float(rest_sign), "t0", 0
        names = ["t1", "t0"]
    for number, s in enumerate(signs):
        extra -= step
        target = "acc" if number == len(signs) - 1 else names[number % 2]
        if target == current:
            target = names[(number + 1) % 2]
        kind = "add" if s == 1 else "sub"
        chain.append((kind, target, (current, base), (current, base + step), extra))
        current, base = target, 0
    if len(chain) < len(direct):
        return tuple(chain), factor
    return direct, float(sign)


def _compile_window(k: int, step: int) -> tuple[Op, ...]:
    """Program computing ``sum_{j<k} src[i + j * step]`` into ``acc`` by doubling.

    ``P_w`` (the sum of ``w`` consecutive items) gives ``P_2w[i] = P_w[i] + P_w[i + w step]``;
    the binary digits of ``k`` pick which ``P_w`` (at which offset) are added: about
    ``log2(k) + popcount(k)`` adds whatever ``k``. ``P_2w`` is needed on ``(k - 2w) step``
    more items than the band, which the instruction's ``extra`` records.
    """
    if k == 1:
        return (("copy", "acc", ("src", 0), None, 0),)
    ops: list[Op] = []
    current, width, offset = "src", 1, 0
    pending: Operand | None = None
    started = False
    while True:
        if k & width:
            term = (current, offset * step)
            if started:
                ops.append(("add", "acc", ("acc", 0), term, 0))
            elif pending is None:
                pending = term
            else:
                ops.append(("add", "acc", pending, term, 0))
                started, pending = True, None
            offset += width
        if 2 * width > k:
            break
        busy = {current, pending[0] if pending else ""}
        dst = next(name for name in ("t0", "t1", "t2") if name not in busy)
        ops.append(("add", dst, (current, 0), (current, width * step), (k - 2 * width) * step))
        current, width = dst, 2 * width
    if not started:  # k is a power of two: the last doubling is the answer
        kind, _, a, b, extra = ops[-1]
        ops[-1] = (kind, "acc", a, b, extra)
    return tuple(ops)


def _run(ops: tuple[Op, ...], src: Array, base: int, length: int, bufs: dict[str, Array]) -> None:
    """Execute a band program over ``length`` items starting at flat ``base`` of ``src``."""
    for kind, dst, (name, off), second, extra in ops:
        n = length + extra
        out = bufs[dst][:n]
        first = src[base + off : base + off + n] if name == "src" else bufs[name][off : off + n]
        if kind == "mul":
            np.multiply(first, second, out=out)
        elif kind == "copy":
            np.copyto(out, first)
        else:
            name, off = second
            at = base + off if name == "src" else off
            other = (src if name == "src" else bufs[name])[at : at + n]
            (np.add if kind == "add" else np.subtract)(first, other, out=out)


def _band_rows(width: int, itemsize: int, span_rows: int = 0) -> int:
    """Rows per band: about ``_BAND_BYTES`` of scratch, and at least ``2 * span_rows``."""
    return max(1, _BAND_BYTES // (width * itemsize), 2 * span_rows)


# --------------------------------------------------------------------------------------------
# Scratch memory.

_POOL: list[npt.NDArray[np.uint8]] = []
_POOL_LOCK = threading.Lock()
_POOL_KEEP = 8  # buffers kept for reuse, process-wide
_POOL_MAX_BYTES = 8 * 1024 * 1024  # larger buffers are allocated (and freed) per call


class _Workspace:
    """Scratch buffers for one call, drawn from a small process-wide pool and returned after.

    Allocating a few fresh megabytes per call makes glibc hand the memory back to the kernel
    on free and fault it in again next time, which can cost more than the whole 3x3 filter of
    a 512 x 512 image. Reusing pooled buffers (at most
    ``_POOL_KEEP`` of at most ``_POOL_MAX_BYTES``) avoids that; bigger ones are allocated.
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
        self, ops: tuple[Op, ...], length: int, work: np.dtype[Any], *, acc: bool = True
    ) -> dict[str, Array]:
        """The buffers ``ops`` writes, sized for bands of ``length`` items plus their extras.

        With ``acc=False`` the caller supplies ``acc`` (a view into its own buffer).
        """
        sizes: dict[str, int] = {}
        for _, dst, _, _, extra in ops:
            if acc or dst != "acc":
                sizes[dst] = max(sizes.get(dst, 0), length + extra)
        return {name: self.empty(size, work) for name, size in sizes.items()}


# --------------------------------------------------------------------------------------------
# One channel.


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
        _direct(plan, source, start, stop, out, scale, ws)
    else:
        _two_pass(plan, source, start, stop, out, scale, ws)


def _emit(acc: Array, out: Array, scale: float, rint: bool = False) -> None:
    """``out = float32(rint?(acc) * scale)``; the product is in float64 for integer ``acc``.

    An int16 ``acc`` and a ``scale`` that float32 holds exactly are converted first and
    multiplied in float32 (three times faster): both factors have at most 24 significant
    bits, so the float64 product is exact and either way is rounded once to float32.
    """
    if rint and acc.dtype.kind == "f":
        np.rint(acc, out=acc)
    if scale == 1.0:
        np.copyto(out, acc, casting="unsafe")
    elif acc.dtype == np.int16 and abs(scale) < 2.0**127 and float(np.float32(scale)) == scale:
        np.copyto(out, acc, casting="unsafe")
        np.multiply(out, np.float32(scale), out=out)
    else:
        np.multiply(acc, scale, out=out, casting="unsafe")


def _direct(
    plan: _Plan,
    source: _Source,
    start: int,
    stop: int,
    out: Array,
    scale: float,
    ws: _Workspace,
) -> None:
    """Per band of rows ``start .. stop - 1``: pad the band's source rows, run the tap
    program, emit into ``out`` (whose row 0 is row ``start``)."""
    width, work = plan.width, plan.work
    halo = plan.kernel.shape[0] - 1
    band = min(stop - start, _band_rows(width, work.itemsize))
    src = ws.empty((band + halo + 1) * width, work)
    bufs = ws.scratch(plan.first, band * width, work)
    cols = out.shape[1]
    for r0 in range(start, stop, band):
        r1 = min(stop, r0 + band)
        source.rows(r0, r1 + halo, src)
        length = (r1 - r0) * width
        _run(plan.first, src, 0, length, bufs)
        block = bufs["acc"][:length].reshape(r1 - r0, width)[:, :cols]
        _emit(block, out[r0 - start : r1 - start], scale)


def _two_pass(
    plan: _Plan,
    source: _Source,
    start: int,
    stop: int,
    out: Array,
    scale: float,
    ws: _Workspace,
) -> None:
    """Horizontal then vertical pass per band, through a rolling buffer of band + halo rows.

    Row ``j`` of ``rows_h`` is the horizontal pass of padded row ``r0 + j``. Moving to the next
    band keeps the ``halo = kr - 1`` rows both bands need and computes only the new ones.
    """
    width, work = plan.width, plan.work
    halo = plan.kernel.shape[0] - 1
    span = halo + 1 if plan.method == "box" else 0
    band = min(stop - start, _band_rows(width, work.itemsize, span))
    src = ws.empty((band + halo + 1) * width, work)
    rows_h = ws.empty((band + halo) * width, work)
    bufs_h = ws.scratch(plan.first, (band + halo) * width, work, acc=False)
    bufs_v = ws.scratch(plan.second, band * width, work)
    cols = out.shape[1]
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
        length = (r1 - r0) * width
        _run(plan.second, rows_h, 0, length, bufs_v)
        block = bufs_v["acc"][:length].reshape(r1 - r0, width)[:, :cols]
        _emit(block, out[r0 - start : r1 - start], scale)


# --------------------------------------------------------------------------------------------
# Padding.


def _source_index(positions: npt.NDArray[np.intp], size: int, mode: str) -> npt.NDArray[np.intp]:
    """Map positions outside ``0..size-1`` to the pixel scipy.ndimage reads there."""
    if mode == "nearest" or (mode == "mirror" and size == 1):
        return np.clip(positions, 0, size - 1)
    if mode == "wrap":
        return positions % size
    if mode == "reflect":
        folded = positions % (2 * size)
        return np.where(folded < size, folded, 2 * size - 1 - folded)
    folded = positions % (2 * size - 2)  # mirror
    return np.where(folded < size, folded, 2 * size - 2 - folded)


@lru_cache(maxsize=1024)
def _source_rows(start: int, stop: int, size: int, mode: str) -> slice | npt.NDArray[np.intp]:
    """`_source_index` of ``start .. stop - 1`` as a slice when it is a run (the usual case)."""
    index = _source_index(np.arange(start, stop), size, mode)
    first, last = int(index[0]), int(index[-1])
    if len(index) == 1:
        return slice(first, first + 1)
    steps = np.diff(index)
    if np.all(steps == 1):
        return slice(first, last + 1)
    if np.all(steps == -1):
        return slice(first, last - 1 if last > 0 else None, -1)
    index.flags.writeable = False
    return index


def _fill_axis(grid: Array, lead: int, data: int, trail: int, mode: str) -> None:
    """Pad axis 0 of ``grid`` (whose rows ``lead .. lead + data - 1`` hold data) in place."""
    inside = grid[lead : lead + data]
    reach = max(lead, trail)
    if mode == "nearest":
        grid[:lead] = inside[:1]
        grid[lead + data :] = inside[-1:]
    elif mode == "reflect" and reach <= data:  # b a | a b c d | d c
        grid[:lead] = inside[:lead][::-1]
        grid[lead + data :] = inside[data - trail :][::-1]
    elif mode == "mirror" and reach < data:  # c b | a b c d | c b
        grid[:lead] = inside[1 : lead + 1][::-1]
        grid[lead + data :] = inside[data - 1 - trail : data - 1][::-1]
    elif mode == "wrap" and reach <= data:  # c d | a b c d | a b
        grid[:lead] = inside[data - lead :]
        grid[lead + data :] = inside[:trail]
    else:  # padding wider than the image: the periodic index map
        if lead:
            grid[:lead] = inside[_source_index(np.arange(-lead, 0), data, mode)]
        if trail:
            grid[lead + data :] = inside[_source_index(np.arange(data, data + trail), data, mode)]


class _Source:
    """The padded plane, produced a few rows at a time into flat ``work`` buffers.

    Padded row ``p`` is image row ``p - top`` (mapped by `_source_index` outside the image);
    the row width is ``left + N + right``. The rows of any range equal those of
    ``numpy.pad(plane, ((top, bottom), (left, right)), NUMPY_PAD_MODE[border])``, for any pad
    width (also wider than the image); building them per band keeps the source in cache
    instead of writing and re-reading a padded copy of the whole image.
    """

    def __init__(
        self,
        plane: Array,
        pads: tuple[int, int, int, int],
        border: str,
        fill: float,
        work: np.dtype[Any],
    ) -> None:
        self.plane, self.pads, self.border = plane, pads, border
        self.fill = work.type(fill)
        self.width = plane.shape[1] + pads[2] + pads[3]

    def rows(self, p0: int, p1: int, flat: Array) -> None:
        """Write padded rows ``p0 .. p1 - 1`` to ``flat``, then ``width`` zeros (slack)."""
        top, _, left, right = self.pads
        plane, border, width = self.plane, self.border, self.width
        rows, cols = plane.shape
        count = p1 - p0
        grid = flat[: count * width].reshape(count, width)
        flat[count * width : (count + 1) * width] = 0
        centre = grid[:, left : left + cols]
        i0, i1 = max(p0, top), min(p1, top + rows)
        if i0 < i1:
            np.copyto(centre[i0 - p0 : i1 - p0], plane[i0 - top : i1 - top], casting="unsafe")
        for q0, q1 in ((p0, min(p1, top)), (max(p0, top + rows), p1)):
            if q0 >= q1:
                continue
            if border == "constant":
                grid[q0 - p0 : q1 - p0] = self.fill
            else:
                index = _source_rows(q0 - top, q1 - top, rows, border)
                np.copyto(centre[q0 - p0 : q1 - p0], plane[index], casting="unsafe")
        if not (left or right):
            return
        if border == "constant":
            grid[:, :left] = self.fill
            grid[:, left + cols :] = self.fill
        else:
            _fill_axis(grid.T, left, cols, right, border)


# --------------------------------------------------------------------------------------------
# FFT.


@lru_cache(maxsize=64)
def _smooth_sizes(limit: int) -> tuple[int, ...]:
    """All ``2^a 3^b 5^c`` up to ``limit`` (sizes pocketfft transforms fast; 7 is slower)."""
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


@lru_cache(maxsize=8)  # up to ~3 MB each: kept apart from the plans, and few
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
    transforms run in float64 (faster than float32 in NumPy's pocketfft, and accurate enough
    to round integer sums). Tiles sit on the whole plane's grid (row ``0``, ``step``, ...)
    with the whole plane's extent (``span``: start, stop, total rows) whatever ``start`` is,
    so a stripe's values equal the whole call's bit for bit; rows of a tile outside
    ``start .. stop - 1`` are computed and not emitted.
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
