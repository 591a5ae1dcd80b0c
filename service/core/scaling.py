"""Filter results to 8 bits (``clamp``, ``abs``, ``normalize``) or left as float32 (``raw``).

A convolution's sums run outside 0..255 (negative edges, sums over 255); these are the ways
back to an 8-bit image:

========== =====================================================================
clamp      clip to 0..255, then truncate toward zero -- the lesson's rule (its
           notebook clamps, then assigns into an integer array). The default.
abs        absolute value, then ``clamp``: both edge polarities show.
normalize  linear map of the colour channels' min..max onto 0..255, rounded to
           nearest; a constant image maps to 0.
raw        no change: float32, for array output only.
========== =====================================================================
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ._validation import check_choice, check_nd
from .errors import ParameterError
from .types import SCALES, Scale


def apply_scale(
    values: npt.ArrayLike,
    scale: Scale = "clamp",
    *,
    alpha: bool = False,
    out: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8] | npt.NDArray[np.float32]:
    """Convert filter output to 8 bits (or float32 for ``raw``).

    Parameters
    ----------
    values : ndarray of shape (M, N) or (M, N, C)
        Real values, typically the float32 result of `service.core.convolution.correlate`
        or the float64 result of `service.core.codelab.codelab_correlate`. Assumed NaN-free.
    scale : {'clamp', 'abs', 'normalize', 'raw'}, optional
        The conversion (see Notes). Default 'clamp'.
    alpha : bool, optional
        If True the last channel is alpha: it is only clamped, never made absolute or
        normalized (and, like everything, left unchanged by 'raw'). Needs ``C >= 2``.
    out : ndarray of np.uint8, optional
        Where to write the 8-bit result (the shape of ``values``); not for 'raw'. Default:
        a new array.

    Returns
    -------
    ndarray of np.uint8, or of np.float32 for ``scale='raw'``
        The same shape as ``values``. For 'raw', ``values`` itself when it already is
        float32, else a float32 copy.

    Raises
    ------
    ImageError
        ``values`` is not 2-D or 3-D, is empty or not real.
    ParameterError
        ``scale`` is unknown (``param='scale'``) or ``alpha`` is set without a channel to spare.

    Notes
    -----
    ``clamp``: ``out = trunc(min(max(v, 0), 255))``. It works in the input's own precision:
    float64 values are never rounded to float32 first (254.99999999 gives 254, as the
    lesson's float64 arithmetic does).

    ``abs``: ``clamp(|v|)``.

    ``normalize``: ``out = rint((v - lo) * 255 / (hi - lo))`` in float64, where ``lo`` and
    ``hi`` are the minimum and maximum over all colour channels together (alpha excluded);
    ties round to even (``np.rint``). When ``hi == lo`` the colour channels are 0. When
    ``(hi - lo) * 255`` would overflow float64 the map is computed on halved values,
    ``(v/2 - lo/2) / (hi/2 - lo/2) * 255``, the same ratio without an infinite step.

    Examples
    --------
    >>> v = np.array([[-3.5, 0.0, 12.9], [254.99, 255.0, 300.0]], dtype=np.float32)
    >>> apply_scale(v)
    array([[  0,   0,  12],
           [254, 255, 255]], dtype=uint8)
    >>> apply_scale(v, "abs")
    array([[  3,   0,  12],
           [254, 255, 255]], dtype=uint8)
    >>> apply_scale(np.array([[-1.0, 0.0], [1.0, 3.0]]), "normalize")
    array([[  0,  64],
           [128, 255]], dtype=uint8)
    >>> apply_scale(np.full((2, 2), 7.0), "normalize")
    array([[0, 0],
           [0, 0]], dtype=uint8)
    """
    arr = check_nd(values, (2, 3), "values")
    check_choice(scale, SCALES, "scale")
    if alpha and (arr.ndim != 3 or arr.shape[2] < 2):
        raise ParameterError(
            "alpha", f"`alpha` needs values of shape (M, N, C) with C >= 2, got {arr.shape}"
        )
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    if scale == "raw":
        if out is not None:
            raise ParameterError("out", "`out` takes 8-bit results: not with scale 'raw'")
        return np.asarray(arr, dtype=np.float32)

    colour = arr[..., :-1] if alpha else arr
    if out is None:
        out = np.empty(arr.shape, dtype=np.uint8)
    elif out.shape != arr.shape or out.dtype != np.uint8:
        raise ParameterError("out", f"`out` must be uint8 of shape {arr.shape}")
    target = out[..., :-1] if alpha else out
    if scale == "clamp":
        _clamp(colour, target)
    elif scale == "abs":
        _clamp(colour, target, absolute=True)
    else:
        _normalize(colour, target)
    if alpha:
        _clamp(arr[..., -1], out[..., -1])
    return out


_CHUNK_ITEMS = 1 << 16  # clipped values are formed this many at a time (256 KiB of float32)


def _clamp(values: npt.NDArray[Any], out: npt.NDArray[np.uint8], absolute: bool = False) -> None:
    """``out = trunc(clip(|values| if absolute else values, 0, 255))`` (the float-to-integer
    cast truncates toward 0).

    Rows are clipped a chunk at a time, so the temporary stays small whatever the size.
    """
    if values.dtype == np.uint8:
        np.copyto(out, values)
        return
    row_items = max(1, values[:1].size)
    step = max(1, _CHUNK_ITEMS // row_items)
    for r0 in range(0, values.shape[0], step):
        chunk = np.abs(values[r0 : r0 + step]) if absolute else values[r0 : r0 + step]
        np.copyto(out[r0 : r0 + step], np.clip(chunk, 0, 255), casting="unsafe")


def _normalize(values: npt.NDArray[Any], out: npt.NDArray[np.uint8]) -> None:
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        out[...] = 0
        return
    mapped = values.astype(np.float64)
    if math.isfinite((hi - lo) * 255.0):
        mapped -= lo
        mapped *= 255.0
        mapped /= hi - lo
    else:  # a range near float64's limit: halve first (exact), so nothing overflows
        mapped *= 0.5
        mapped -= lo * 0.5
        mapped /= hi * 0.5 - lo * 0.5
        mapped *= 255.0
    np.rint(mapped, out=mapped)
    np.copyto(out, np.clip(mapped, 0, 255), casting="unsafe")
