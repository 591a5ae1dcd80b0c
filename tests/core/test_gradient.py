"""core.gradient against scipy.ndimage: sqrt(correlate(kx)**2 + correlate(ky)**2) in float64."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from service.core.errors import KernelError, ParameterError
from service.core.gradient import gradient_magnitude, gradient_magnitude_stripes

RNG = np.random.default_rng(1313)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
SOBEL_Y = SOBEL_X.T
SCIPY_MODES = ("reflect", "mirror", "nearest", "wrap", "constant")


def _reference(
    image: np.ndarray,
    kx: np.ndarray,
    ky: np.ndarray,
    *,
    mode: str = "reflect",
    cval: float = 0.0,
    wx: float = 1.0,
    wy: float = 1.0,
) -> np.ndarray:
    planes = image[..., None] if image.ndim == 2 else image
    out = np.empty(planes.shape, np.float64)
    for c in range(planes.shape[2]):
        plane = planes[..., c].astype(np.float64)
        gx = wx * ndimage.correlate(plane, kx, mode=mode, cval=cval)
        gy = wy * ndimage.correlate(plane, ky, mode=mode, cval=cval)
        out[..., c] = np.hypot(gx, gy)
    return out[..., 0] if image.ndim == 2 else out


@pytest.mark.parametrize("mode", SCIPY_MODES)
def test_sobel_pair_matches_scipy_for_every_border(mode: str) -> None:
    image = RNG.integers(0, 256, (37, 41), dtype=np.uint8)
    got = gradient_magnitude(image, SOBEL_X, SOBEL_Y, border=mode, cval=7.0)
    np.testing.assert_allclose(
        got, _reference(image, SOBEL_X, SOBEL_Y, mode=mode, cval=7.0), rtol=1e-6
    )
    assert got.dtype == np.float32


def test_any_two_kernels_weights_and_rgb() -> None:
    image = RNG.integers(0, 256, (23, 19, 3), dtype=np.uint8)
    kx = RNG.normal(size=(5, 3))
    ky = RNG.normal(size=(2, 4))
    got = gradient_magnitude(image, kx, ky, weight_x=0.5, weight_y=-2.0, border="nearest")
    want = _reference(image, kx, ky, mode="nearest", wx=0.5, wy=-2.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_flip_is_true_convolution() -> None:
    image = RNG.integers(0, 256, (16, 16), dtype=np.uint8)
    kx, ky = RNG.normal(size=(3, 3)), RNG.normal(size=(3, 3))
    got = gradient_magnitude(image, kx, ky, flip=True)
    plane = image.astype(np.float64)
    want = np.hypot(
        ndimage.convolve(plane, kx, mode="reflect"), ndimage.convolve(plane, ky, mode="reflect")
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_alpha_is_copied_and_valid_shrinks() -> None:
    image = RNG.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    got = gradient_magnitude(image, SOBEL_X, SOBEL_Y, alpha=True, border="valid")
    assert got.shape == (10, 8, 4)
    np.testing.assert_array_equal(got[..., 3], image[1:-1, 1:-1, 3])
    want = _reference(image[..., :3], SOBEL_X, SOBEL_Y)[1:-1, 1:-1]
    np.testing.assert_allclose(got[..., :3], want, rtol=1e-6)


def test_stripes_stack_to_the_whole_result_bit_for_bit() -> None:
    image = RNG.integers(0, 256, (53, 31, 3), dtype=np.uint8)
    whole = gradient_magnitude(image, SOBEL_X, np.ones((5, 5)), border="wrap")
    stripes = gradient_magnitude_stripes(
        image, SOBEL_X, np.ones((5, 5)), stripe_rows=8, threads=2, border="wrap"
    )
    parts = list(stripes)
    assert [r0 for r0, _ in parts] == list(range(0, 53, 8))
    np.testing.assert_array_equal(np.concatenate([s for _, s in parts]), whole)


def test_keep_and_mismatched_valid_kernels_are_refused() -> None:
    image = np.zeros((5, 5), np.uint8)
    with pytest.raises(ParameterError) as keep:
        gradient_magnitude(image, SOBEL_X, SOBEL_Y, border="keep")
    assert keep.value.param == "border"
    with pytest.raises(KernelError) as valid:
        gradient_magnitude(image, SOBEL_X, np.ones((5, 5)), border="valid")
    assert valid.value.param == "kernels"
    assert "3x3 and 5x5" in valid.value.message
