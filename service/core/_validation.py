"""Argument checks shared by the core functions (in the spirit of skimage's ``check_nD``).

Every check raises a :class:`~service.core.errors.CoreError` subclass whose ``param`` is the
offending parameter and whose message names it in backticks, e.g.
``KernelError("kernel", "`kernel` must be 2-D, got 3-D")``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from .errors import CoreError, ImageError, KernelError, ParameterError

T = TypeVar("T")

#: dtype kinds accepted as pixel or kernel values: bool, signed, unsigned, float.
REAL_KINDS = "biuf"


def check_nd(
    array: npt.ArrayLike,
    ndim: int | Sequence[int],
    arg_name: str,
    *,
    error: type[CoreError] = ImageError,
) -> npt.NDArray[Any]:
    """Return ``array`` as an ndarray after checking it is real, non-empty and ``ndim``-D.

    Parameters
    ----------
    array : array_like
        The value to check; nested lists must be rectangular.
    ndim : int or sequence of int
        The accepted numbers of dimensions.
    arg_name : str
        The parameter name used in the error (``param`` and the backticked message).
    error : type of CoreError, optional
        The class raised, ``ImageError`` by default.

    Returns
    -------
    ndarray
        ``numpy.asarray(array)``, not copied.

    Raises
    ------
    CoreError
        ``error`` when ``array`` is ragged, not numeric and real, empty or of the wrong ndim.

    Examples
    --------
    >>> check_nd([[1, 2], [3, 4]], 2, "kernel").shape
    (2, 2)
    >>> check_nd([1, 2], (2, 3), "image")
    Traceback (most recent call last):
    ...
    service.core.errors.ImageError: `image` must be 2-D or 3-D, got 1-D
    """
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    try:
        arr = np.asarray(array)
    except (ValueError, TypeError) as exc:
        raise error(arg_name, f"`{arg_name}` must be a rectangular array of numbers") from exc
    if arr.dtype.kind not in REAL_KINDS:
        raise error(arg_name, f"`{arg_name}` must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        raise error(arg_name, f"`{arg_name}` must be {wanted}, got {arr.ndim}-D")
    if arr.size == 0:
        raise error(arg_name, f"`{arg_name}` must not be empty, got shape {arr.shape}")
    return arr


def check_image(
    image: npt.ArrayLike, *, alpha: bool = False, arg_name: str = "image"
) -> npt.NDArray[Any]:
    """Check an image: (M, N) or (M, N, C) with C in 1..4, real dtype; ``alpha`` needs C >= 2.

    Booleans are returned viewed as ``np.uint8``. Float images must be finite.

    Examples
    --------
    >>> check_image(np.zeros((2, 3, 5)))
    Traceback (most recent call last):
    ...
    service.core.errors.ImageError: `image` must have 1 to 4 channels, got 5
    """
    arr = check_nd(image, (2, 3), arg_name)
    if arr.ndim == 3 and not 1 <= arr.shape[2] <= 4:
        raise ImageError(arg_name, f"`{arg_name}` must have 1 to 4 channels, got {arr.shape[2]}")
    if alpha and (arr.ndim != 3 or arr.shape[2] < 2):
        raise ParameterError(
            "alpha",
            f"`alpha` needs an image of shape (M, N, C) with C >= 2, got shape {arr.shape}",
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ImageError(arg_name, f"`{arg_name}` must be finite (no NaN or infinity)")
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    return arr


def check_kernel(
    kernel: npt.ArrayLike, *, max_side: int, arg_name: str = "kernel"
) -> npt.NDArray[np.float64]:
    """Check a kernel: 2-D, non-empty, finite, each side <= ``max_side``; return float64.

    Examples
    --------
    >>> check_kernel([[1, 2, 1]], max_side=63)
    array([[1., 2., 1.]])
    >>> check_kernel([[1.0, float("nan")]], max_side=63)
    Traceback (most recent call last):
    ...
    service.core.errors.KernelError: `kernel` must be finite (no NaN or infinity)
    """
    side = check_int(max_side, "max_kernel_side", minimum=1)
    arr = check_nd(kernel, 2, arg_name, error=KernelError)
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        raise KernelError(arg_name, f"`{arg_name}` must be finite (no NaN or infinity)")
    if max(values.shape) > side:
        rows, cols = values.shape
        raise KernelError(
            arg_name, f"`{arg_name}` is {rows} x {cols}; each side must be at most {side}"
        )
    return values


def check_finite(value: object, arg_name: str) -> float:
    """Return ``value`` as a finite float or raise ``ParameterError``.

    Examples
    --------
    >>> check_finite(2, "weight")
    2.0
    >>> check_finite(float("inf"), "cval")
    Traceback (most recent call last):
    ...
    service.core.errors.ParameterError: `cval` must be a finite number, got inf
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(arg_name, f"`{arg_name}` must be a real number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ParameterError(arg_name, f"`{arg_name}` must be a finite number, got {result}")
    return result


def check_int(value: object, arg_name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int (not bool) >= ``minimum`` or raise ``ParameterError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(arg_name, f"`{arg_name}` must be an integer, got {value!r}")
    result = int(value)
    if minimum is not None and result < minimum:
        raise ParameterError(arg_name, f"`{arg_name}` must be at least {minimum}, got {result}")
    return result


def check_choice(value: object, choices: Sequence[T], arg_name: str) -> T:
    """Return ``value`` if it is one of ``choices``, else raise ``ParameterError``.

    Examples
    --------
    >>> check_choice("wrap", ("reflect", "wrap"), "border")
    'wrap'
    >>> check_choice("edge", ("reflect", "wrap"), "border")
    Traceback (most recent call last):
    ...
    service.core.errors.ParameterError: `border` must be one of 'reflect', 'wrap'; got 'edge'
    """
    for choice in choices:
        if isinstance(value, str) and value == choice:
            return choice
    listed = ", ".join(repr(c) for c in choices)
    raise ParameterError(arg_name, f"`{arg_name}` must be one of {listed}; got {value!r}")
