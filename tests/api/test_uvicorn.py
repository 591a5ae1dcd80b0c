"""The app over real TCP: a uvicorn process on a free port, called with httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from scipy import ndimage

from tests.conftest import decode_png, png_bytes
from tests.servers import Server, free_port, running_server, uvicorn_args


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    port = free_port()
    with running_server(uvicorn_args(port), port=port) as running:
        yield running


def test_uvicorn_serves_convolve_json_and_multipart(server: Server, ascent: np.ndarray) -> None:
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        by_json = client.post("/convolve", json={"preset": "sobel-x"})
        upload = {"image": ("a.png", png_bytes(ascent), "image/png")}
        by_form = client.post(
            "/convolve", files=upload, data={"spec": json.dumps({"preset": "sobel-x"})}
        )
    assert by_json.status_code == 200
    assert by_form.status_code == 200
    expected = np.clip(ndimage.correlate(ascent.astype(float), sobel), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(decode_png(by_json.content), expected)
    np.testing.assert_array_equal(decode_png(by_form.content), expected)


def test_uvicorn_answers_errors_as_json(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        response = client.post("/pool", content=b"x", headers={"content-type": "text/plain"})
        assert response.status_code == 415
        assert response.headers["content-type"] == "application/json"
        assert client.get("/healthz").status_code == 200
