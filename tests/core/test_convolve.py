"""Standard-mode correlation: scipy.ndimage, hand-computed arrays and exact integer references."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from service.core import (
    BORDERS,
    ImageError,
    KernelError,
    ParameterError,
    apply_scale,
    correlate,
    correlate_stripes,
)
from service.core import convolution as conv
from service.core.convolution import compiler, exact, padding
from service.core.convolution import plan as planning

SCIPY_MODES = ("reflect", "mirror", "nearest", "wrap", "constant")
RNG = np.random.default_rng(20240611)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
SOBEL_Y = SOBEL_X.T.copy()
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
BINOMIAL7 = np.outer([1, 6, 15, 20, 15, 6, 1], [1, 6, 15, 20, 15, 6, 1])
# Shapes of random kernels: square, rectangular and even sides, 1x1 .. 15x15.
KERNEL_SHAPES = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 3), (2, 5), (4, 4), (5, 3), (6, 7), (15, 15)]


def scipy_reference(image, kernel, mode="reflect", cval=0.0, flip=False):
    """scipy.ndimage on float64: exact for integer data, the definition for float data."""
    fn = ndimage.convolve if flip else ndimage.correlate
    return fn(np.asarray(image, np.float64), np.asarray(kernel, np.float64), mode=mode, cval=cval)


def windows_valid(image, kernel):
    """Plain-loop correlation over the windows that fit: out[i, j] = sum(k * img[i:i+kr, ...])."""
    kr, kc = kernel.shape
    rows, cols = image.shape
    out = np.empty((rows - kr + 1, cols - kc + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = float(np.sum(kernel * image[i : i + kr, j : j + kc].astype(np.float64)))
    return out


def assert_close_to(actual, expected):
    """float32 output against a float64 reference: float32 rounding of the sum's magnitude."""
    assert actual.dtype == np.float32
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=2e-6 * scale * 16)


# --- against scipy.ndimage -------------------------------------------------------------------


@pytest.mark.parametrize("mode", SCIPY_MODES)
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("shape", KERNEL_SHAPES)
def test_correlate_random_float_kernel_matches_scipy(mode, flip, shape):
    image = RNG.integers(0, 256, (23, 31)).astype(np.uint8)
    kernel = RNG.standard_normal(shape)
    out = correlate(image, kernel, border=mode, cval=7.5, flip=flip)
    assert_close_to(out, scipy_reference(image, kernel, mode, 7.5, flip))


@pytest.mark.parametrize("mode", SCIPY_MODES)
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("shape", KERNEL_SHAPES)
def test_correlate_integer_kernel_equals_scipy_exactly(mode, flip, shape):
    image = RNG.integers(0, 256, (19, 26)).astype(np.uint8)
    kernel = RNG.integers(-5, 6, shape)
    out = correlate(image, kernel, border=mode, cval=-3, flip=flip)
    expected = scipy_reference(image, kernel, mode, -3, flip)
    np.testing.assert_array_equal(out, expected.astype(np.float32))


@pytest.mark.parametrize("mode", SCIPY_MODES)
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("shape", [(9, 9), (13, 6), (7, 16)])
def test_correlate_kernel_larger_than_image_matches_scipy(mode, flip, shape):
    # padding wider than the image: scipy continues the pattern periodically
    image = RNG.integers(0, 256, (5, 4)).astype(np.uint8)
    kernel = RNG.integers(-3, 4, shape)
    out = correlate(image, kernel, border=mode, cval=2, flip=flip)
    np.testing.assert_array_equal(out, scipy_reference(image, kernel, mode, 2, flip))


@pytest.mark.parametrize("mode", SCIPY_MODES)
@pytest.mark.parametrize("image_shape", [(1, 1), (1, 5), (6, 1), (2, 2)])
def test_correlate_tiny_image_matches_scipy(mode, image_shape):
    image = RNG.integers(0, 256, image_shape).astype(np.uint8)
    kernel = RNG.integers(-3, 4, (5, 4))
    # fft too: one output row makes its tile exactly kernel-high (one output per tile row)
    for method in ("direct", "fft"):
        out = correlate(image, kernel, border=mode, cval=1, method=method)
        np.testing.assert_array_equal(out, scipy_reference(image, kernel, mode, 1), err_msg=method)


@pytest.mark.parametrize("mode", SCIPY_MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int16])
def test_correlate_other_dtypes_match_scipy(mode, dtype):
    if np.dtype(dtype).kind == "f":
        image = (RNG.standard_normal((17, 21)) * 1000).astype(dtype)
    else:
        image = RNG.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (17, 21)).astype(dtype)
    kernel = RNG.standard_normal((4, 5))
    out = correlate(image, kernel, border=mode, cval=-2.25)
    assert_close_to(out, scipy_reference(image, kernel, mode, -2.25))


def test_correlate_float64_image_accumulates_in_float64():
    image = RNG.standard_normal((31, 29)) * 1e6 + 1e7
    kernel = np.array([[1.0, -1.0], [-1.0, 1.0]])
    out = correlate(image, kernel)
    # float32 sums of ~1e7 values would be off by units; float64 ones round once, to float32
    np.testing.assert_allclose(out, scipy_reference(image, kernel), rtol=2**-24, atol=0)


@pytest.mark.parametrize("weight", [0.1, -0.37, 1 / 3, 2.5])
def test_correlate_weight_multiplies_the_sum(weight):
    image = RNG.integers(0, 256, (20, 20)).astype(np.uint8)
    kernel = RNG.integers(-4, 5, (3, 4))
    out = correlate(image, kernel, weight=weight)
    assert_close_to(out, scipy_reference(image, kernel) * weight)


def test_correlate_normalize_divides_by_the_kernel_sum():
    image = RNG.integers(0, 256, (20, 24)).astype(np.uint8)
    kernel = RNG.integers(0, 5, (5, 5)) + 1
    out = correlate(image, kernel, normalize=True, weight=0.5)
    assert_close_to(out, scipy_reference(image, kernel / kernel.sum()) * 0.5)
    floats = RNG.random((4, 3))
    out = correlate(image, floats, normalize=True)
    assert_close_to(out, scipy_reference(image, floats / floats.sum()))


def test_correlate_normalize_leaves_a_zero_sum_kernel_alone():
    image = RNG.integers(0, 256, (12, 12)).astype(np.uint8)
    out = correlate(image, SOBEL_X, normalize=True)
    np.testing.assert_array_equal(out, scipy_reference(image, SOBEL_X))


def test_correlate_normalized_box_is_an_exact_mean():
    image = np.full((9, 9), 100, dtype=np.uint8)
    image[0, 0] = 109
    out = correlate(image, np.ones((3, 3)), normalize=True)
    assert out[4, 4] == np.float32(100.0)
    assert out[0, 0] == np.float32(900 / 9 + 36 / 9)  # 109 counted four times by 'reflect'


@pytest.mark.parametrize("method", ["direct", "separable", "fft"])
def test_correlate_float_multiple_of_integer_kernel_is_exact(method, ascent):
    # [[1, 2, 1], [2, 4, 2], [1, 2, 1]] / 16 sums the integers exactly, then scales by 1/16
    binomial = np.outer([1, 2, 1], [1, 2, 1])
    out = correlate(ascent, binomial / 16, method=method)
    np.testing.assert_array_equal(out, correlate(ascent, binomial, weight=1 / 16))
    expected = exact_8bit(exact_sums(ascent, binomial), 1 / 16)
    np.testing.assert_array_equal(apply_scale(out), expected)


def test_correlate_zero_kernel_gives_zeros():
    image = RNG.integers(0, 256, (8, 9)).astype(np.uint8)
    out = correlate(image, np.zeros((3, 2)), border="constant", cval=5)
    np.testing.assert_array_equal(out, np.zeros((8, 9), np.float32))


# --- colour and alpha --------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_correlate_filters_each_channel(channels):
    image = RNG.integers(0, 256, (14, 17, channels)).astype(np.uint8)
    kernel = RNG.integers(-3, 4, (3, 4))
    out = correlate(image, kernel, border="wrap")
    assert out.shape == image.shape
    for ch in range(channels):
        np.testing.assert_array_equal(out[..., ch], scipy_reference(image[..., ch], kernel, "wrap"))


@pytest.mark.parametrize("border", ["reflect", "keep", "valid"])
def test_correlate_alpha_is_copied_not_filtered(border):
    image = RNG.integers(0, 256, (12, 15, 4)).astype(np.uint8)
    kernel = RNG.integers(-3, 4, (3, 5))
    out = correlate(image, kernel, border=border, alpha=True)
    colour = correlate(image[..., :3], kernel, border=border)
    np.testing.assert_array_equal(out[..., :3], colour)
    if border == "valid":  # cropped like the colour channels: rows 1..10, columns 2..12
        np.testing.assert_array_equal(out[..., 3], image[1:-1, 2:-2, 3])
    else:
        np.testing.assert_array_equal(out[..., 3], image[..., 3])


# --- keep and valid ----------------------------------------------------------------------------


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 4), (5, 2), (4, 7)])
def test_correlate_valid_is_the_windows_that_fit(flip, shape):
    image = RNG.integers(0, 256, (11, 13)).astype(np.uint8)
    kernel = RNG.integers(-4, 5, shape)
    oriented = kernel[::-1, ::-1] if flip else kernel
    out = correlate(image, kernel, border="valid", flip=flip)
    np.testing.assert_array_equal(out, windows_valid(image, oriented))


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("shape", [(3, 3), (2, 4), (5, 2), (4, 7)])
def test_correlate_keep_keeps_pixels_whose_window_leaves_the_image(flip, shape):
    image = RNG.integers(0, 256, (11, 13)).astype(np.uint8)
    kernel = RNG.integers(-4, 5, shape)
    kr, kc = shape
    # anchor of the correlated kernel: (kr // 2, kc // 2); flipped: (kr - 1 - kr // 2, ...)
    a, b = (kr - 1 - kr // 2, kc - 1 - kc // 2) if flip else (kr // 2, kc // 2)
    oriented = kernel[::-1, ::-1] if flip else kernel
    expected = image.astype(np.float64)
    expected[a : a + 11 - kr + 1, b : b + 13 - kc + 1] = windows_valid(image, oriented)
    out = correlate(image, kernel, border="keep", flip=flip)
    np.testing.assert_array_equal(out, expected)
    # and the interior agrees with scipy where the window fits
    full = scipy_reference(image, kernel, flip=flip)
    np.testing.assert_array_equal(out[a : a + 11 - kr + 1, b : b + 13 - kc + 1],
                                  full[a : a + 11 - kr + 1, b : b + 13 - kc + 1])  # fmt: skip


def test_correlate_keep_with_kernel_larger_than_image_returns_input():
    image = RNG.integers(0, 256, (4, 4, 3)).astype(np.uint8)
    out = correlate(image, np.ones((5, 3)), border="keep")
    np.testing.assert_array_equal(out, image.astype(np.float32))


def test_correlate_valid_rejects_kernel_larger_than_image():
    with pytest.raises(KernelError, match="larger than the 4 x 6 image") as info:
        correlate(np.zeros((4, 6)), np.ones((5, 3)), border="valid")
    assert info.value.param == "kernel"


# --- hand-computed examples (scipy's test_correlate style) ------------------------------------

DTYPES = [np.uint8, np.int8, np.uint16, np.int32, np.float32, np.float64]
IMAGE_3X3 = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
# out[r, c] = img[r, c - 1]: the kernel's only 1 sits left of the anchor (1, 1), so column 0
# shows the padding left of the image -- a different column per mode.
LEFT_NEIGHBOUR = [[0, 0, 0], [1, 0, 0], [0, 0, 0]]
LEFT_NEIGHBOUR_EXPECTED = {
    "reflect": [[1, 1, 2], [4, 4, 5], [7, 7, 8]],  # 'a | a b c': the edge pixel repeated
    "mirror": [[2, 1, 2], [5, 4, 5], [8, 7, 8]],  # 'b | a b c': reflected about the edge
    "nearest": [[1, 1, 2], [4, 4, 5], [7, 7, 8]],
    "wrap": [[3, 1, 2], [6, 4, 5], [9, 7, 8]],  # 'c | a b c'
    "constant": [[10, 1, 2], [10, 4, 5], [10, 7, 8]],  # cval = 10
    "keep": [[1, 2, 3], [4, 4, 6], [7, 8, 9]],  # only the centre's window fits
    "valid": [[4]],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("border", BORDERS)
def test_correlate_hand_computed_left_neighbour(dtype, border):
    image = np.array(IMAGE_3X3, dtype=dtype)
    out = correlate(image, LEFT_NEIGHBOUR, border=border, cval=10)
    np.testing.assert_array_equal(out, np.array(LEFT_NEIGHBOUR_EXPECTED[border], np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_correlate_hand_computed_flip_moves_the_other_way(dtype):
    image = np.array(IMAGE_3X3, dtype=dtype)
    # convolution flips the kernel: the 1 now picks the right neighbour img[r, c + 1]
    out = correlate(image, LEFT_NEIGHBOUR, border="constant", cval=10, flip=True)
    np.testing.assert_array_equal(out, np.array([[2, 3, 10], [5, 6, 10], [8, 9, 10]], np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_correlate_hand_computed_box_sums_4x4(dtype):
    image = np.ones((4, 4), dtype=dtype)
    box = np.ones((3, 3))
    # constant 0: the window covers 4 pixels at corners, 6 on edges, 9 inside
    np.testing.assert_array_equal(
        correlate(image, box, border="constant"),
        np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]], np.float32),
    )
    for border in ("reflect", "mirror", "nearest", "wrap"):
        np.testing.assert_array_equal(correlate(image, box, border=border), np.full((4, 4), 9.0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_correlate_hand_computed_even_kernel_anchor(dtype):
    # anchor (1, 1): out[r, c] = img[r-1, c-1] + 2 img[r-1, c] + 3 img[r, c-1] + 4 img[r, c]
    image = np.array([[1, 2], [3, 4]], dtype=dtype)
    kernel = [[1, 2], [3, 4]]
    expected = np.array([[1 + 2 + 3 + 4, 1 + 4 + 3 + 8], [1 + 2 + 9 + 12, 1 + 4 + 9 + 16]])
    np.testing.assert_array_equal(correlate(image, kernel, border="nearest"), expected)
    # convolve flips to [[4, 3], [2, 1]] with anchor (0, 0): out[r, c] = 4 img[r, c] + ...
    expected_flip = np.array([[4 + 6 + 6 + 4, 8 + 6 + 8 + 4], [12 + 12 + 6 + 4, 16 + 12 + 8 + 4]])
    np.testing.assert_array_equal(
        correlate(image, kernel, border="nearest", flip=True), expected_flip
    )


# --- exactness through every path ------------------------------------------------------------

INTEGER_KERNELS = {
    "sobel-x": (SOBEL_X, 1.0),
    "laplacian": (LAPLACIAN, 1.0),
    "binomial-7": (BINOMIAL7, 1 / 4096),
    "box-15": (np.ones((15, 15), dtype=np.int64), 1 / 225),
    "random-15": (RNG.integers(-9, 10, (15, 15)), 1.0),
    "random-9x12": (RNG.integers(-3, 4, (9, 12)), 0.25),
    "box-31": (np.ones((31, 31), dtype=np.int64), 1 / 961),
    "random-31": (RNG.integers(-9, 10, (31, 31)), 1.0),
}


def exact_sums(image, kernel, mode="reflect"):
    """Exact integer sums: scipy in float64 on integers (exact below 2^53), checked integral."""
    sums = scipy_reference(image, kernel, mode)
    assert np.all(sums == np.rint(sums))
    return sums.astype(np.int64)


def exact_8bit(sums, weight):
    """The 8-bit image as exact rational arithmetic gives it: trunc(clip(sum * weight))."""
    w = Fraction(weight).limit_denominator(1 << 20)
    num, den = w.numerator, w.denominator
    scaled = sums * num  # integers; trunc toward zero of scaled / den
    quotient = np.sign(scaled) * (np.abs(scaled) // den)
    return np.clip(quotient, 0, 255).astype(np.uint8)


def applicable_methods(kernel):
    methods = ["direct", "fft"]
    if np.linalg.matrix_rank(kernel) == 1:
        methods.append("separable")
    if np.all(kernel == kernel.flat[0]):
        methods.append("box")
    return methods


@pytest.fixture(scope="module")
def random_u8():
    return RNG.integers(0, 256, (301, 277)).astype(np.uint8)


@pytest.mark.parametrize(
    # the 31x31 kernels (the FFT path's exact range) run in make test, not the fast tier
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if "31" in n else n for n in INTEGER_KERNELS],
)
@pytest.mark.parametrize("source", ["ascent", "random"])
def test_correlate_integer_kernels_give_exact_8bit_output_through_every_path(
    name, source, ascent, random_u8
):
    kernel, weight = INTEGER_KERNELS[name]
    image = ascent if source == "ascent" else random_u8
    sums = exact_sums(image, kernel)
    expected = exact_8bit(sums, weight)
    results = {}
    for method in applicable_methods(kernel):
        out = correlate(image, kernel, weight=weight, method=method)
        np.testing.assert_array_equal(apply_scale(out), expected, err_msg=method)
        np.testing.assert_array_equal(apply_scale(out, "abs"), exact_8bit(np.abs(sums), weight))
        results[method] = out
    # and the paths agree bit for bit on the float32 values themselves
    first = results["direct"]
    for method, out in results.items():
        np.testing.assert_array_equal(out, first, err_msg=method)


def test_correlate_auto_picks_the_fast_paths(monkeypatch):
    # not a timing test: the cost model must route large kernels away from the direct path
    chosen = []
    original = planning._plan

    def spy(*args):
        plan = original(*args)
        chosen.append(plan.method)
        return plan

    monkeypatch.setattr(planning, "_plan", spy)
    image = np.zeros((512, 512), np.uint8)
    cases = [
        (np.ones((31, 31)), "box"),
        (BINOMIAL7, "separable"),
        (RNG.integers(-9, 10, (31, 31)), "fft"),
        (SOBEL_X, "separable"),
        (LAPLACIAN, "direct"),
    ]
    for kernel, method in cases:
        correlate(image, kernel)
        assert chosen[-1] == method


def test_correlate_separable_peels_binomial_factors():
    # [1, 2, 1] = (1 + x)^2 is two adds; [1, 4, 6, 4, 1] = (1 + x)^4 is four
    ops, factor = compiler._compile_line(np.array([1.0, 2.0, 1.0]), 7, np.dtype(np.int16))
    assert len(ops) == 2
    assert factor == 1.0
    ops, factor = compiler._compile_line(np.array([3.0, 12.0, 18.0, 12.0, 3.0]), 1, np.dtype("f4"))
    assert len(ops) == 4
    assert factor == 3.0


@pytest.mark.parametrize("method", ["direct", "separable", "fft"])
def test_correlate_float_kernel_paths_agree(method, ascent):
    g = np.exp(-(np.arange(-7, 8) ** 2) / 8.0)
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    out = correlate(ascent, kernel, method=method)
    assert_close_to(out, scipy_reference(ascent, kernel))


def test_correlate_large_integer_values_stay_exact():
    # uint16 pixels times a 15x15 kernel need int32 sums; int32 pixels need int64
    image16 = RNG.integers(0, 65536, (40, 37)).astype(np.uint16)
    kernel = RNG.integers(-50, 51, (15, 15))
    for method in ("direct", "fft"):
        out = correlate(image16, kernel, method=method, border="constant")
        expected = scipy_reference(image16, kernel, "constant")
        np.testing.assert_allclose(out, expected, rtol=2**-24, atol=0)
    image32 = RNG.integers(-(2**30), 2**30, (20, 20)).astype(np.int32)
    out = correlate(image32, np.ones((3, 3)), method="box")
    np.testing.assert_allclose(out, scipy_reference(image32, np.ones((3, 3))), rtol=2**-24)


def test_correlate_huge_fft_tiles_cover_a_big_image():
    image = RNG.integers(0, 256, (1500, 700)).astype(np.uint8)  # several overlap-save tiles
    kernel = RNG.integers(-3, 4, (21, 17))
    out = correlate(image, kernel, method="fft", border="mirror")
    np.testing.assert_array_equal(out, scipy_reference(image, kernel, "mirror"))


# --- accumulator limits, caches and other corners -------------------------------------------

# Integer sums at the edge of what an int16 accumulator holds (|sum| <= 32767): the dtype
# bound must count the worst pixel (dtype range, most negative value, cval) times sum |k|.
_CASE_RNG = np.random.default_rng(32768)  # its own generator: RNG's draws stay as they were
ACCUMULATOR_CASES = {
    # 255 * 129 = 32895, one kernel unit over int16 (255 * 128 = 32640 still fits)
    "uint8-255-sum-129": (np.full((9, 50), 255, np.uint8), np.ones((3, 43)), "reflect", 0),
    "uint8-255-sum-128": (np.full((9, 50), 255, np.uint8), np.ones((4, 32)), "reflect", 0),
    # -128 * -2 over 128 taps = 32768: the direct program's one multiply by -2 forms it
    "int8-minus-128": (np.full((12, 20), -128, np.int8), np.full((8, 16), -2), "nearest", 0),
    # the 7 x 7 corner window holds 33 padding pixels of cval 2000: 66000
    "constant-cval-2000": (np.zeros((10, 10), np.uint8), np.ones((7, 7)), "constant", 2000),
    # int16 pixels down to -30000: a pair sums to about -60000 (the max alone is ~10)
    "int16-negative": (
        _CASE_RNG.integers(-30000, 11, (9, 11)).astype(np.int16),
        np.ones((1, 2)),
        "reflect",
        0,
    ),
    "bool": (
        _CASE_RNG.integers(0, 2, (13, 14)).astype(bool),
        _CASE_RNG.integers(-3, 4, (3, 4)),
        "wrap",
        0,
    ),
}


@pytest.mark.parametrize("name", list(ACCUMULATOR_CASES))
def test_correlate_integer_sums_at_the_int16_limit_are_exact(name):
    image, kernel, border, cval = ACCUMULATOR_CASES[name]
    expected = scipy_reference(image, kernel, border, cval)
    for method in applicable_methods(kernel):
        out = correlate(image, kernel, border=border, cval=cval, method=method)
        np.testing.assert_array_equal(out, expected.astype(np.float32), err_msg=method)


@pytest.mark.parametrize("weight", [3.0, 0.75])
def test_correlate_int32_sums_are_scaled_in_float64(weight):
    # sums over 2**24 (uint16 pixels near 65535, 289 taps): rounding them to float32 before
    # the multiply would round twice; the contract is float32(sum * weight), one rounding
    image = RNG.integers(60000, 65536, (24, 25)).astype(np.uint16)
    kernel = np.ones((17, 17))
    sums = exact_sums(image, kernel)
    assert sums.max() > 2**24
    expected = (sums * weight).astype(np.float32)
    for method in applicable_methods(kernel):
        out = correlate(image, kernel, weight=weight, method=method)
        np.testing.assert_array_equal(out, expected, err_msg=method)


def test_correlate_integer_kernel_with_fractional_cval_keeps_the_fraction():
    # cval 7.5 is not an integer: the padding must not be truncated to 7 by an integer path
    image = RNG.integers(0, 256, (9, 11)).astype(np.uint8)
    expected = scipy_reference(image, SOBEL_X, "constant", 7.5)
    for method in applicable_methods(SOBEL_X):
        out = correlate(image, SOBEL_X, border="constant", cval=7.5, method=method)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-3, err_msg=method)


def test_correlate_normalize_divides_by_a_negative_sum():
    image = RNG.integers(0, 256, (15, 13)).astype(np.uint8)
    for kernel in (np.array([[-1, -2], [-1, 1]]), np.array([[0.5, -1.25, -0.75]])):
        out = correlate(image, kernel, normalize=True)
        assert_close_to(out, scipy_reference(image, kernel / kernel.sum()))


def test_correlate_float_multiple_of_integer_kernel_with_inexact_step_is_exact():
    # 0.1 * binomial: the integer sums times the step 0.1 in float64, rounded once to float32
    binomial = np.outer([1, 2, 1], [1, 2, 1])
    image = RNG.integers(0, 256, (21, 18)).astype(np.uint8)
    expected = (exact_sums(image, binomial) * 0.1).astype(np.float32)
    for method in ("direct", "separable", "fft"):
        out = correlate(image, binomial * 0.1, method=method)
        np.testing.assert_array_equal(out, expected, err_msg=method)


@pytest.mark.parametrize(
    "kernel",
    [
        [[0, 1, 2, 1]],  # (1 + x)^2 after a zero: the peeled chain starts one tap in
        [[0, 0, 2, 3, 1, 0]],  # (1 + x)(2 + x) after zeros: the remainder's taps start late
        np.outer([0, 1, -1], [0, 3, 3]),  # (1 - x) and 3 (1 + x), each after a zero
        np.outer([0, 0, 2, 3, 1], [1, 2, 1, 0]),
    ],
)
def test_correlate_separable_kernels_with_zero_margins_match_scipy(kernel):
    kernel = np.asarray(kernel)
    image = RNG.integers(0, 256, (17, 19)).astype(np.uint8)
    for k in (kernel, kernel.T):
        for flip in (False, True):
            expected = scipy_reference(image, k, "wrap", flip=flip)
            for method in ("separable", "direct"):
                out = correlate(image, k, border="wrap", flip=flip, method=method)
                np.testing.assert_array_equal(out, expected, err_msg=f"{method} {k.shape}")


def test_correlate_nearly_separable_float_kernel_is_not_factored():
    # 1e-4 off rank 1: a factorisation would be off by ~1 grey level on 8-bit sums
    g = np.exp(-(np.arange(-4, 5) ** 2) / 6.0)
    kernel = np.outer(g, g) + 1e-4 * RNG.standard_normal((9, 9))
    image = RNG.integers(0, 256, (60, 70)).astype(np.uint8)
    assert_close_to(correlate(image, kernel), scipy_reference(image, kernel))
    with pytest.raises(KernelError, match="rank-1"):
        correlate(image, kernel, method="separable")


def test_correlate_plan_cache_tells_accumulator_dtypes_apart():
    # same kernel, same size: uint8 pixels sum in int16, uint16 ones need int32 -- a plan
    # cached for the first must not be reused for the second
    kernel = np.array([[3, -7, 2, 9], [-8, 5, 1, -6], [4, 6, -9, 2]])
    small = RNG.integers(0, 256, (23, 19)).astype(np.uint8)
    big = RNG.integers(0, 65536, (23, 19)).astype(np.uint16)
    for image in (small, big):
        out = correlate(image, kernel, method="direct")
        np.testing.assert_array_equal(out, scipy_reference(image, kernel), err_msg=image.dtype)


@pytest.mark.parametrize(
    "shape", [(1, 2), (2, 1), (2, 2), (4, 4), (8, 3), (5, 16), (1, 32), (6, 12), (7, 9)]
)
def test_correlate_box_path_windows_of_every_width_match_scipy(shape):
    # the doubling window sums: powers of two (the last doubling is the answer) and others
    image = RNG.integers(0, 256, (40, 45)).astype(np.uint8)
    for value in (3, -1):
        kernel = np.full(shape, value)
        for border in ("reflect", "constant"):
            out = correlate(image, kernel, border=border, cval=1, method="box")
            expected = scipy_reference(image, kernel, border, 1)
            np.testing.assert_array_equal(out, expected, err_msg=f"{value} {border}")


def test_correlate_integer_sums_beyond_int64_are_summed_in_float64():
    # pixels near 2**59 times sum |k| = 41: sums near 2**64 would wrap in an int64 accumulator
    kernel = np.array([[2, 7, 1], [8, 2, 8], [1, 8, 3]])
    huge = RNG.integers(2**58, 2**59, (16, 18))
    for method in ("direct", "fft"):
        out = correlate(huge, kernel, method=method)
        np.testing.assert_allclose(out, scipy_reference(huge, kernel), rtol=1e-6, err_msg=method)


def test_correlate_plan_cache_tells_exact_and_float_sums_apart():
    # int64 pixels too large for any integer accumulator sum in float64 but, being integers,
    # have their FFT result rounded; float64 pixels of the same size must not be rounded
    kernel = np.array([[3, 1, 4], [1, 5, 9], [2, 6, 5]])
    huge = RNG.integers(2**58, 2**59, (16, 18))
    out = correlate(huge, kernel, method="fft")
    np.testing.assert_allclose(out, scipy_reference(huge, kernel), rtol=1e-6)
    floats = RNG.random((16, 18))
    assert_close_to(correlate(floats, kernel, method="fft"), scipy_reference(floats, kernel))


# --- padding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", SCIPY_MODES)
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1), (2, 0, 0, 3), (7, 9, 11, 5)])
@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (4, 3), (6, 5)])
def test_padding_equals_numpy_pad(mode, pads, shape):
    image = RNG.integers(0, 256, shape).astype(np.uint8)
    top, bottom, left, right = pads
    expected = np.pad(
        image,
        ((top, bottom), (left, right)),
        mode=conv.NUMPY_PAD_MODE[mode],
        **({"constant_values": 17} if mode == "constant" else {}),
    )
    source = padding._Source(image, pads, mode, 17.0, np.dtype(np.int32))
    rows = shape[0] + top + bottom
    flat = np.full((rows + 1) * source.width, -1, dtype=np.int32)
    source.rows(0, rows, flat)
    np.testing.assert_array_equal(flat[: rows * source.width].reshape(rows, -1), expected)
    assert not flat[rows * source.width :].any()  # the slack row is zeroed
    # any band of rows is the same as those rows of the whole
    if rows > 2:
        band = np.zeros(3 * source.width, dtype=np.int32)
        source.rows(1, 3, band)
        np.testing.assert_array_equal(band[: 2 * source.width].reshape(2, -1), expected[1:3])


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "wrap"])
def test_numpy_pad_modes_match_scipy_for_pads_wider_than_the_image(mode):
    # scipy reads pixel img[r + m - a, c + n - b]: a one-hot kernel at (m, n) returns that
    # shifted image, i.e. a window of the padding scipy uses, even far outside the image
    image = RNG.integers(0, 256, (3, 4)).astype(np.float64)
    pad = 10
    padded = np.pad(image, pad, mode=conv.NUMPY_PAD_MODE[mode])
    size = 2 * pad + 1
    for m in range(0, size, 3):
        for n in range(0, size, 4):
            onehot = np.zeros((size, size))
            onehot[m, n] = 1.0
            seen = ndimage.correlate(image, onehot, mode=mode)
            np.testing.assert_array_equal(seen, padded[m : m + 3, n : n + 4])


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        ([], "`kernel` must be 2-D"),
        ([[]], "`kernel` must not be empty"),
        ([1, 2, 3], "`kernel` must be 2-D, got 1-D"),
        ([[[1]]], "`kernel` must be 2-D, got 3-D"),
        ([[1, 2], [3]], "`kernel` must be a rectangular array"),
        ([[1, float("nan")]], "`kernel` must be finite"),
        ([[1, float("inf")]], "`kernel` must be finite"),
        ([["a"]], "`kernel` must hold real numbers"),
        ([[1j]], "`kernel` must hold real numbers"),
        (np.ones((64, 1)), "`kernel` is 64 x 1; each side must be at most 63"),
    ],
)
def test_correlate_rejects_bad_kernels(kernel, message):
    with pytest.raises(KernelError, match=message.replace("(", r"\(")) as info:
        correlate(np.zeros((5, 5), np.uint8), kernel)
    assert info.value.param == "kernel"


def test_correlate_max_kernel_side_is_configurable():
    image = np.zeros((9, 9), np.uint8)
    assert correlate(image, np.ones((9, 2)), max_kernel_side=9).shape == (9, 9)
    assert correlate(image, [[2]], max_kernel_side=1).shape == (9, 9)  # the smallest limit
    with pytest.raises(KernelError, match="at most 8"):
        correlate(image, np.ones((9, 2)), max_kernel_side=8)
    with pytest.raises(ParameterError) as info:
        correlate(image, np.ones((1, 1)), max_kernel_side=0)
    assert info.value.param == "max_kernel_side"


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros(5), "`image` must be 2-D or 3-D, got 1-D"),
        (np.zeros((2, 2, 2, 2)), "`image` must be 2-D or 3-D, got 4-D"),
        (np.zeros((0, 3)), "`image` must not be empty"),
        (np.zeros((3, 3, 5)), "`image` must have 1 to 4 channels, got 5"),
        (np.zeros((3, 3, 0)), "`image` must not be empty"),
        (np.zeros((3, 3), complex), "`image` must hold real numbers"),
        (np.array([[1.0, np.nan]]), "`image` must be finite"),
        ([["x"]], "`image` must hold real numbers"),
    ],
)
def test_correlate_rejects_bad_images(image, message):
    with pytest.raises(ImageError, match=message) as info:
        correlate(image, [[1]])
    assert info.value.param == "image"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"border": "edge"}, "border"),
        ({"border": None}, "border"),
        ({"method": "winograd"}, "method"),
        ({"weight": float("nan")}, "weight"),
        ({"weight": "2"}, "weight"),
        ({"weight": True}, "weight"),
        ({"cval": False}, "cval"),
        ({"max_kernel_side": True}, "max_kernel_side"),
        ({"cval": float("inf")}, "cval"),
        ({"flip": "yes"}, "flip"),
        ({"normalize": 1}, "normalize"),
        ({"alpha": True}, "alpha"),
    ],
)
def test_correlate_rejects_bad_parameters(kwargs, param):
    with pytest.raises(ParameterError) as info:
        correlate(np.zeros((4, 4), np.uint8), [[1]], **kwargs)
    assert info.value.param == param
    assert f"`{param}`" in str(info.value)


def test_correlate_alpha_needs_a_spare_channel():
    with pytest.raises(ParameterError) as info:
        correlate(np.zeros((4, 4, 1), np.uint8), [[1]], alpha=True)
    assert info.value.param == "alpha"


@pytest.mark.parametrize(("method", "kernel"), [("separable", LAPLACIAN), ("box", SOBEL_X)])
def test_correlate_rejects_forced_method_that_does_not_apply(method, kernel):
    with pytest.raises(KernelError, match=method) as info:
        correlate(np.zeros((4, 4), np.uint8), kernel, method=method)
    assert info.value.param == "kernel"


# --- caches and threads -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "fft"])
def test_correlate_same_kernel_bytes_different_shapes_are_different_kernels(method):
    image = RNG.integers(0, 256, (12, 12)).astype(np.uint8)
    row, square = np.array([[1, 2, 3, 4]]), np.array([[1, 2], [3, 4]])
    assert row.astype(float).tobytes() == square.astype(float).tobytes()
    # 2 x 4 and 4 x 2 also share the FFT tile on a 12 x 12 image (and so its spectrum cache)
    wide, tall = np.arange(1, 9).reshape(2, 4), np.arange(1, 9).reshape(4, 2)
    for kernel in (row, square, wide, tall):
        out = correlate(image, kernel, method=method)
        np.testing.assert_array_equal(out, scipy_reference(image, kernel), err_msg=kernel.shape)


def test_correlate_is_thread_safe(ascent):
    # the scratch pool is shared: concurrent calls must not see each other's buffers
    kernels = [SOBEL_X, LAPLACIAN, BINOMIAL7, np.ones((15, 15)), RNG.integers(-3, 4, (9, 9))]
    expected = [correlate(ascent, k) for k in kernels]
    barrier = threading.Barrier(4)

    def work(index):
        barrier.wait()
        return [np.array_equal(correlate(ascent, kernels[j]), expected[j]) for j in range(5)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    assert all(all(r) for r in results)


# --- properties ------------------------------------------------------------------------------


@st.composite
def images(draw):
    """Small (M, N) or (M, N, C) images of uint8, int16 or finite float32 values."""
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.float32]))
    shape = draw(st.tuples(st.integers(1, 12), st.integers(1, 12)))
    shape += draw(st.sampled_from([(), (1,), (3,)]))
    elements = st.floats(-1000, 1000, width=32) if dtype == np.float32 else None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@settings(max_examples=60, deadline=None)
@given(
    image=images(),
    shape=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    border=st.sampled_from(["reflect", "mirror", "nearest", "wrap", "constant", "keep"]),
    flip=st.booleans(),
)
def test_correlate_identity_kernel_returns_the_input(image, shape, border, flip):
    kernel = np.zeros(shape)
    kr, kc = shape
    # a one at the centre (kr // 2, kc // 2): the anchor of the correlation and, flipped to
    # (kr - 1 - kr // 2, ...), the anchor of the convolution too
    kernel[kr // 2, kc // 2] = 1
    out = correlate(image, kernel, border=border, flip=flip)
    np.testing.assert_array_equal(out, image.astype(np.float32))


@settings(max_examples=40, deadline=None)
@given(
    image=hnp.arrays(np.uint8, st.tuples(st.integers(1, 15), st.integers(1, 15))),
    kernel=hnp.arrays(
        np.int8,
        st.tuples(st.integers(1, 7), st.integers(1, 7)),
        elements=st.integers(-8, 8),
    ),
    border=st.sampled_from(SCIPY_MODES),
)
def test_correlate_integer_inputs_match_scipy_exactly(image, kernel, border):
    out = correlate(image, kernel, border=border, cval=3)
    np.testing.assert_array_equal(out, scipy_reference(image, kernel, border, 3))


# --- exactness at the integer limits (issue 15) -----------------------------------------------


def shifted_sum_reference(image, kernel, mode):
    """Exact int64 correlation by padding (numpy.pad) and summing shifted slices, tap by tap."""
    kr, kc = kernel.shape
    pads = ((kr // 2, kr - 1 - kr // 2), (kc // 2, kc - 1 - kc // 2))
    padded = np.pad(image.astype(np.int64), pads, mode=conv.NUMPY_PAD_MODE[mode])
    out = np.zeros(image.shape, np.int64)
    for m in range(kr):
        for n in range(kc):
            out += int(kernel[m, n]) * padded[m : m + image.shape[0], n : n + image.shape[1]]
    return out


@pytest.mark.parametrize("method", ["direct", "separable", "box"])
def test_correlate_int64_sum_of_exactly_2_63_keeps_its_sign(method):
    # 2**62 + 2**62 = 2**63 is one past int64's maximum: the bound must compare exactly
    # (float(iinfo(int64).max) rounds up to 2**63), so the sum is formed in float64
    image = np.full((1, 2), 2**62, np.int64)
    out = correlate(image, [[1, 1]], border="nearest", method=method)
    expected = scipy_reference(image, [[1, 1]], "nearest")
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    assert out.min() > 0


def test_correlate_int64_sum_just_below_2_63_stays_exact():
    # (2**62 - 1) + 2**62 = 2**63 - 1 fits int64: the exact integer path still applies
    image = np.array([[2**62 - 1, 2**62]], np.int64)
    out = correlate(image, [[1, 1]], border="nearest", method="direct")
    np.testing.assert_array_equal(out, np.float32(2**63 - 1))


def _cancelling_case(magnitude_bits):
    """Pixels near 2**bits with a zero-sum kernel: exact sums are small, FFT errors are not."""
    rng = np.random.default_rng(magnitude_bits)
    kernel = rng.integers(-4, 5, (25, 25))
    kernel[12, 12] -= kernel.sum()  # sum 0
    top = 2**magnitude_bits // int(np.abs(kernel).sum()) - 9
    image = rng.choice([-top, top], size=(160, 170)) + rng.integers(-9, 10, (160, 170))
    return image.astype(np.int64), kernel


def test_correlate_fft_is_exact_up_to_its_stated_bound():
    image, kernel = _cancelling_case(40)
    assert np.abs(image).max() * np.abs(kernel).sum() <= conv.FFT_EXACT_BOUND
    out = correlate(image, kernel, border="reflect", method="fft")
    expected = shifted_sum_reference(image, kernel, "reflect")
    np.testing.assert_array_equal(out, expected.astype(np.float32))


def test_correlate_auto_keeps_sums_over_the_fft_bound_off_the_fft_path():
    # at 2**56 the float64 FFT misses the exact (small) sums by thousands; 'auto' must take an
    # exact integer path instead, while the same shapes below the bound do take the FFT
    image, kernel = _cancelling_case(56)
    expected = shifted_sum_reference(image, kernel, "reflect")
    forced = correlate(image, kernel, border="reflect", method="fft")
    assert not np.array_equal(forced, expected.astype(np.float32))  # the hazard is real
    out = correlate(image, kernel, border="reflect")
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    small = np.clip(image, -255, 255).astype(np.int16)
    chosen = planning._plan(
        *(exact._kernel_info(kernel.astype(np.float64).tobytes(), (25, 25), False, False).kernel,),
        (25, 25),
        (12, 12),
        True,
        "<i4",
        small.shape,
        "auto",
    )
    assert chosen.method == "fft"


# --- stripes (issue 15): bounded memory, the same values ----------------------------------------

STRIPE_KERNELS = {
    "direct": (LAPLACIAN, "direct"),
    "separable-float": (np.outer([0.1, 0.7, 0.2], [0.3, 0.3, 0.4, 0.05, 0.1]), "separable"),
    "box": (np.ones((5, 4)), "box"),
    "fft-float": (RNG.random((9, 11)) - 0.3, "fft"),
    "fft-int": (RNG.integers(-4, 5, (13, 6)), "fft"),
    "direct-float": (RNG.random((4, 3)), "direct"),
}


@pytest.mark.parametrize("name", list(STRIPE_KERNELS))
@pytest.mark.parametrize("border", BORDERS)
# one-row and 7-row stripes in the fast tier (seams inside every kernel); 64 rows in make test
@pytest.mark.parametrize("stripe", [1, 7, pytest.param(64, marks=pytest.mark.slow)])
def test_correlate_stripes_equal_the_whole_call_bit_for_bit(name, border, stripe):
    kernel, method = STRIPE_KERNELS[name]
    image = RNG.integers(0, 256, (83, 47, 4), dtype=np.uint8)
    kwargs = {"border": border, "method": method, "alpha": True, "cval": 3.5, "weight": 0.7}
    whole = correlate(image, kernel, **kwargs)
    stripes = list(correlate_stripes(image, kernel, stripe_rows=stripe, **kwargs))
    assert [r0 for r0, _ in stripes] == list(range(0, whole.shape[0], stripe))
    stacked = np.concatenate([block for _, block in stripes])
    np.testing.assert_array_equal(stacked, whole)


def test_correlate_stripes_of_a_large_fft_image_cross_tile_seams():
    # several overlap-save tiles down the rows; stripes start inside tiles
    image = RNG.random((1400, 300)).astype(np.float32)
    kernel = RNG.random((21, 21))
    whole = correlate(image, kernel, method="fft", border="mirror")
    assert planning._plan.cache_info().currsize > 0
    stacked = np.concatenate(
        [
            b
            for _, b in correlate_stripes(
                image, kernel, stripe_rows=333, method="fft", border="mirror"
            )
        ]
    )
    np.testing.assert_array_equal(stacked, whole)
    assert_close_to(stacked, scipy_reference(image, kernel, "mirror"))


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("border", SCIPY_MODES)
def test_correlate_stripes_match_scipy_with_threads(threads, border):
    image = RNG.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    g = np.array([1, 4, 6, 4, 1])
    kernel = np.outer(g, g)
    blocks = correlate_stripes(
        image, kernel, stripe_rows=17, threads=threads, border=border, weight=1 / 256
    )
    stacked = np.concatenate([block for _, block in blocks])
    for ch in range(3):
        expected = scipy_reference(image[:, :, ch], kernel, border) / 256
        np.testing.assert_array_equal(stacked[:, :, ch], expected.astype(np.float32))


def test_correlate_stripes_check_arguments_before_the_first_stripe():
    with pytest.raises(ParameterError):
        correlate_stripes(np.zeros((4, 4)), [[1]], stripe_rows=0)
    with pytest.raises(ParameterError):
        correlate_stripes(np.zeros((4, 4)), [[1]], stripe_rows=2, threads=0)
    with pytest.raises(KernelError):
        correlate_stripes(np.zeros((4, 4)), [[1]] * 9, stripe_rows=2, border="valid")
