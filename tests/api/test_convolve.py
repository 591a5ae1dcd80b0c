"""POST /convolve over HTTP: both encodings, PNG and JSON, against scipy.ndimage."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import ndimage

from tests.conftest import decode_png, png_bytes

RNG = np.random.default_rng(2024)
SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
SCIPY_MODES = ["reflect", "mirror", "nearest", "wrap", "constant"]


def _clamp(values: np.ndarray) -> np.ndarray:
    """The contract's 8-bit rule: clip to 0..255, then truncate toward zero."""
    return np.clip(values, 0, 255).astype(np.uint8)


def test_convolve_preset_on_ascent_png(client: TestClient, ascent: np.ndarray) -> None:
    response = client.post("/convolve", json={"preset": "sobel-x"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert int(response.headers["content-length"]) == len(response.content)
    expected = _clamp(
        ndimage.correlate(ascent.astype(np.float64), np.array(SOBEL_X, float), mode="reflect")
    )
    np.testing.assert_array_equal(decode_png(response.content), expected)


def test_convolve_lesson_default_filter_json(client: TestClient, ascent: np.ndarray) -> None:
    kernel = [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
    response = client.post("/convolve", json={"kernel": kernel, "weight": 1, "format": "json"})
    assert response.status_code == 200
    body = response.json()
    expected = _clamp(ndimage.correlate(ascent.astype(np.float64), np.array(kernel, float)))
    assert (body["width"], body["height"], body["channels"], body["dtype"]) == (
        512,
        512,
        1,
        "uint8",
    )
    assert (body["min"], body["max"]) == (int(expected.min()), int(expected.max()))
    assert isinstance(body["min"], int)  # 0, not 0.0, for uint8
    assert isinstance(body["max"], int)
    np.testing.assert_array_equal(np.array(body["pixels"], dtype=np.uint8), expected)


@pytest.mark.parametrize("mode", SCIPY_MODES)
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (4, 4), (5, 2), (7, 7)])
def test_convolve_random_kernel_raw_matches_scipy(
    client: TestClient, mode: str, shape: tuple[int, int]
) -> None:
    image = RNG.integers(0, 256, (13, 17)).astype(np.float64)
    kernel = RNG.normal(size=shape).round(3)
    spec = {
        "image": {"pixels": image.tolist()},
        "kernel": kernel.tolist(),
        "weight": 0.7,
        "border": mode,
        "cval": 3.5,
        "scale": "raw",
        "format": "json",
    }
    response = client.post("/convolve", json=spec)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dtype"] == "float32"
    expected = 0.7 * ndimage.correlate(image, kernel, mode=mode, cval=3.5)
    np.testing.assert_allclose(np.array(body["pixels"]), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("shape", [(3, 3), (4, 2)])
def test_convolve_flip_matches_scipy_convolve(client: TestClient, shape: tuple[int, int]) -> None:
    image = RNG.integers(0, 256, (9, 11)).astype(np.float64)
    kernel = RNG.integers(-3, 4, shape).astype(np.float64)
    spec = {
        "image": {"pixels": image.tolist()},
        "kernel": kernel.tolist(),
        "flip": True,
        "format": "json",
        "scale": "raw",
    }
    body = client.post("/convolve", json=spec).json()
    np.testing.assert_array_equal(
        np.array(body["pixels"]), ndimage.convolve(image, kernel, mode="reflect")
    )


def test_convolve_valid_border_shrinks(client: TestClient) -> None:
    image = RNG.integers(0, 256, (6, 8))
    spec = {
        "image": {"pixels": image.tolist()},
        "kernel": [[1, 1, 1]] * 3,
        "border": "valid",
        "format": "json",
        "scale": "raw",
    }
    body = client.post("/convolve", json=spec).json()
    assert (body["height"], body["width"]) == (4, 6)
    full = ndimage.correlate(image.astype(float), np.ones((3, 3)))
    np.testing.assert_array_equal(np.array(body["pixels"]), full[1:-1, 1:-1])


def test_convolve_keep_border_keeps_margin(client: TestClient) -> None:
    image = RNG.integers(0, 256, (6, 8))
    spec = {
        "image": {"pixels": image.tolist()},
        "kernel": [[0, 0, 0], [0, 2, 0], [0, 0, 0]],
        "border": "keep",
        "weight": 0.5,
        "format": "json",
    }
    pixels = np.array(client.post("/convolve", json=spec).json()["pixels"])
    np.testing.assert_array_equal(pixels, image)  # identity inside, input kept at the margin


def test_convolve_normalize_divides_by_sum(client: TestClient) -> None:
    image = RNG.integers(0, 256, (8, 8)).astype(float)
    spec = {
        "image": {"pixels": image.tolist()},
        "kernel": [[1, 2, 1]],
        "normalize": True,
        "format": "json",
        "scale": "raw",
    }
    body = client.post("/convolve", json=spec).json()
    np.testing.assert_allclose(
        np.array(body["pixels"]), ndimage.correlate(image, np.array([[1, 2, 1]]) / 4), atol=1e-4
    )


def test_convolve_scale_abs_and_normalize(client: TestClient, ascent: np.ndarray) -> None:
    raw = ndimage.correlate(ascent.astype(float), np.array(SOBEL_X, float))
    body = client.post(
        "/convolve", json={"preset": "sobel-x", "scale": "abs", "format": "json"}
    ).json()
    np.testing.assert_array_equal(np.array(body["pixels"]), _clamp(np.abs(raw)))
    body = client.post(
        "/convolve", json={"preset": "sobel-x", "scale": "normalize", "format": "json"}
    ).json()
    expected = np.rint((raw - raw.min()) * 255 / (raw.max() - raw.min()))
    np.testing.assert_array_equal(np.array(body["pixels"]), expected)


def test_convolve_preset_weight_replaced_by_explicit(client: TestClient) -> None:
    image = np.full((5, 5), 90.0)
    base = {
        "image": {"pixels": image.tolist()},
        "preset": "box-3",
        "format": "json",
        "scale": "raw",
    }
    assert client.post("/convolve", json=base).json()["max"] == pytest.approx(90.0)
    assert client.post("/convolve", json={**base, "weight": 0.5}).json()["max"] == pytest.approx(
        405.0
    )


def test_convolve_rgba_upload_multipart_keeps_alpha(client: TestClient) -> None:
    rgba = RNG.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    files = {"image": ("in.png", png_bytes(rgba), "image/png")}
    response = client.post(
        "/convolve", files=files, data={"spec": json.dumps({"preset": "sobel-x"})}
    )
    assert response.status_code == 200
    out = decode_png(response.content)
    assert out.shape == (10, 12, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    for channel in range(3):
        expected = _clamp(
            ndimage.correlate(rgba[..., channel].astype(float), np.array(SOBEL_X, float))
        )
        np.testing.assert_array_equal(out[..., channel], expected)


def test_convolve_color_gray_converts_first(client: TestClient) -> None:
    rgb = RNG.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    spec = {
        "image": {"data": base64.b64encode(png_bytes(rgb)).decode()},
        "preset": "identity",
        "color": "gray",
        "format": "json",
    }
    body = client.post("/convolve", json=spec).json()
    from PIL import Image

    np.testing.assert_array_equal(
        np.array(body["pixels"]), np.asarray(Image.fromarray(rgb).convert("L"))
    )


def test_convolve_multipart_without_image_uses_ascent(
    client: TestClient, ascent: np.ndarray
) -> None:
    response = client.post("/convolve", files={"spec": (None, '{"preset": "identity"}')})
    assert response.status_code == 200
    np.testing.assert_array_equal(decode_png(response.content), ascent)
