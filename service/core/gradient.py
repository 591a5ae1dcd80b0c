"""Gradient magnitude: the edge strength of two kernels' responses, ``sqrt(gx**2 + gy**2)``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypedDict, Unpack

import numpy as np
import numpy.typing as npt

from .convolution import correlate_stripes
from .errors import KernelError, ParameterError
from .types import Border


class GradientOptions(TypedDict, total=False):
    """The keyword arguments of `gradient_magnitude` and `gradient_magnitude_stripes`.

    weight_x, weight_y : float
        Multiply each response before combining (a negative weight flips a response's sign,
        which the magnitude ignores). Default 1.
    border : {'reflect', 'mirror', 'nearest', 'wrap', 'constant', 'valid'}
        As for `correlate`. ``'keep'`` is refused: it keeps input values at the border,
        which are not gradients. Default 'reflect'.
    cval : float
        The outside value for ``border='constant'``. Default 0.
    flip : bool
        Flip both kernels (true convolution), as for `correlate`. Default False.
    alpha : bool
        If True the last channel is alpha and is copied unchanged. Default False.
    max_kernel_side : int
        The largest kernel side accepted. Default 63.
    """

    weight_x: float
    weight_y: float
    border: Border
    cval: float
    flip: bool
    alpha: bool
    max_kernel_side: int


def gradient_magnitude(
    image: npt.ArrayLike,
    kernel_x: npt.ArrayLike,
    kernel_y: npt.ArrayLike,
    **options: Unpack[GradientOptions],
) -> npt.NDArray[np.float32]:
    """The gradient magnitude of an image under two kernels, per channel.

    ``out = sqrt(gx**2 + gy**2)`` with ``gx = weight_x * correlate(image, kernel_x)`` and
    ``gy = weight_y * correlate(image, kernel_y)``, each exactly `correlate` with the same
    ``border``, ``cval`` and ``flip``. With the Sobel pair (``sobel-x``, ``sobel-y``) it is the
    Sobel edge magnitude, ``skimage.filters.sobel`` up to its ``1/sqrt(32)`` scaling.

    Parameters
    ----------
    image : array_like of shape (M, N) or (M, N, C), C in 1..4
        Real values (8-bit images, or the float32 output of an earlier step).
    kernel_x, kernel_y : array_like of shape (kr, kc)
        The two kernels: any finite rectangles up to ``max_kernel_side`` a side. With
        ``border='valid'`` they must have the same shape (the responses must line up).
    **options
        ``weight_x``, ``weight_y``, ``border``, ``cval``, ``flip``, ``alpha``,
        ``max_kernel_side``: see `GradientOptions`.

    Returns
    -------
    ndarray of float32
        The image's shape (``'valid'``: ``kr - 1`` fewer rows and ``kc - 1`` fewer columns);
        every value except alpha is ``>= 0``.

    Raises
    ------
    CoreError
        ``ParameterError`` for ``border='keep'``; ``KernelError`` for kernels of different
        shapes with ``'valid'``; otherwise what `correlate` raises for either kernel.

    Examples
    --------
    >>> img = np.array([[0, 0, 9, 9]] * 3, dtype=np.uint8)
    >>> gradient_magnitude(img, [[-1, 0, 1]], [[-1], [0], [1]], border="nearest")
    array([[0., 9., 9., 0.],
           [0., 9., 9., 0.],
           [0., 9., 9., 0.]], dtype=float32)
    """
    pixels = np.asarray(image)
    rows = max(1, pixels.shape[0]) if pixels.ndim else 1
    return next(
        gradient_magnitude_stripes(pixels, kernel_x, kernel_y, stripe_rows=rows, **options)
    )[1]


def gradient_magnitude_stripes(
    image: npt.ArrayLike,
    kernel_x: npt.ArrayLike,
    kernel_y: npt.ArrayLike,
    *,
    stripe_rows: int,
    threads: int = 1,
    **options: Unpack[GradientOptions],
) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    """`gradient_magnitude`, output rows ``stripe_rows`` at a time: yields ``(first row, stripe)``.

    The stripes, stacked, are exactly ``gradient_magnitude(image, kernel_x, kernel_y, ...)``
    with the same arguments (both responses come from `correlate_stripes`, which is exact per
    stripe). ``threads``: stripes of each response computed at once, as for
    `correlate_stripes`. Arguments are checked before the first stripe is computed.
    """
    border = options.get("border", "reflect")
    if border == "keep":
        raise ParameterError(
            "border",
            "`border` 'keep' keeps input pixels, which are not gradients; use reflect, mirror, "
            "nearest, wrap, constant or valid",
        )
    shape_x, shape_y = np.shape(kernel_x), np.shape(kernel_y)
    if border == "valid" and shape_x != shape_y:
        raise KernelError(
            "kernels",
            f"with `border` 'valid' both kernels need the same shape, got "
            f"{'x'.join(map(str, shape_x))} and {'x'.join(map(str, shape_y))}",
        )
    alpha = options.get("alpha", False)

    def response(kernel: npt.ArrayLike, weight: float) -> Iterator[tuple[int, npt.NDArray[Any]]]:
        return correlate_stripes(
            image, kernel, stripe_rows=stripe_rows, threads=threads, weight=weight,
            border=border, cval=options.get("cval", 0.0), flip=options.get("flip", False),
            alpha=alpha, max_kernel_side=options.get("max_kernel_side", 63),
        )  # fmt: skip

    responses_x = response(kernel_x, options.get("weight_x", 1.0))
    responses_y = response(kernel_y, options.get("weight_y", 1.0))
    return _combined(responses_x, responses_y, alpha)


def _combined(
    responses_x: Iterator[tuple[int, npt.NDArray[np.float32]]],
    responses_y: Iterator[tuple[int, npt.NDArray[np.float32]]],
    alpha: bool,
) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    for (r0, gx), (_, gy) in zip(responses_x, responses_y, strict=True):
        kept = gx[..., -1].copy() if alpha else None
        np.hypot(gx, gy, out=gx)
        if kept is not None:
            gx[..., -1] = kept
        yield r0, gx
