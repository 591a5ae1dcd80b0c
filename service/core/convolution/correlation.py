"""The public functions: `correlate` and `correlate_stripes` (see the package docstring)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from .._docstrings import docfiller
from .._validation import check_int
from ..types import Border, Method
from .plan import _Job


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
