"""Codelab mode: the lesson's convolution loop, vectorised but bit for bit.

The lesson (TensorFlow's "convolutions" codelab on the ascent image) computes, for a 3x3
``filter`` and a ``weight``::

    for x in range(1, size_x - 1):
      for y in range(1, size_y - 1):
          output_pixel = 0.0
          output_pixel = output_pixel + (i[x - 1, y-1] * filter[0][0])
          output_pixel = output_pixel + (i[x, y-1] * filter[0][1])
          ...                                     # 9 terms, filter row by filter row
          output_pixel = output_pixel * weight
          i_transformed[x, y] = output_pixel

`codelab_correlate` reproduces it for any odd square ``k x k`` kernel, with ``m = k // 2``:
``filter[r][c]`` multiplies ``i[x + c - m, y + r - m]``. Its quirks are part of the contract:

1. **The kernel is applied transposed.** ``x`` is the first array axis (the row) and ``y``
   the second, but the filter's *column* index ``c`` moves along ``x``. So codelab output is
   the standard correlation with the transposed kernel: ``codelab(img, k)`` equals
   ``correlate(img, k.T)`` inside the margin. The lesson's prose says
   ``[-1,0,1,-2,0,2,-1,0,1]`` "gives you a very strong set of vertical lines" -- true of the
   standard correlation, but its loop actually shows *horizontal* lines with that filter
   (and vertical ones with ``[-1,-2,-1,0,0,0,1,2,1]``).
2. **The margin keeps the input.** The loop skips the ``m`` outermost rows and columns, so
   those pixels keep their input values (``i_transformed`` starts as a copy of ``i``).
3. **float64, in the loop's order.** ``output_pixel`` starts at ``0.0``; each term is
   ``float64(pixel) * filter[r][c]``, added in the order ``r`` outer, ``c`` inner; the sum is
   then multiplied by ``weight``. NumPy adds whole arrays in the same order with the same
   IEEE float64 operations (no fused multiply-add), so every value is identical to the
   loop's. (In the NumPy 1 days the lesson ran with -- and with SciPy's ``ascent()``, an
   int64 array -- ``pixel * filter[r][c]`` was an exact integer product; it is exact here too.)
4. **Clamp, then truncate.** The original notebook clamped ``output_pixel`` to 0..255
   before the assignment -- a step the printed code lost -- and the assignment into an
   integer array truncates toward zero. This function returns the *pre-clamp* float64
   values; ``apply_scale(values, "clamp")`` (clip to 0..255, truncate) then gives exactly
   the lesson's 8-bit image.
5. **Pooling (not here).** The printed pooling loop collects the 4 pixels of each 2x2 block
   and stores ``pixels[0]`` -- the top-left one -- having lost the original notebook's
   ``pixels.sort(reverse=True)``; the text says max pooling, and max is what codelab
   pooling does (`service.core.pooling.pool`).

Only odd square kernels have a centre pixel the loop can be written around; anything else is
a `KernelError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._docstrings import docfiller
from ._validation import check_finite, check_image, check_kernel
from .errors import KernelError


@docfiller
def codelab_correlate(
    image: npt.ArrayLike,
    kernel: npt.ArrayLike,
    weight: float = 1.0,
    *,
    alpha: bool = False,
    max_kernel_side: int = 63,
) -> npt.NDArray[np.float64]:
    """The lesson's ``output_pixel`` values, for each channel, margins holding the input.

    Parameters
    ----------
    %(image)s
    kernel : array_like of shape (k, k), k odd
        The lesson's ``filter``: ``kernel[r][c]`` multiplies ``image[x + c - m, y + r - m]``
        with ``m = k // 2`` (transposed with respect to the standard mode).
    weight : float, optional
        Multiplies the finished float64 sum, as in the lesson. Must be finite. Default 1.
    %(alpha)s
    max_kernel_side : int, optional
        The largest ``k`` accepted. Default 63.

    Returns
    -------
    ndarray of np.float64
        The shape of ``image``. Inside the margin, the lesson's ``output_pixel`` before its
        clamp; in the ``m``-pixel margin (and the alpha channel), the input values.

    Raises
    ------
    ImageError
        ``image`` is not (M, N) or (M, N, C) with C in 1..4, is empty, not real or not finite.
    KernelError
        ``kernel`` is not an odd square ``k x k`` array of finite values with
        ``k <= max_kernel_side``.
    ParameterError
        ``weight`` is not finite, or ``alpha`` is set for an image without a spare channel.

    See Also
    --------
    service.core.convolution.correlate : standard mode.
    service.core.scaling.apply_scale : ``clamp`` turns these values into the lesson's image.

    Notes
    -----
    For ``m <= x < M - m`` and ``m <= y < N - m``

    .. math::

        out[x, y] = \\Big(\\big(\\cdots(0 + i[x - m, y - m] f[0][0])
                    + i[x - m + 1, y - m] f[0][1] \\cdots\\big)
                    + i[x + m, y + m] f[k-1][k-1]\\Big) \\cdot w

    evaluated in float64 in exactly this order; elsewhere ``out = i``. See the module
    docstring for why the kernel appears transposed.

    Examples
    --------
    The transposition: a kernel whose only non-zero entry is ``f[0][1]`` reads, with
    ``m = 1``, ``i[x + 1 - 1, y + 0 - 1] = i[x, y - 1]``, so the 7 moves one column *right*
    (standard-mode correlation with the same kernel moves it one row down):

    >>> img = np.zeros((5, 5), dtype=np.uint8)
    >>> img[2, 2] = 7
    >>> codelab_correlate(img, [[0, 1, 0], [0, 0, 0], [0, 0, 0]])[2]
    array([0., 0., 0., 7., 0.])

    The margin keeps the input; only the centre of a 3 x 3 image is computed (here the
    lesson's ``weight = 0.1`` normalisation of a box sum, ``36 * 0.1``):

    >>> codelab_correlate(np.arange(9, dtype=np.uint8).reshape(3, 3), np.ones((3, 3)), 0.1)
    array([[0. , 1. , 2. ],
           [3. , 3.6, 5. ],
           [6. , 7. , 8. ]])
    """
    img = check_image(image, alpha=alpha)
    kern = check_kernel(kernel, max_side=max_kernel_side)
    rows, cols = kern.shape
    if rows != cols or rows % 2 == 0:
        raise KernelError(
            "kernel",
            f"codelab mode needs an odd square `kernel` (k x k, k odd), got {rows} x {cols}",
        )
    scale = check_finite(weight, "weight")
    out = img.astype(np.float64)
    if img.ndim == 2:
        _codelab_plane(out, kern, scale)
        return out
    filtered = img.shape[2] - 1 if alpha else img.shape[2]
    for ch in range(filtered):
        plane = np.ascontiguousarray(out[:, :, ch])
        _codelab_plane(plane, kern, scale)
        out[:, :, ch] = plane
    return out


def _codelab_plane(
    plane: npt.NDArray[np.float64], kern: npt.NDArray[np.float64], weight: float
) -> None:
    """Overwrite the interior of ``plane`` (float64 input values) with the loop's values."""
    size_x, size_y = plane.shape
    k = kern.shape[0]
    m = k // 2
    inner_x, inner_y = size_x - 2 * m, size_y - 2 * m
    if inner_x <= 0 or inner_y <= 0:
        return
    total = np.zeros((inner_x, inner_y), dtype=np.float64)
    term = np.empty_like(total)
    for r in range(k):
        for c in range(k):
            # x + c - m for x in m .. size_x - m - 1 is c .. c + inner_x - 1 (likewise y, r)
            window: npt.NDArray[Any] = plane[c : c + inner_x, r : r + inner_y]
            np.multiply(window, kern[r, c], out=term)
            np.add(total, term, out=total)
    np.multiply(total, weight, out=total)
    plane[m : m + inner_x, m : m + inner_y] = total
