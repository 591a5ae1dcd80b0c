"""The conversion to 8 bits: clamp (the lesson's rule), abs, normalize, raw."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.core import SCALES, ImageError, ParameterError, apply_scale

RNG = np.random.default_rng(7)


def clamp_reference(values):
    """The lesson's per-pixel rule in plain Python: clamp to 0..255, then int() truncates."""
    flat = [min(max(float(v), 0.0), 255.0) for v in np.asarray(values).ravel()]
    return np.array([int(v) for v in flat], dtype=np.uint8).reshape(np.shape(values))


def normalize_reference(values):
    """Plain-Python linear map of min..max to 0..255; round() ties to even like np.rint."""
    flat = [float(v) for v in np.asarray(values).ravel()]
    lo, hi = min(flat), max(flat)
    if hi == lo:
        return np.zeros(np.shape(values), np.uint8)
    mapped = [round((v - lo) * 255.0 / (hi - lo)) for v in flat]
    return np.array(mapped, dtype=np.uint8).reshape(np.shape(values))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_apply_scale_clamp_hand_computed(dtype):
    values = np.array([[-300.0, -0.5, 0.0, 0.99], [1.0, 12.9, 254.5, 255.0], [255.5, 1e6, 7, 128]])
    expected = [[0, 0, 0, 0], [1, 12, 254, 255], [255, 255, 7, 128]]
    out = apply_scale(values.astype(dtype))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_apply_scale_clamp_truncates_float64_without_rounding_to_float32():
    # 254.99999999 rounds to 255.0 in float32; the lesson's float64 arithmetic gives 254
    values = np.array([[254.99999999, 0.9999999999]])
    np.testing.assert_array_equal(apply_scale(values), [[254, 0]])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int64, np.bool_])
def test_apply_scale_clamp_integer_inputs(dtype):
    values = RNG.integers(-400, 400, (6, 7)).astype(dtype)
    np.testing.assert_array_equal(apply_scale(values), clamp_reference(values))


def test_apply_scale_abs_hand_computed():
    values = np.array([[-300.0, -12.9, -0.5, 3.5, 256.0]], dtype=np.float32)
    np.testing.assert_array_equal(apply_scale(values, "abs"), [[255, 12, 0, 3, 255]])


def test_apply_scale_normalize_hand_computed():
    values = np.array([[-10.0, 0.0], [10.0, 30.0]])
    # (v + 10) * 255 / 40: 0, 63.75, 127.5 (tie: to even 128), 255
    np.testing.assert_array_equal(apply_scale(values, "normalize"), [[0, 64], [128, 255]])


@pytest.mark.parametrize("value", [0.0, -5.5, 300.0])
def test_apply_scale_normalize_constant_image_is_zero(value):
    out = apply_scale(np.full((3, 4, 3), value), "normalize")
    np.testing.assert_array_equal(out, np.zeros((3, 4, 3), np.uint8))


def test_apply_scale_normalize_maps_colour_channels_jointly():
    values = RNG.standard_normal((5, 6, 3)) * 100
    out = apply_scale(values, "normalize")
    np.testing.assert_array_equal(out, normalize_reference(values))
    assert out.min() == 0
    assert out.max() == 255


def test_apply_scale_normalize_range_ignores_alpha():
    # alpha far outside the colour range: lo and hi come from the colour channels only
    values = np.zeros((3, 4, 2))
    values[..., 0] = RNG.uniform(0, 10, (3, 4))
    values[..., 1] = [[-500, 0, 40, 900]] * 3
    out = apply_scale(values, "normalize", alpha=True)
    np.testing.assert_array_equal(out[..., 0], normalize_reference(values[..., 0]))
    np.testing.assert_array_equal(out[..., 1], [[0, 0, 40, 255]] * 3)


def test_apply_scale_normalize_works_in_float64():
    # a range of 2**-19 at 1e6: float32 cannot tell these values apart, float64 can
    values = 1e6 + np.array([[0.0, 2.0**-20, 2.0**-19]])
    out = apply_scale(values, "normalize")
    np.testing.assert_array_equal(out, normalize_reference(values))
    np.testing.assert_array_equal(out, [[0, 128, 255]])  # 127.5: ties to even


def test_apply_scale_alpha_is_only_clamped():
    values = RNG.standard_normal((4, 5, 4)) * 200
    values[..., 3] = [[-5, 0.5, 100.7, 300, 255]] * 4
    for scale in ("clamp", "abs", "normalize"):
        out = apply_scale(values, scale, alpha=True)
        np.testing.assert_array_equal(out[..., 3], [[0, 0, 100, 255, 255]] * 4)
        np.testing.assert_array_equal(out[..., :3], apply_scale(values[..., :3], scale))


def test_apply_scale_raw_is_float32_unchanged():
    values = np.array([[-3.25, 1e6], [0.5, 7.0]])
    out = apply_scale(values, "raw")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values.astype(np.float32))
    as_float32 = values.astype(np.float32)
    np.testing.assert_array_equal(apply_scale(as_float32, "raw", alpha=False), as_float32)
    assert apply_scale(as_float32, "raw") is as_float32  # float32 input: returned, not copied


@pytest.mark.parametrize("scale", ["", "Clamp", "log", None, 1])
def test_apply_scale_rejects_unknown_scales(scale):
    with pytest.raises(ParameterError) as info:
        apply_scale(np.zeros((2, 2)), scale)
    assert info.value.param == "scale"
    assert "`scale`" in str(info.value)


def test_apply_scale_rejects_alpha_without_a_spare_channel():
    with pytest.raises(ParameterError) as info:
        apply_scale(np.zeros((2, 2, 1)), alpha=True)
    assert info.value.param == "alpha"


@pytest.mark.parametrize("values", [np.zeros(3), np.zeros((2, 2, 2, 2)), np.zeros((0, 2))])
def test_apply_scale_rejects_bad_shapes(values):
    with pytest.raises(ImageError) as info:
        apply_scale(values)
    assert info.value.param == "values"


def test_apply_scale_scales_are_the_documented_four():
    assert SCALES == ("clamp", "abs", "normalize", "raw")


finite = st.floats(-1e4, 1e4, allow_nan=False)


@settings(max_examples=80, deadline=None)
@given(
    values=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=finite)
)
def test_apply_scale_clamp_and_abs_follow_the_per_pixel_rule(values):
    np.testing.assert_array_equal(apply_scale(values), clamp_reference(values))
    np.testing.assert_array_equal(apply_scale(values, "abs"), clamp_reference(np.abs(values)))


@settings(max_examples=80, deadline=None)
@given(
    values=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=finite)
)
def test_apply_scale_normalize_follows_the_linear_map(values):
    out = apply_scale(values, "normalize")
    expected = normalize_reference(values)
    # the two evaluate (v - lo) * 255 / (hi - lo) in the same float64 operations
    np.testing.assert_array_equal(out, expected)
    if values.max() != values.min():
        assert out.max() == 255


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_apply_scale_normalize_survives_a_range_near_the_float_limit(dtype):
    # (hi - lo) * 255 overflows float64 for +/-1e308: the map must not pass through inf
    big = float(np.finfo(dtype).max) * 0.9
    values = np.array([[-big, 0.0, big]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = apply_scale(values, "normalize")
    np.testing.assert_array_equal(out, [[0, 128, 255]])


def test_apply_scale_normalize_of_plus_minus_1e308():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = apply_scale([[-1e308, 0, 1e308]], "normalize")
    np.testing.assert_array_equal(out, [[0, 128, 255]])


@pytest.mark.parametrize("scale", ["clamp", "abs"])
@pytest.mark.parametrize("alpha", [False, True])
def test_apply_scale_in_chunks_into_out(scale, alpha, monkeypatch):
    # chunks of 3 rows and a caller's `out` (a view into a bigger array) give the same bytes
    from service.core import scaling

    values = np.random.default_rng(5).normal(100, 200, (23, 7, 4)).astype(np.float32)
    whole = apply_scale(values, scale, alpha=alpha)
    monkeypatch.setattr(scaling, "_CHUNK_ITEMS", 3 * 7 * 4)
    target = np.zeros((30, 7, 4), np.uint8)
    result = apply_scale(values, scale, alpha=alpha, out=target[5:28])
    assert result.base is target or result is target[5:28] or np.shares_memory(result, target)
    np.testing.assert_array_equal(target[5:28], whole)
    expected = np.abs(values) if scale == "abs" else values
    if alpha:
        expected = np.concatenate([expected[..., :3], values[..., 3:]], axis=-1)
    np.testing.assert_array_equal(whole, np.clip(expected, 0, 255).astype(np.uint8))


def test_apply_scale_out_must_fit():
    with pytest.raises(ParameterError):
        apply_scale(np.zeros((2, 2)), out=np.zeros((2, 3), np.uint8))
    with pytest.raises(ParameterError):
        apply_scale(np.zeros((2, 2)), "raw", out=np.zeros((2, 2), np.uint8))
