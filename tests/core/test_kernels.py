"""Kernel presets: names, values, sums, shapes, immutability, and what each edge kernel shows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from service.core.errors import KernelError
from service.core.kernels import PRESETS, Preset, get_preset

EXPECTED_NAMES = [
    "identity", "laplacian", "sobel-x", "sobel-y", "box-3", "box-5", "gaussian-3",
    "gaussian-5", "sharpen", "emboss", "outline", "prewitt-x", "prewitt-y", "scharr-x",
    "scharr-y",
]  # fmt: skip
EDGE_KERNELS = [
    "laplacian", "sobel-x", "sobel-y", "outline", "prewitt-x", "prewitt-y", "scharr-x",
    "scharr-y",
]  # fmt: skip
BLURS = {"box-3": 3, "box-5": 5, "gaussian-3": 3, "gaussian-5": 5}


def test_presets_names_in_order():
    assert list(PRESETS) == EXPECTED_NAMES
    assert all(PRESETS[name].name == name for name in PRESETS)


def test_presets_lesson_kernels_exact():
    assert get_preset("laplacian").kernel == ((0, 1, 0), (1, -4, 1), (0, 1, 0))
    assert get_preset("sobel-x").kernel == ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1))
    assert get_preset("sobel-y").kernel == ((-1, -2, -1), (0, 0, 0), (1, 2, 1))
    for name in ("laplacian", "sobel-x", "sobel-y", "identity"):
        assert get_preset(name).weight == 1.0


def test_presets_other_kernels_exact():
    assert get_preset("scharr-x").kernel == ((-3, 0, 3), (-10, 0, 10), (-3, 0, 3))
    assert get_preset("prewitt-y").kernel == ((-1, -1, -1), (0, 0, 0), (1, 1, 1))
    g5 = [1, 4, 6, 4, 1]
    assert get_preset("gaussian-5").kernel == tuple(tuple(a * b for b in g5) for a in g5)
    assert get_preset("gaussian-3").weight == 1 / 16
    assert get_preset("gaussian-5").weight == 1 / 256
    assert get_preset("box-3").weight == 1 / 9
    assert get_preset("box-5").weight == 1 / 25


@pytest.mark.parametrize("name", EDGE_KERNELS)
def test_presets_edge_kernels_sum_to_zero(name):
    assert sum(map(sum, get_preset(name).kernel)) == 0


@pytest.mark.parametrize("name", sorted(BLURS))
def test_presets_blurs_with_weight_sum_to_one(name):
    preset = get_preset(name)
    assert preset.array.shape == (BLURS[name], BLURS[name])
    assert sum(map(sum, preset.kernel)) * preset.weight == pytest.approx(1.0, abs=1e-15)
    assert (preset.array > 0).all()


@pytest.mark.parametrize("name", ["identity", "sharpen", "emboss"])
def test_presets_brightness_preserving_kernels_sum_to_one(name):
    preset = get_preset(name)
    assert sum(map(sum, preset.kernel)) * preset.weight == 1


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_presets_integer_rectangular_immutable(name):
    preset = PRESETS[name]
    assert isinstance(preset, Preset)
    assert isinstance(preset.kernel, tuple)
    assert all(isinstance(row, tuple) for row in preset.kernel)
    assert all(isinstance(v, int) for row in preset.kernel for v in row)
    assert len({len(row) for row in preset.kernel}) == 1
    rows, cols = preset.array.shape
    assert rows % 2 == 1
    assert cols % 2 == 1
    assert preset.array.dtype == np.float64
    assert preset.description
    assert "\n" not in preset.description
    with pytest.raises(AttributeError):
        preset.weight = 2.0  # type: ignore[misc]


def test_presets_mapping_is_read_only():
    with pytest.raises(TypeError):
        PRESETS["mine"] = PRESETS["identity"]  # type: ignore[index]


def test_presets_power_of_two_weights_are_exact():
    for name in ("gaussian-3", "gaussian-5"):
        weight = get_preset(name).weight
        assert weight == 2.0 ** round(np.log2(weight))


# Every preset as printed in its source (see the module docstring of service.core.kernels),
# written out by hand: a changed entry that keeps the kernel's sum must still fail here.
PUBLISHED = {
    "identity": (((0, 0, 0), (0, 1, 0), (0, 0, 0)), 1.0),
    "laplacian": (((0, 1, 0), (1, -4, 1), (0, 1, 0)), 1.0),
    "sobel-x": (((-1, 0, 1), (-2, 0, 2), (-1, 0, 1)), 1.0),
    "sobel-y": (((-1, -2, -1), (0, 0, 0), (1, 2, 1)), 1.0),
    "box-3": (((1, 1, 1),) * 3, 1 / 9),
    "box-5": (((1, 1, 1, 1, 1),) * 5, 1 / 25),
    "gaussian-3": (((1, 2, 1), (2, 4, 2), (1, 2, 1)), 1 / 16),
    "gaussian-5": (
        (
            (1, 4, 6, 4, 1),
            (4, 16, 24, 16, 4),
            (6, 24, 36, 24, 6),
            (4, 16, 24, 16, 4),
            (1, 4, 6, 4, 1),
        ),
        1 / 256,
    ),
    "sharpen": (((0, -1, 0), (-1, 5, -1), (0, -1, 0)), 1.0),
    "emboss": (((-2, -1, 0), (-1, 1, 1), (0, 1, 2)), 1.0),
    "outline": (((-1, -1, -1), (-1, 8, -1), (-1, -1, -1)), 1.0),
    "prewitt-x": (((-1, 0, 1), (-1, 0, 1), (-1, 0, 1)), 1.0),
    "prewitt-y": (((-1, -1, -1), (0, 0, 0), (1, 1, 1)), 1.0),
    "scharr-x": (((-3, 0, 3), (-10, 0, 10), (-3, 0, 3)), 1.0),
    "scharr-y": (((-3, -10, -3), (0, 0, 0), (3, 10, 3)), 1.0),
}


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_presets_every_kernel_and_weight_as_published(name):
    kernel, weight = PUBLISHED[name]
    assert get_preset(name).kernel == kernel
    assert get_preset(name).weight == weight


@pytest.mark.parametrize(("x", "y"), [("sobel-x", "sobel-y"), ("prewitt-x", "prewitt-y"),
                                      ("scharr-x", "scharr-y")])  # fmt: skip
def test_presets_y_kernel_is_x_transposed(x, y):
    np.testing.assert_array_equal(get_preset(y).array, get_preset(x).array.T)


def _lines() -> tuple[np.ndarray, np.ndarray]:
    vertical = np.zeros((9, 9))
    vertical[:, 4] = 100.0
    return vertical, vertical.T.copy()


@pytest.mark.parametrize("family", ["sobel", "prewitt", "scharr"])
def test_presets_x_shows_vertical_lines_y_horizontal(family):
    # standard mode = scipy.ndimage.correlate (no flip)
    vertical, horizontal = _lines()
    kx = get_preset(f"{family}-x").array
    ky = get_preset(f"{family}-y").array
    assert np.abs(ndimage.correlate(vertical, kx, mode="reflect")).max() > 0
    assert np.abs(ndimage.correlate(horizontal, kx, mode="reflect")).max() == 0
    assert np.abs(ndimage.correlate(horizontal, ky, mode="reflect")).max() > 0
    assert np.abs(ndimage.correlate(vertical, ky, mode="reflect")).max() == 0
    # x: brightness rising left to right is positive (left of the line), falling negative
    out = ndimage.correlate(vertical, kx, mode="reflect")
    assert out[4, 3] > 0
    assert out[4, 5] < 0


def test_presets_identity_returns_image():
    img = np.arange(20.0).reshape(4, 5)
    np.testing.assert_array_equal(
        ndimage.correlate(img, get_preset("identity").array, mode="reflect"), img
    )


def test_get_preset_unknown_name_lists_valid_names():
    with pytest.raises(KernelError) as info:
        get_preset("sobel")
    assert info.value.param == "preset"
    message = str(info.value)
    assert "`preset`" in message
    assert "'sobel'" in message
    for name in EXPECTED_NAMES:
        assert name in message


@pytest.mark.parametrize("name", [None, ["sobel-x"], 3, "Sobel-X"])
def test_get_preset_non_name_raises_kernel_error(name):
    with pytest.raises(KernelError):
        get_preset(name)  # type: ignore[arg-type]
