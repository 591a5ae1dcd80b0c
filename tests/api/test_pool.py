"""POST /pool over HTTP against a plain-loop reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import decode_png, png_bytes

RNG = np.random.default_rng(99)


def _loop_pool(
    image: np.ndarray, size: tuple[int, int], stride: tuple[int, int], method: str, edge: str
) -> np.ndarray:
    """Reference: visit each window start with plain loops; partial windows cover what exists."""
    reduce = {"max": np.max, "min": np.min, "avg": np.mean}[method]
    rows, cols = image.shape[:2]
    if edge == "drop":
        starts_r = range(0, rows - size[0] + 1, stride[0])
        starts_c = range(0, cols - size[1] + 1, stride[1])
    else:
        starts_r = range(0, rows, stride[0])
        starts_c = range(0, cols, stride[1])
        starts_r = [r for r in starts_r if r < rows and (r == 0 or r + size[0] - stride[0] < rows)]
        starts_c = [c for c in starts_c if c < cols and (c == 0 or c + size[1] - stride[1] < cols)]
    out = np.zeros((len(starts_r), len(starts_c)), dtype=np.float64)
    for i, r in enumerate(starts_r):
        for j, c in enumerate(starts_c):
            out[i, j] = reduce(image[r : r + size[0], c : c + size[1]])
    return np.clip(out, 0, 255).astype(np.uint8)


def test_pool_default_is_lesson_2x2_max(client: TestClient, ascent: np.ndarray) -> None:
    response = client.post("/pool", json={})
    assert response.status_code == 200
    out = decode_png(response.content)
    assert out.shape == (256, 256)
    np.testing.assert_array_equal(out, _loop_pool(ascent, (2, 2), (2, 2), "max", "drop"))


@pytest.mark.parametrize("method", ["max", "avg", "min"])
@pytest.mark.parametrize("edge", ["drop", "partial"])
@pytest.mark.parametrize(("size", "stride"), [(2, None), (3, 2), ([2, 3], [3, 1])])
def test_pool_matches_loop(client: TestClient, method: str, edge: str, size, stride) -> None:
    image = RNG.integers(0, 256, (11, 9))
    spec = {
        "image": {"pixels": image.tolist()},
        "method": method,
        "size": size,
        "stride": stride,
        "edge": edge,
        "format": "json",
    }
    response = client.post("/pool", json=spec)
    assert response.status_code == 200, response.text
    sz = (size, size) if isinstance(size, int) else tuple(size)
    st = sz if stride is None else ((stride, stride) if isinstance(stride, int) else tuple(stride))
    np.testing.assert_array_equal(
        np.array(response.json()["pixels"]), _loop_pool(image.astype(float), sz, st, method, edge)
    )


def test_pool_rgb_upload_multipart(client: TestClient) -> None:
    rgb = RNG.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    files = {"image": ("in.png", png_bytes(rgb), "image/png")}
    response = client.post("/pool", files=files, data={"spec": json.dumps({"size": 2})})
    assert response.status_code == 200
    out = decode_png(response.content)
    assert out.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(
            out[..., channel], _loop_pool(rgb[..., channel], (2, 2), (2, 2), "max", "drop")
        )
