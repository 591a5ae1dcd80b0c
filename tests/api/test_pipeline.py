"""POST /pipeline: the lesson's flow in one call, against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import ndimage

from tests.conftest import decode_png

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)


def _max2x2(image: np.ndarray) -> np.ndarray:
    rows, cols = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    blocks = image[:rows, :cols].reshape(rows // 2, 2, cols // 2, 2)
    return blocks.max(axis=(1, 3))


def test_pipeline_sobel_then_max_pool(client: TestClient, ascent: np.ndarray) -> None:
    spec = {"steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}]}
    response = client.post("/pipeline", json=spec)
    assert response.status_code == 200
    convolved = np.clip(ndimage.correlate(ascent.astype(float), SOBEL_X), 0, 255).astype(np.uint8)
    out = decode_png(response.content)
    assert out.shape == (256, 256)
    np.testing.assert_array_equal(out, _max2x2(convolved))


def test_pipeline_intermediate_is_8bit_unless_raw(client: TestClient, ascent: np.ndarray) -> None:
    raw = ndimage.correlate(ascent.astype(float), SOBEL_X)
    steps_8bit = [
        {"op": "convolve", "preset": "sobel-x"},
        {"op": "pool", "size": 2, "scale": "raw"},
    ]
    steps_raw = [
        {"op": "convolve", "preset": "sobel-x", "scale": "raw"},
        {"op": "pool", "size": 2, "scale": "raw"},
    ]
    clipped = client.post("/pipeline", json={"steps": steps_8bit, "format": "json"}).json()
    floating = client.post("/pipeline", json={"steps": steps_raw, "format": "json"}).json()
    assert clipped["max"] <= 255
    assert clipped["min"] >= 0
    np.testing.assert_allclose(np.array(floating["pixels"]), _max2x2(raw), atol=1e-3)
    assert floating["min"] < 0
    assert floating["max"] > 255


def test_pipeline_raw_last_step_needs_json(client: TestClient) -> None:
    response = client.post("/pipeline", json={"steps": [{"op": "pool", "scale": "raw"}]})
    assert response.status_code == 422
    steps = [{"op": "pool", "size": 1}, {"op": "pool", "scale": "raw"}]
    assert client.post("/pipeline", json={"steps": steps}).status_code == 422


def test_pipeline_raw_earlier_step_may_give_png(client: TestClient) -> None:
    """Only the last step's scale reaches the output: a raw step in between is fine for PNG."""
    steps = [{"op": "pool", "scale": "raw"}, {"op": "pool", "size": 1}]
    response = client.post("/pipeline", json={"steps": steps})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"


@pytest.mark.parametrize("steps", [1, 16])
def test_pipeline_step_count_within_limit(client: TestClient, steps: int) -> None:
    spec = {
        "image": {"pixels": [[5, 6], [7, 8]]},
        "steps": [{"op": "pool", "size": 1}] * steps,
        "format": "json",
    }
    response = client.post("/pipeline", json=spec)
    assert response.status_code == 200
    assert response.json()["pixels"] == [[5, 6], [7, 8]]


def test_pipeline_step_limit_from_settings(make_client) -> None:
    client = make_client(max_pipeline_steps=2)
    response = client.post("/pipeline", json={"steps": [{"op": "pool", "size": 1}] * 3})
    assert response.status_code == 422
    assert "at most 2 steps" in response.json()["detail"][0]["msg"]
