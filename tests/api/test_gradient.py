"""POST /gradient (and as a pipeline step, in the CLI and the client) against scipy.ndimage."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import ndimage

from service.cli import main
from service.client import Client
from tests.conftest import decode_png, png_bytes

RNG = np.random.default_rng(2024)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
PREWITT_X = np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], float)


def _magnitude(
    image: np.ndarray, kx: np.ndarray, ky: np.ndarray, mode: str = "reflect"
) -> np.ndarray:
    """Reference: per channel, hypot of scipy's float64 correlations."""
    planes = image[..., None] if image.ndim == 2 else image
    out = np.stack(
        [
            np.hypot(
                ndimage.correlate(planes[..., c].astype(float), kx, mode=mode),
                ndimage.correlate(planes[..., c].astype(float), ky, mode=mode),
            )
            for c in range(planes.shape[2])
        ],
        axis=-1,
    )
    return out[..., 0] if image.ndim == 2 else out


def _clamped(values: np.ndarray) -> np.ndarray:
    return np.clip(values, 0, 255).astype(np.uint8)


def test_default_is_the_sobel_magnitude_of_ascent(client: TestClient, ascent: np.ndarray) -> None:
    answer = client.post("/gradient", json={})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    want = _clamped(_magnitude(ascent, SOBEL_X, SOBEL_X.T))
    np.testing.assert_array_equal(decode_png(answer.content), want)


def test_any_two_kernels_as_matrices_or_presets_with_a_weight(client: TestClient) -> None:
    image = RNG.integers(0, 256, (20, 24), dtype=np.uint8)
    kx = [[1, 2], [3, -4]]
    body = {
        "image": {"pixels": image.tolist()},
        "kernels": ["prewitt-x", kx],
        "weight": 0.25,
        "border": "nearest",
    }
    answer = client.post("/gradient/array", json=body)
    assert answer.status_code == 200, answer.text
    want = _clamped(0.25 * _magnitude(image, PREWITT_X, np.array(kx, float), mode="nearest"))
    np.testing.assert_array_equal(np.array(answer.json()["pixels"]), want)


def test_raw_is_float32(client: TestClient) -> None:
    image = RNG.integers(0, 256, (9, 11), dtype=np.uint8)
    body = {"image": {"pixels": image.tolist()}, "scale": "raw"}
    result = client.post("/gradient/array", json=body).json()
    assert result["dtype"] == "float32"
    np.testing.assert_allclose(result["pixels"], _magnitude(image, SOBEL_X, SOBEL_X.T), rtol=1e-6)


def test_rgb_upload_keeps_channels(client: TestClient) -> None:
    image = RNG.integers(0, 256, (17, 13, 3), dtype=np.uint8)
    answer = client.post(
        "/gradient/upload",
        files={"image": ("x.png", png_bytes(image), "image/png"), "spec": (None, "{}")},
    )
    assert answer.status_code == 200, answer.text
    want = _clamped(_magnitude(image, SOBEL_X, SOBEL_X.T))
    np.testing.assert_array_equal(decode_png(answer.content), want)


def test_as_a_pipeline_step_before_pooling(client: TestClient, ascent: np.ndarray) -> None:
    steps = [{"op": "gradient"}, {"op": "pool", "size": 2}]
    answer = client.post("/pipeline", json={"steps": steps})
    assert answer.status_code == 200, answer.text
    edges = _clamped(_magnitude(ascent, SOBEL_X, SOBEL_X.T))
    want = edges.reshape(256, 2, 256, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(decode_png(answer.content), want)


@pytest.mark.parametrize(
    ("spec", "loc", "words"),
    [
        ({"border": "keep"}, ["body", "border"], "not gradients"),
        ({"kernels": ["sobel-x", [[1]]], "border": "valid"}, ["body", "kernels"], "same shape"),
        ({"kernels": ["sobel", "sobel-y"]}, ["body", "kernels"], "unknown preset 'sobel'"),
        ({"kernels": ["sobel-x"]}, ["body", "kernels", 1], "required"),
        ({"kernels": ["sobel-x", [[1, 2], [3]]]}, ["body", "kernels"], "kernel 2 rows"),
        ({"kernels": ["sobel-x", [[1] * 64]]}, ["body", "kernels"], "at most 63"),
        ({"normalize": True}, ["body", "normalize"], ""),
    ],
)
def test_bad_specs_are_422_at_the_field(
    client: TestClient, spec: dict[str, object], loc: list[str], words: str
) -> None:
    answer = client.post("/gradient/array", json={"image": {"pixels": [[1, 2], [3, 4]]}, **spec})
    assert answer.status_code == 422, answer.text
    issue = answer.json()["detail"][0]
    assert issue["loc"][: len(loc)] == loc
    assert words in issue["msg"]


def test_pipeline_step_errors_are_located_at_the_step(client: TestClient) -> None:
    steps = [{"op": "pool", "size": 1}, {"op": "gradient", "border": "keep"}]
    answer = client.post("/pipeline/array", json={"image": {"pixels": [[1, 2]]}, "steps": steps})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "steps", 1, "border"]


def test_cli_subcommand(tmp_path: Path, ascent: np.ndarray) -> None:
    out = tmp_path / "edges.png"
    assert main(["gradient", "ascent", "--kernels", "prewitt-x,prewitt-y", "-o", str(out)]) == 0
    want = _clamped(_magnitude(ascent, PREWITT_X, PREWITT_X.T))
    np.testing.assert_array_equal(decode_png(out.read_bytes()), want)


def test_client_method(client: TestClient) -> None:
    def forward(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method, request.url.path, content=request.content, headers=request.headers
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    image = RNG.integers(0, 256, (10, 12), dtype=np.uint8)
    with Client("http://test", transport=httpx.MockTransport(forward)) as api:
        result = api.gradient(image, format="json")
        listed = [operation["name"] for operation in api.operations()]
    np.testing.assert_array_equal(result, _clamped(_magnitude(image, SOBEL_X, SOBEL_X.T)))
    assert "gradient" in listed
    assert json.loads(json.dumps(listed))  # plain JSON, as the playground reads it
