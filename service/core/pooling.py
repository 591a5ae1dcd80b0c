"""Max, average and min pooling over rectangular windows, per channel, in pure NumPy.

How it is fast: the reduction is separable and runs band by band (output rows in chunks
whose scratch buffer stays in the CPU cache, buffers reused), every step one ufunc call
(``np.maximum``, ``np.minimum`` or ``np.add``) with ``out=``.

* Down the rows: pairwise over the ``h`` strided row views (each row is contiguous, so these
  loops are fast), or, when windows overlap a lot (``sh`` much smaller than ``h``), sliding
  windows by doubling: windows of 1, 2, 4, ... rows in ``O(log h)`` whole-band operations.
* Across the columns: pairwise over ``w`` strided column views for single-channel images
  with little overlap; otherwise a *sliding* pass on the flattened contiguous buffer (each
  pixel against its right neighbours, again by doubling for wide windows) followed by a pick
  of every ``sw``-th pixel. The pick is an integer cast where it can be: ``sw`` pixels of 1,
  2 or 4 bytes viewed as one ``<u2``/``<u4``/``<u8`` and cast to the narrower unsigned type
  keep the first pixel's bytes. Otherwise pixels are viewed as ``np.void`` items and copied
  with a stride, which avoids NumPy's slow loops over short (C-long) pixels.

``bench.core`` times 2x2 max pooling against ``np.copy`` and ``reshape(...).max(axis=(1, 3))``
(docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from .errors import ImageError, ParameterError
from .types import EDGES, POOL_METHODS, Edge, PoolMethod

_Reducer = Callable[..., Any]
# Bytes of the reduced-rows buffer per band: fits the L2 cache of current CPUs with room to spare.
_BAND_BYTES: Final = 512 * 1024
# Little-endian unsigned integers by size: a group of pixels viewed as one of these and cast
# to a narrower one keeps its first pixel's bytes, on any host byte order.
_UINT_BY_SIZE: Final = {n: np.dtype(f"<u{n}") for n in (1, 2, 4, 8)}


def pool(
    image: npt.ArrayLike,
    size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    *,
    method: PoolMethod = "max",
    edge: Edge = "drop",
    max_size: int = 64,
) -> npt.NDArray[Any]:
    """Pool each channel of an image over ``size`` windows placed every ``stride`` pixels.

    Useful for max pooling (the lesson's 2x2 step), mean pooling and min pooling.

    Parameters
    ----------
    image : array_like of shape (M, N) or (M, N, C)
        Grayscale or multi-channel image of a real dtype (bool, integer or float). Every
        channel, alpha included, is pooled the same way, so the channels stay aligned.
    size : int or tuple of 2 ints, optional
        Window height and width ``(h, w)``; an int means a square window. Each side is in
        ``1..max_size``. Default 2.
    stride : int or tuple of 2 ints, optional
        Step ``(sh, sw)`` between window origins, each ``>= 1``; smaller than ``size`` gives
        overlapping windows, larger skips pixels. Default: equal to ``size``.
    method : {'max', 'avg', 'min'}, optional
        Reduction over each window. Default 'max'.
    edge : {'drop', 'partial'}, optional
        What happens at the bottom and right borders when the windows do not tile the image:
        'drop' (default) keeps only windows that lie wholly inside the image (PyTorch
        ``ceil_mode=False``); 'partial' also keeps windows that run off the bottom/right edge
        and reduces each over the pixels it covers (PyTorch ``ceil_mode=True``).
    max_size : int, optional
        Largest allowed window side. Default 64.

    Returns
    -------
    pooled : ndarray of shape (P, Q) or (P, Q, C)
        ``P`` and ``Q`` as given in Notes. For 'max' and 'min' the dtype is the input's
        (``np.uint8`` stays ``np.uint8``, ``np.float32`` stays ``np.float32``); for 'avg' it
        is ``np.float32``.

    Raises
    ------
    ImageError
        If ``image`` is not 2-D or 3-D, is empty, or has a non-real dtype.
    ParameterError
        If ``size``, ``stride``, ``method``, ``edge`` or ``max_size`` is invalid, or if
        ``edge='drop'`` and the window is larger than the image (the output would be empty).

    Notes
    -----
    Window ``(i, j)`` covers rows ``i*sh .. i*sh + h - 1`` and columns
    ``j*sw .. j*sw + w - 1``, and

    ``pooled[i, j] = reduce(image[i*sh : i*sh + h, j*sw : j*sw + w])``

    where slicing stops at the image border. The number of output rows is, for an image of
    ``M`` rows (columns: the same with ``N``, ``w``, ``sw``),

    - 'drop': ``P = (M - h) // sh + 1``, which needs ``M >= h``;
    - 'partial': ``P = min(ceil((M - h) / sh), ceil(M / sh) - 1) + 1`` when ``M >= h``, and
      ``P = 1`` when ``M < h``.

    That is PyTorch's ``ceil_mode`` rule without padding: windows are added until one reaches
    the last row, but a window must *start* inside the image, so with ``sh > h`` no window
    made only of missing rows is produced. Where PyTorch would refuse a window larger than
    the image by a whole stride or more, 'partial' returns the one window covering the image.

    Ragged edge: with 'partial', a window cut by the border is reduced over the pixels it
    covers only. This is the same as padding the bottom and right with the identity of the
    reduction (the dtype's minimum for 'max', its maximum for 'min'), and for 'avg' the
    divisor is the number of pixels actually covered, not ``h * w``.

    'avg' sums 8-bit and bool images exactly, in ``np.uint16``/``np.int16`` (windows of up
    to 257/255 pixels) or ``np.int32``, and divides once in ``np.float32`` (the sums stay
    below 2**24, so they convert exactly): the result is the exact mean, correctly rounded
    to ``np.float32``. Other dtypes sum and divide in ``np.float64`` and round the mean to
    ``np.float32``. A NaN in a float window makes that output NaN for every method.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1, 2, 3, 4],
    ...                 [5, 6, 7, 8],
    ...                 [9, 10, 11, 12],
    ...                 [13, 14, 15, 16]], dtype=np.uint8)
    >>> pool(img)
    array([[ 6,  8],
           [14, 16]], dtype=uint8)
    >>> pool(img, method="avg")
    array([[ 3.5,  5.5],
           [11.5, 13.5]], dtype=float32)
    >>> pool(img, 2, 1, method="min")
    array([[ 1,  2,  3],
           [ 5,  6,  7],
           [ 9, 10, 11]], dtype=uint8)

    A 3x3 window drops the last row and column; 'partial' keeps the cut windows:

    >>> pool(img, 3)
    array([[11]], dtype=uint8)
    >>> pool(img, 3, edge="partial")
    array([[11, 12],
           [15, 16]], dtype=uint8)

    A cut window's mean divides by the pixels it covers (here 6, 6 and 4 of them):

    >>> pool(img, 3, 2, edge="partial", method="avg")
    array([[ 6. ,  7.5],
           [12. , 13.5]], dtype=float32)
    """
    arr = _check_image(image)
    if isinstance(max_size, bool) or not isinstance(max_size, int | np.integer) or max_size < 1:
        raise ParameterError("max_size", f"`max_size` must be an integer >= 1, got {max_size!r}")
    kh, kw = _pair(size, "size", upper=int(max_size))
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride", upper=None)
    if method not in POOL_METHODS:
        raise ParameterError("method", f"`method` must be one of {POOL_METHODS}, got {method!r}")
    if edge not in EDGES:
        raise ParameterError("edge", f"`edge` must be one of {EDGES}, got {edge!r}")

    rows, cols = arr.shape[0], arr.shape[1]
    if edge == "drop" and (kh > rows or kw > cols):
        raise ParameterError(
            "size",
            f"`size` ({kh}, {kw}) is larger than the image ({rows}, {cols}): with "
            "edge='drop' no window fits and the output would be empty; use a smaller `size` "
            "or edge='partial'",
        )
    out_rows = pooled_length(rows, kh, sh, edge)
    out_cols = pooled_length(cols, kw, sw, edge)
    # A stride of at least the image side gives the single window at 0 either way.
    sh, sw = min(sh, rows), min(sw, cols)

    img3 = arr if arr.ndim == 3 else arr[:, :, np.newaxis]
    if not img3.dtype.isnative:
        img3 = img3.astype(img3.dtype.newbyteorder("="))
    shape = (out_rows, out_cols)
    if method != "avg":
        op = np.maximum if method == "max" else np.minimum
        result = _pool3(img3, op, img3.dtype, (kh, kw), (sh, sw), shape)
    else:
        acc = _sum_dtype(img3.dtype, kh * kw)
        sums = _pool3(img3, np.add, acc, (kh, kw), (sh, sw), shape)
        # Covered pixels: min(h, M - i*sh) rows times min(w, N - j*sw) columns.
        div = np.dtype(np.float64 if acc == np.float64 else np.float32)
        row_n = np.minimum(kh, rows - sh * np.arange(out_rows)).astype(div)
        col_n = np.minimum(kw, cols - sw * np.arange(out_cols)).astype(div)
        counts = (row_n[:, np.newaxis] * col_n[np.newaxis, :])[:, :, np.newaxis]
        result = np.divide(sums, counts, dtype=div).astype(np.float32, copy=False)
    return result if arr.ndim == 3 else result[:, :, 0]


def pooled_length(length: int, size: int, stride: int, edge: Edge) -> int:
    """Number of windows of ``size`` every ``stride`` along an axis of ``length`` pixels.

    Parameters
    ----------
    length, size, stride : int
        Axis length (>= 1), window side (>= 1) and step (>= 1).
    edge : {'drop', 'partial'}
        Border rule, as in `pool`.

    Returns
    -------
    int
        ``(length - size) // stride + 1`` for 'drop' (0 when ``size > length``);
        ``min(ceil((length - size) / stride), ceil(length / stride) - 1) + 1`` for
        'partial', and 1 when ``size > length``.

    Examples
    --------
    >>> pooled_length(5, 2, 2, "drop"), pooled_length(5, 2, 2, "partial")
    (2, 3)
    >>> pooled_length(5, 1, 3, "partial")  # the start 6 would lie outside the image
    2
    """
    if size > length:
        return 0 if edge == "drop" else 1
    if edge == "drop":
        return (length - size) // stride + 1
    return min(-(-(length - size) // stride), -(-length // stride) - 1) + 1


def _sum_dtype(dtype: np.dtype[Any], area: int) -> np.dtype[Any]:
    """Accumulator for window sums: exact integers for 8-bit data, else ``np.float64``.

    8-bit and bool sums are at most ``255 * area <= 255 * 64**2 < 2**24``, exact in every
    candidate and in the ``np.float32`` division; 16-bit integers hold them when the window
    has at most 257 (``np.uint16``) or 255 (``np.int16``) pixels, which halves the memory
    traffic of the common small windows.
    """
    if dtype.itemsize == 1 and dtype.kind in "bu":
        return np.dtype(np.uint16 if area <= 257 else np.int32)
    if dtype.itemsize == 1 and dtype.kind == "i":
        return np.dtype(np.int16 if area <= 255 else np.int32)
    return np.dtype(np.float64)


def _check_image(image: npt.ArrayLike) -> npt.NDArray[Any]:
    """Return ``image`` as an ndarray of shape (M, N) or (M, N, C), or raise ImageError."""
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ImageError(
            "image", f"`image` must have shape (M, N) or (M, N, C), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ImageError("image", f"`image` must not be empty, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ImageError(
            "image", f"`image` must have a real (bool, integer or float) dtype, got {arr.dtype}"
        )
    return arr


def _pair(value: object, name: str, *, upper: int | None) -> tuple[int, int]:
    """``value`` as ``(rows, cols)`` ints in ``1..upper``, or ParameterError naming ``name``."""
    items = (value, value) if not isinstance(value, tuple | list) else tuple(value)
    limit = "" if upper is None else f" and <= {upper}"
    ok = len(items) == 2 and all(
        isinstance(v, int | np.integer)
        and not isinstance(v, bool | np.bool_)
        and v >= 1
        and (upper is None or v <= upper)
        for v in items
    )
    if not ok:
        raise ParameterError(
            name, f"`{name}` must be an int or a pair of ints, each >= 1{limit}; got {value!r}"
        )
    return int(cast(int, items[0])), int(cast(int, items[1]))


def _bands(out_rows: int, row_bytes: int) -> list[tuple[int, int]]:
    """Split ``range(out_rows)`` into consecutive bands whose buffer fits ``_BAND_BYTES``."""
    step = max(8, _BAND_BYTES // max(row_bytes, 1))
    return [(r, min(r + step, out_rows)) for r in range(0, out_rows, step)]


def _valid(count: int, length: int, offset: int, stride: int) -> int:
    """How many of windows ``0..count-1`` have pixel ``i*stride + offset`` inside the axis."""
    return min(count, -(-(length - offset) // stride)) if offset < length else 0


def _doubling_ops(k: int, idempotent: bool) -> int:
    """Operations `_slide` needs for a window of ``k``: doublings plus combining steps."""
    doublings = k.bit_length() - 1
    if idempotent:
        return doublings + (k & (k - 1) != 0)
    return doublings + k.bit_count() - 1


def _slide(
    x: npt.NDArray[Any],
    op: _Reducer,
    k: int,
    unit: int,
    acc: np.dtype[Any] | None,
    out: npt.NDArray[Any] | None = None,
) -> npt.NDArray[Any]:
    """Sliding ``op`` over ``k`` consecutive items along axis 0, items being ``unit`` long.

    Returns ``z`` with ``z[p] = op(x[p], x[p + unit], ..., x[p + (k-1)*unit])`` for the
    ``len(x) - (k-1)*unit`` positions where the window fits, in ``O(log k)`` whole-array
    operations: windows of 1, 2, 4, ... items by doubling, then the last window from the
    largest doubling twice (max/min: overlapping is harmless) or from one piece per set bit
    of ``k`` (sums). If ``out`` is given, the result is written into its first positions.
    """
    n = x.shape[0] - (k - 1) * unit
    idempotent = op is not np.add
    if k == 1:
        if out is None:
            return x[:n]
        out[:n] = x[:n]
        return out[:n]
    levels = {1: x}
    p, cur = 1, x
    while 2 * p <= k:
        last = 2 * p == k and (idempotent or k.bit_count() == 1)
        size = cur.shape[0] - p * unit
        dest = out[:n] if (last and out is not None) else None
        cur = op(cur[:size], cur[p * unit :], out=dest, dtype=acc)
        p *= 2
        levels[p] = cur
    if p == k:
        return cur[:n]
    dest = None if out is None else out[:n]
    if idempotent:
        return op(cur[:n], cur[(k - p) * unit : (k - p) * unit + n], out=dest)  # type: ignore[no-any-return]
    res: npt.NDArray[Any] | None = None
    offset = 0
    for q in sorted(levels, reverse=True):
        if k & q:
            piece = levels[q][offset * unit : offset * unit + n]
            res = piece if res is None else op(res, piece, out=dest, dtype=acc)
            offset += q
    assert res is not None
    return res


def _pad_value(op: _Reducer, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Padding that leaves a cut window's reduction unchanged: the last item, or 0 for sums."""
    return np.zeros_like(x[-1:]) if op is np.add else x[-1:]


def _rows_pass(
    src: npt.NDArray[Any],
    op: _Reducer,
    kh: int,
    sh: int,
    acc: np.dtype[Any] | None,
    out: npt.NDArray[Any],
) -> None:
    """``out[i] = op over dr < kh of src[i*sh + dr]`` for ``i < len(out)``; missing rows skipped.

    ``src`` holds the band's input rows (at least one per output row). Pairwise reduction of
    ``kh`` strided row views, or `_slide` by doubling when windows overlap a lot.
    """
    n = out.shape[0]
    span = (n - 1) * sh + kh
    pairwise_cost = (kh - 1) * n
    doubling_cost = _doubling_ops(kh, op is not np.add) * span + n
    if kh > 2 and doubling_cost < pairwise_cost:
        rows = src.shape[0]
        if rows < span:  # cut windows at the bottom: pad with the reduction's neutral rows
            pad = _pad_value(op, src)
            src = np.concatenate([src, np.repeat(pad, span - rows, axis=0)])
        slid = _slide(src, op, kh, 1, acc)
        out[...] = slid[: (n - 1) * sh + 1 : sh]
        return

    def rows_at(d: int, m: int) -> npt.NDArray[Any]:
        step = sh if m > 1 else 1
        return src[d : d + step * (m - 1) + 1 : step]

    if kh > 1 and _valid(n, src.shape[0], 1, sh) == n:
        op(rows_at(0, n), rows_at(1, n), out=out, dtype=acc)
        first = 2
    else:
        out[...] = rows_at(0, n)
        first = 1
    for dr in range(first, kh):
        m = _valid(n, src.shape[0], dr, sh)
        if m == 0:
            break
        op(out[:m], rows_at(dr, m), out=out[:m], dtype=acc)


def _cols_pairwise(
    src: npt.NDArray[Any],
    op: _Reducer,
    kw: int,
    sw: int,
    acc: np.dtype[Any] | None,
    out: npt.NDArray[Any],
) -> None:
    """``out[:, j] = op over dc < kw of src[:, j*sw + dc]``, columns past the edge skipped."""
    count = out.shape[1]

    def cols_at(d: int, m: int) -> npt.NDArray[Any]:
        step = sw if m > 1 else 1
        return src[:, d : d + step * (m - 1) + 1 : step]

    if kw > 1 and _valid(count, src.shape[1], 1, sw) == count:
        op(cols_at(0, count), cols_at(1, count), out=out, dtype=acc)
        first = 2
    else:
        out[...] = cols_at(0, count)
        first = 1
    for dc in range(first, kw):
        m = _valid(count, src.shape[1], dc, sw)
        if m == 0:
            break
        op(out[:, :m], cols_at(dc, m), out=out[:, :m], dtype=acc)


def _pool3(
    img: npt.NDArray[Any],
    op: _Reducer,
    work: np.dtype[Any],
    size: tuple[int, int],
    stride: tuple[int, int],
    out_shape: tuple[int, int],
) -> npt.NDArray[Any]:
    """Reduce an (M, N, C) array over windows with ``op``, in ``work`` dtype, band by band.

    Rows first: each band of output rows is reduced down the rows into a reused buffer
    (``tmp``). Columns next, by one of two routes:

    - *strided*: pairwise ``op`` over ``w`` strided column views of ``tmp`` (single-channel
      images with little window overlap; NumPy's strided loops are slow on short pixels);
    - *sliding*: ``op`` over each pixel and its ``w - 1`` right neighbours on the flattened,
      contiguous ``tmp`` (padded on the right for cut windows), then every ``sw``-th pixel is
      copied out: by an integer cast (a ``sw``-pixel group viewed as one ``<u2/<u4/<u8``
      keeps its first pixel when cast to a narrower unsigned type) or by a strided copy of
      pixels viewed as ``np.void`` items.
    """
    (kh, kw), (sh, sw) = size, stride
    out_rows, out_cols = out_shape
    cols, chans = img.shape[1], img.shape[2]
    acc = work if op is np.add else None
    out = np.empty((out_rows, out_cols, chans), dtype=work)
    pix = chans * work.itemsize
    idempotent = op is not np.add

    span = (out_cols - 1) * sw + kw
    narrow, wide = _UINT_BY_SIZE.get(pix), _UINT_BY_SIZE.get(sw * pix)
    cast_pair = (wide, narrow) if (narrow is not None and wide is not None and sw > 1) else None
    # Rough costs in element operations; a strided loop costs about 4 contiguous ones.
    strided_cost = 4 * (kw - 1) * out_cols
    slide_ops = min(kw - 1, _doubling_ops(kw, idempotent))
    pick_cost = out_cols if (cast_pair is not None or sw == 1) else 4 * out_cols
    sliding = chans > 1 or (kw > 1 and slide_ops * span + pick_cost < strided_cost)

    tmp_cols = cols
    if sliding:
        tmp_cols = max(cols, span)
        if cast_pair is not None:
            tmp_cols = -(-tmp_cols // sw) * sw
    bands = _bands(out_rows, tmp_cols * pix)
    buf = np.empty((bands[0][1], tmp_cols, chans), dtype=work)
    near = np.empty(buf.size, dtype=work) if sliding and kw > 1 else buf.reshape(-1)

    for r0, r1 in bands:
        n = r1 - r0
        tmp = buf[:n]
        src = img[r0 * sh : min(img.shape[0], (r1 - 1) * sh + kh)]
        _rows_pass(src, op, kh, sh, acc, tmp[:, :cols])
        if not sliding:
            _cols_pairwise(tmp[:, :cols], op, kw, sw, acc, out[r0:r1])
            continue
        if tmp_cols > cols:
            tmp[:, cols:] = 0 if op is np.add else tmp[:, cols - 1 : cols]
        flat = tmp.reshape(-1)
        size_flat = flat.shape[0]
        if kw > 1 and slide_ops < kw - 1:
            _slide(flat, op, kw, chans, acc, out=near[:size_flat])
        elif kw > 1:
            nb = near[:size_flat]
            last = size_flat - (kw - 1) * chans
            op(flat[:last], flat[chans : chans + last], out=nb[:last], dtype=acc)
            for dc in range(2, kw):
                op(nb[:last], flat[dc * chans : dc * chans + last], out=nb[:last], dtype=acc)
        slid = near[: n * tmp_cols * chans].reshape(n, tmp_cols * chans)
        dest = out[r0:r1].reshape(n, out_cols * chans)
        if sw == 1:
            dest[...] = slid[:, : out_cols * chans]
        elif cast_pair is not None:
            groups = slid.view(cast_pair[0])[:, :out_cols]
            np.copyto(dest.view(cast_pair[1]), groups, casting="unsafe")
        else:
            void = np.dtype((np.void, pix))
            np.copyto(dest.view(void), slid.view(void)[:, : (out_cols - 1) * sw + 1 : sw])
    return out
