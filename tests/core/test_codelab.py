"""Codelab mode against the lesson's loop transcribed literally (testkit/lesson_reference)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.core import (
    ImageError,
    KernelError,
    ParameterError,
    apply_scale,
    codelab_correlate,
    correlate,
)
from testkit.lesson_reference import (
    lesson_convolve,
    lesson_convolve_3x3,
    lesson_output_pixels,
)

RNG = np.random.default_rng(31337)
# The lesson's three filters (weight 1) and its normalisation example (weight 0.1).
LESSON_CASES = {
    "laplacian": ([[0, 1, 0], [1, -4, 1], [0, 1, 0]], 1),
    "sobel-y (the active filter)": ([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], 1),
    "sobel-x": ([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], 1),
    "weighted box": ([[1, 1, 1], [1, 2, 1], [1, 1, 1]], 0.1),
}


@pytest.fixture(scope="session")
def lesson_outputs(ascent):
    """The literal 3x3 loop on ascent, once per lesson case (about 1.5 s each)."""
    return {
        name: lesson_convolve_3x3(ascent, kernel, weight)
        for name, (kernel, weight) in LESSON_CASES.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LESSON_CASES))
def test_codelab_equals_the_lesson_loop_on_ascent(name, ascent, lesson_outputs):
    kernel, weight = LESSON_CASES[name]
    out = apply_scale(codelab_correlate(ascent, kernel, weight))
    expected = lesson_outputs[name]
    assert out.dtype == expected.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("weight", [1, 0.1, -0.5, 1 / 3])
def test_codelab_equals_the_generic_loop_on_small_images(k, weight):
    image = RNG.integers(0, 256, (17, 14)).astype(np.uint8)
    kernel = RNG.integers(-4, 5, (k, k)).tolist()
    out = apply_scale(codelab_correlate(image, kernel, weight))
    np.testing.assert_array_equal(out, lesson_convolve(image, kernel, weight))


@pytest.mark.parametrize("k", [3, 5])
def test_codelab_float64_values_are_bit_for_bit_the_loops(k):
    # random float kernel and weight: every product and sum rounds, in the loop's order
    image = RNG.integers(0, 256, (12, 11)).astype(np.uint8)
    kernel = RNG.standard_normal((k, k)).tolist()
    values = codelab_correlate(image, kernel, 0.37)
    expected = lesson_output_pixels(image, kernel, 0.37)
    assert values.dtype == np.float64
    assert values.tobytes() == expected.tobytes()


def test_codelab_float_image_is_read_as_float64():
    image = (RNG.random((9, 10)) * 300 - 20).astype(np.float32)
    kernel = RNG.standard_normal((3, 3)).tolist()
    values = codelab_correlate(image, kernel, 1.5)
    assert values.tobytes() == lesson_output_pixels(image, kernel, 1.5).tobytes()


def test_codelab_is_the_transposed_standard_correlation():
    image = RNG.integers(0, 256, (20, 23)).astype(np.uint8)
    kernel = RNG.integers(-5, 6, (5, 5))
    values = codelab_correlate(image, kernel)
    standard = correlate(image, kernel.T, border="keep")
    np.testing.assert_array_equal(values, standard)


def test_codelab_sobel_x_shows_horizontal_lines():
    # the lesson's prose: [-1,0,1,-2,0,2,-1,0,1] shows vertical lines; its loop does not
    horizontal_edge = np.zeros((8, 8), np.uint8)
    horizontal_edge[4:] = 200
    vertical_edge = horizontal_edge.T.copy()
    sobel_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert np.abs(codelab_correlate(horizontal_edge, sobel_x)[1:-1, 1:-1]).max() == 800
    assert np.abs(codelab_correlate(vertical_edge, sobel_x)[1:-1, 1:-1]).max() == 0
    # standard mode: the other way round, as the prose says
    assert np.abs(correlate(vertical_edge, sobel_x, border="valid")).max() == 800
    assert np.abs(correlate(horizontal_edge, sobel_x, border="valid")).max() == 0


def test_codelab_margin_keeps_the_input():
    image = RNG.integers(0, 256, (9, 9)).astype(np.uint8)
    values = codelab_correlate(image, np.ones((5, 5)), 0.04)
    margin = np.ones((9, 9), bool)
    margin[2:-2, 2:-2] = False
    np.testing.assert_array_equal(values[margin], image[margin])
    assert not np.array_equal(values[2:-2, 2:-2], image[2:-2, 2:-2])


@pytest.mark.parametrize("shape", [(1, 1), (2, 5), (4, 2)])
def test_codelab_image_without_interior_is_returned_unchanged(shape):
    image = RNG.integers(0, 256, shape).astype(np.uint8)
    values = codelab_correlate(image, np.ones((5, 5)))
    np.testing.assert_array_equal(values, image.astype(np.float64))


@pytest.mark.parametrize("channels", [1, 3])
def test_codelab_filters_each_channel(channels):
    image = RNG.integers(0, 256, (10, 12, channels)).astype(np.uint8)
    kernel = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
    values = codelab_correlate(image, kernel, 0.5)
    assert values.shape == image.shape
    for ch in range(channels):
        np.testing.assert_array_equal(
            values[..., ch], lesson_output_pixels(image[..., ch], kernel, 0.5)
        )


def test_codelab_alpha_is_left_alone():
    image = RNG.integers(0, 256, (10, 12, 4)).astype(np.uint8)
    kernel = [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    values = codelab_correlate(image, kernel, 1 / 16, alpha=True)
    np.testing.assert_array_equal(values[..., 3], image[..., 3])
    np.testing.assert_array_equal(
        values[..., :3], codelab_correlate(image[..., :3], kernel, 1 / 16)
    )


@pytest.mark.parametrize("kernel", [np.ones((2, 2)), np.ones((4, 4)), np.ones((3, 5)), [[1, 2]]])
def test_codelab_rejects_kernels_that_are_not_odd_squares(kernel):
    with pytest.raises(KernelError, match="odd square `kernel`") as info:
        codelab_correlate(np.zeros((8, 8), np.uint8), kernel)
    assert info.value.param == "kernel"


@pytest.mark.parametrize(
    ("call", "error", "param"),
    [
        (lambda: codelab_correlate(np.zeros(4), [[1]]), ImageError, "image"),
        (lambda: codelab_correlate(np.zeros((4, 4)), [[np.inf]]), KernelError, "kernel"),
        (lambda: codelab_correlate(np.zeros((4, 4)), np.ones((65, 65))), KernelError, "kernel"),
        (
            lambda: codelab_correlate(np.zeros((4, 4)), [[1]], float("nan")),
            ParameterError,
            "weight",
        ),
        (lambda: codelab_correlate(np.zeros((4, 4)), [[1]], alpha=True), ParameterError, "alpha"),
    ],
)
def test_codelab_rejects_bad_arguments(call, error, param):
    with pytest.raises(error) as info:
        call()
    assert info.value.param == param


@settings(max_examples=50, deadline=None)
@given(
    image=hnp.arrays(np.uint8, st.tuples(st.integers(1, 10), st.integers(1, 10))),
    k=st.sampled_from([1, 3, 5]),
)
def test_codelab_identity_kernel_returns_the_input(image, k):
    kernel = np.zeros((k, k))
    kernel[k // 2, k // 2] = 1
    np.testing.assert_array_equal(codelab_correlate(image, kernel), image.astype(np.float64))
