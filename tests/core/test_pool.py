"""Pooling against plain-loop references: sizes, strides, methods, edges, shapes, dtypes."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from service.core.errors import ImageError, ParameterError
from service.core.pooling import pool
from testkit.lesson_reference import lesson_max_pool

ASCENT_PATH = Path(__file__).resolve().parents[2] / "service" / "data" / "ascent.png"
RNG = np.random.default_rng(20240602)


def window_starts(length: int, size: int, stride: int, edge: str) -> list[int]:
    """Window origins along one axis, walked one by one (no closed-form formula).

    'drop': every origin whose window fits. 'partial': origins inside the axis, up to and
    including the first window that reaches the last pixel.
    """
    starts = []
    start = 0
    while start < length:
        if edge == "drop":
            if start + size > length:
                break
            starts.append(start)
        else:
            starts.append(start)
            if start + size >= length:
                break
        start += stride
    return starts


Pair = int | tuple[int, int]


def as_pair(value: Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else value


def loop_pool(
    img: np.ndarray, size: Pair, stride: Pair | None, method: str, edge: str
) -> np.ndarray:
    """Reference: a Python loop over windows; each window reduced on its own."""
    kh, kw = as_pair(size)
    sh, sw = as_pair(size if stride is None else stride)
    rows = window_starts(img.shape[0], kh, sh, edge)
    cols = window_starts(img.shape[1], kw, sw, edge)
    chans = img.shape[2] if img.ndim == 3 else 1
    data = img.reshape(img.shape[0], img.shape[1], chans)
    out_dtype = np.float32 if method == "avg" else img.dtype
    out = np.zeros((len(rows), len(cols), chans), dtype=out_dtype)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            for ch in range(chans):
                values = [
                    data[y, x, ch].item()
                    for y in range(r, min(r + kh, img.shape[0]))
                    for x in range(c, min(c + kw, img.shape[1]))
                ]
                if method == "max":
                    out[i, j, ch] = max(values)
                elif method == "min":
                    out[i, j, ch] = min(values)
                else:
                    out[i, j, ch] = np.float32(math.fsum(values) / len(values))
    return out if img.ndim == 3 else out[:, :, 0]


def window_pool(img: np.ndarray, size: Pair, stride: Pair, method: str, edge: str) -> np.ndarray:
    """Faster reference for big windows: a loop over windows, NumPy inside each window."""
    kh, kw = as_pair(size)
    sh, sw = as_pair(stride)
    rows = window_starts(img.shape[0], kh, sh, edge)
    cols = window_starts(img.shape[1], kw, sw, edge)
    out_dtype = np.float32 if method == "avg" else img.dtype
    out = np.zeros((len(rows), len(cols), *img.shape[2:]), dtype=out_dtype)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            win = img[r : r + kh, c : c + kw].astype(np.float64)
            if method == "max":
                out[i, j] = win.max(axis=(0, 1))
            elif method == "min":
                out[i, j] = win.min(axis=(0, 1))
            else:
                count = win.shape[0] * win.shape[1]
                out[i, j] = (win.sum(axis=(0, 1)) / count).astype(np.float32)
    return out


def random_image(shape, dtype) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return (RNG.standard_normal(shape) * 100).astype(dtype)
    return RNG.integers(0, 256, shape).astype(dtype)


def assert_pool_equal(got: np.ndarray, want: np.ndarray, method: str, dtype) -> None:
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    if method == "avg" and np.dtype(dtype).kind == "f":
        # float input: the mean is summed in another order than math.fsum's exact sum
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)
    else:
        np.testing.assert_array_equal(got, want)


SHAPES = [(7, 9), (8, 8), (1, 6), (5, 1), (6, 7, 3), (9, 5, 4), (5, 6, 2)]
SIZES = [1, 2, 3, 4, 5, (1, 3), (2, 5), (4, 1), (3, 2)]
STRIDES = [None, 1, 2, 3, 7, (1, 3), (3, 1), (2, 4)]


# float32 in make test only: the fast tier meets float input in the overlapping-window test below
@pytest.mark.parametrize("dtype", [np.uint8, pytest.param(np.float32, marks=pytest.mark.slow)])
@pytest.mark.parametrize("edge", ["drop", "partial"])
@pytest.mark.parametrize("method", ["max", "avg", "min"])
def test_pool_small_windows_match_loop(method, edge, dtype):
    for shape, size, stride in itertools.product(SHAPES, SIZES, STRIDES):
        img = random_image(shape, dtype)
        kh, kw = as_pair(size)
        if edge == "drop" and (kh > shape[0] or kw > shape[1]):
            continue
        got = pool(img, size, stride, method=method, edge=edge)
        want = loop_pool(img, size, stride, method, edge)
        assert_pool_equal(got, want, method, dtype)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((37, 41), np.uint8), ((29, 34, 3), np.uint8), ((31, 26, 4), np.uint8),
     ((33, 30), np.float32), ((23, 27, 2), np.float32)],
)  # fmt: skip
@pytest.mark.parametrize("edge", ["drop", "partial"])
@pytest.mark.parametrize("method", ["max", "avg", "min"])
def test_pool_large_overlapping_windows_match_loop(method, edge, shape, dtype):
    # stride < size: the doubling paths, padded bottom/right bands, every pick route
    img = random_image(shape, dtype)
    for size, stride in [(4, 1), (6, 1), (7, 2), (8, 1), (9, 3), (16, 1), ((5, 11), (1, 2)),
                         ((13, 3), (2, 1)), (12, 4), ((2, 8), (2, 2))]:  # fmt: skip
        got = pool(img, size, stride, method=method, edge=edge)
        want = window_pool(img, size, stride, method, edge)
        assert_pool_equal(got, want, method, dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("method", ["max", "avg", "min"])
def test_pool_tall_windows_cut_at_bottom_match_loop(method, dtype):
    # tall overlapping windows whose last band runs off the bottom (padded doubling rows)
    img = random_image((71, 9, 3), dtype)
    for size, stride in [((16, 3), (2, 1)), ((24, 2), (2, 3)), ((11, 1), (3, 1))]:
        got = pool(img, size, stride, method=method, edge="partial")
        want = window_pool(img, size, stride, method, "partial")
        assert_pool_equal(got, want, method, dtype)


@pytest.mark.parametrize(
    "dtype", [np.bool_, np.int8, np.int16, np.uint16, np.int32, np.int64, np.float16, np.float64]
)
@pytest.mark.parametrize("method", ["max", "avg", "min"])
def test_pool_other_dtypes_match_loop(method, dtype):
    if dtype is np.bool_:
        img = RNG.integers(0, 2, (11, 13)).astype(bool)
    else:
        info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(np.float16)
        img = RNG.integers(max(info.min, -30000), min(info.max, 30000), (11, 13)).astype(dtype)
    for size, stride, edge in [(2, 2, "drop"), (3, 2, "partial"), ((4, 5), 1, "partial")]:
        got = pool(img, size, stride, method=method, edge=edge)
        want = window_pool(img, size, stride, method, edge)
        assert got.dtype == (np.float32 if method == "avg" else dtype)
        if method == "avg":
            np.testing.assert_allclose(got, want, rtol=1e-6)
        else:
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("method", ["avg", "max"])
def test_pool_big_uint8_windows_exact(method):
    # 17x17 = 289 pixels per window: the avg sum no longer fits uint16
    img = np.full((40, 37), 255, dtype=np.uint8)
    img[::3, ::2] = RNG.integers(0, 256, img[::3, ::2].shape)
    got = pool(img, 17, 5, method=method, edge="partial")
    want = window_pool(img, (17, 17), (5, 5), method, "partial")
    np.testing.assert_array_equal(got, want)


def test_pool_noncontiguous_and_big_endian_inputs_match_loop():
    base = random_image((20, 30, 3), np.uint8)
    views = [base[::-1, ::2], base[3:17, 5:, 1], np.asfortranarray(base[:, :, 0])]
    for img in views:
        for size, stride in [(2, 2), (3, 1), (2, 3)]:
            want = loop_pool(np.ascontiguousarray(img), size, stride, "max", "partial")
            got = pool(img, size, stride, edge="partial")
            np.testing.assert_array_equal(got, want)
    swapped = random_image((9, 10), np.float32).astype(">f4")
    np.testing.assert_array_equal(
        pool(swapped, 2), loop_pool(swapped.astype(np.float32), 2, 2, "max", "drop")
    )


def test_pool_colour_channels_pooled_independently():
    img = random_image((10, 12, 4), np.uint8)
    got = pool(img, 3, 2, method="max", edge="partial")
    for c in range(4):
        np.testing.assert_array_equal(got[:, :, c], pool(img[:, :, c], 3, 2, edge="partial"))


def test_pool_default_is_2x2_max_drop():
    img = np.arange(25, dtype=np.uint8).reshape(5, 5)
    np.testing.assert_array_equal(pool(img), [[6, 8], [16, 18]])


def test_pool_partial_keeps_cut_windows_at_odd_sizes():
    img = np.arange(25, dtype=np.uint8).reshape(5, 5)
    np.testing.assert_array_equal(
        pool(img, edge="partial"), [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
    )
    avg = pool(img, edge="partial", method="avg")
    # last column covers 2 pixels, the corner 1 pixel
    np.testing.assert_array_equal(avg[:, 2], np.array([6.5, 16.5, 24.0], dtype=np.float32))
    np.testing.assert_array_equal(avg[2], np.array([20.5, 22.5, 24.0], dtype=np.float32))


def test_pool_avg_rounds_exact_mean_to_float32():
    img = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=np.uint8)
    got = pool(img, 3, method="avg")
    assert got.dtype == np.float32
    assert got[0, 0] == np.float32(1 / 9)


def test_pool_nan_propagates_to_windows_that_hold_it():
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    img[1, 2] = np.nan
    for method in ("max", "min", "avg"):
        got = pool(img, method=method)
        assert np.isnan(got[0, 1])
        assert not np.isnan(got[[0, 1, 1], [0, 0, 1]]).any()


def test_pool_returns_new_array():
    img = random_image((6, 6), np.uint8)
    before = img.copy()
    out = pool(img, 1)
    np.testing.assert_array_equal(out, img)
    assert not np.shares_memory(out, img)
    np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize("method", ["max", "avg", "min"])
def test_pool_huge_stride_gives_one_window(method):
    img = random_image((7, 9), np.uint8)
    got = pool(img, 3, 10**30, method=method, edge="partial")
    np.testing.assert_array_equal(got, loop_pool(img, 3, 3, method, "drop")[:1, :1])
    got = pool(img, 3, (2, 10**30), method=method, edge="partial")
    np.testing.assert_array_equal(got, loop_pool(img, 3, 2, method, "partial")[:, :1])


@pytest.mark.parametrize(
    ("dtype", "value", "size"),
    [
        (np.uint8, 255, (6, 43)),  # 258 * 255 = 65790: one pixel too many for np.uint16
        (np.uint8, 255, (1, 64)),
        (np.int8, -128, (16, 16)),  # 256 * -128 = -32768 still fits np.int16
        (np.int8, -128, (13, 20)),  # 260 * -128 = -33280 does not
        (np.int8, 127, (13, 20)),
        (np.bool_, True, (64, 64)),
    ],
)
def test_pool_avg_of_8bit_windows_at_the_accumulator_limits(dtype, value, size):
    # a constant image: every window's exact mean is the value itself
    img = np.full((66, 70), value, dtype=dtype)
    for edge in ("drop", "partial"):
        got = pool(img, size, 1, method="avg", edge=edge)
        np.testing.assert_array_equal(got, np.full(got.shape, value, np.float32))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32])
def test_pool_avg_of_large_integers_is_the_correctly_rounded_mean(dtype):
    # sums far over 2**24: they must reach the division in float64, not rounded to float32
    high = 2**31 - 1 if dtype == np.int32 else 2**40
    img = RNG.integers(high // 2, high, (9, 10)).astype(dtype)
    for size, stride in [(2, 2), (3, 1), ((2, 5), (1, 3))]:
        got = pool(img, size, stride, method="avg", edge="partial")
        np.testing.assert_array_equal(got, loop_pool(img, size, stride, "avg", "partial"))


def _torch_output_size(length: int, size: int, stride: int, ceil_mode: bool) -> int:
    """``pooling_output_shape`` of PyTorch's ATen (Pool.h) with padding 0 and dilation 1."""
    numerator = length - (size - 1) - 1 + ((stride - 1) if ceil_mode else 0)
    out = numerator // stride + 1  # div_rtn: floor division
    if ceil_mode and (out - 1) * stride >= length:
        out -= 1
    return out


@settings(max_examples=300, deadline=None)
@given(
    rows=st.integers(1, 90),
    cols=st.integers(1, 90),
    size=st.tuples(st.integers(1, 64), st.integers(1, 64)),
    stride=st.tuples(st.integers(1, 100), st.integers(1, 100)),
    edge=st.sampled_from(["drop", "partial"]),
)
def test_pool_output_shape_matches_pytorch_rule(rows, cols, size, stride, edge):
    img = np.zeros((rows, cols), dtype=np.uint8)
    ceil_mode = edge == "partial"
    fits = size[0] <= rows and size[1] <= cols
    if edge == "drop" and not fits:
        with pytest.raises(ParameterError):
            pool(img, size, stride, edge=edge)
        return
    want = tuple(
        _torch_output_size(n, k, s, ceil_mode) if k <= n else 1  # PyTorch: 1 or an error
        for n, k, s in zip((rows, cols), size, stride, strict=True)
    )
    assert pool(img, size, stride, edge=edge).shape == want


@pytest.fixture(scope="module")
def ascent() -> np.ndarray:
    return np.asarray(Image.open(ASCENT_PATH))


def test_pool_ascent_2x2_max_matches_lesson_loop(ascent):
    # The lesson's pooling loop with the max it describes (its printed code forgot the sort).
    newImage = lesson_max_pool(ascent)
    got = pool(ascent)
    assert got.shape == (256, 256)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, newImage)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"size": 0}, "size"),
        ({"size": 65}, "size"),
        ({"size": -2}, "size"),
        ({"size": 2.0}, "size"),
        ({"size": True}, "size"),
        ({"size": (2, 2, 2)}, "size"),
        ({"size": (2, 0)}, "size"),
        ({"size": "2"}, "size"),
        ({"size": 8, "max_size": 4}, "size"),
        ({"stride": 0}, "stride"),
        ({"stride": (1, -1)}, "stride"),
        ({"stride": 1.5}, "stride"),
        ({"method": "mean"}, "method"),
        ({"method": "MAX"}, "method"),
        ({"edge": "ceil"}, "edge"),
        ({"max_size": 0}, "max_size"),
    ],
)
def test_pool_invalid_parameter_raises_parameter_error(kwargs, param):
    img = np.zeros((10, 10), dtype=np.uint8)
    with pytest.raises(ParameterError) as info:
        pool(img, **kwargs)
    assert info.value.param == param
    assert f"`{param}`" in str(info.value)


def test_pool_window_larger_than_image_with_drop_names_size():
    img = np.zeros((3, 8), dtype=np.uint8)
    with pytest.raises(ParameterError) as info:
        pool(img, 4)
    assert info.value.param == "size"
    assert "`size`" in str(info.value)
    assert "empty" in str(info.value)
    assert pool(img, 4, edge="partial").shape == (1, 2)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros(5, dtype=np.uint8),
        np.zeros((2, 3, 4, 1), dtype=np.uint8),
        np.zeros((0, 4), dtype=np.uint8),
        np.zeros((4, 4, 0), dtype=np.uint8),
        np.zeros((4, 4), dtype=np.complex64),
        np.array([["a", "b"], ["c", "d"]]),
        np.zeros((4, 4), dtype=object),
    ],
    ids=["1d", "4d", "empty-rows", "no-channels", "complex", "str", "object"],
)
def test_pool_invalid_image_raises_image_error(image):
    with pytest.raises(ImageError) as info:
        pool(image)
    assert info.value.param == "image"
    assert "`image`" in str(info.value)
