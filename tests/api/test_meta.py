"""Kernels, the ascent image, health, docs (self-hosted), security headers, API keys."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ASCENT_PATH, decode_png

LESSON_PRESETS = {
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
}


def test_list_kernels_has_required_presets(client: TestClient) -> None:
    response = client.get("/kernels")
    assert response.status_code == 200
    names = {item["name"] for item in response.json()}
    required = {
        "identity",
        "box-3",
        "box-5",
        "gaussian-3",
        "gaussian-5",
        "sharpen",
        "emboss",
        "outline",
        "prewitt-x",
        "prewitt-y",
        "scharr-x",
        "scharr-y",
        *LESSON_PRESETS,
    }
    assert required <= names


@pytest.mark.parametrize(("name", "kernel"), LESSON_PRESETS.items())
def test_read_kernel_lesson_filters(client: TestClient, name: str, kernel: list) -> None:
    response = client.get(f"/kernels/{name}")
    assert response.status_code == 200
    body = response.json()
    assert body["kernel"] == kernel
    assert body["weight"] == 1.0
    assert body["description"]


def test_read_kernel_unknown_is_404(client: TestClient) -> None:
    response = client.get("/kernels/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_ascent_image_is_the_shipped_png(client: TestClient, ascent: np.ndarray) -> None:
    response = client.get("/images/ascent")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert (
        hashlib.sha256(response.content).digest()
        == hashlib.sha256(ASCENT_PATH.read_bytes()).digest()
    )
    np.testing.assert_array_equal(decode_png(response.content), ascent)


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_docs_are_self_hosted(client: TestClient) -> None:
    html = client.get("/docs").text
    assert "/static/docs/swagger-ui-bundle.js" in html
    assert "cdn." not in html
    assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static/docs/swagger-ui.css").status_code == 200
    redoc = client.get("/redoc").text
    assert "/static/docs/redoc.standalone.js" in redoc
    assert "cdn." not in redoc
    assert client.get("/static/docs/redoc.standalone.js").status_code == 200


def test_security_headers_present(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_cors_off_by_default(client: TestClient) -> None:
    response = client.get("/kernels", headers={"Origin": "http://example.test"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_on_when_configured(make_client) -> None:
    client = make_client(cors_origins=["http://example.test"])
    response = client.get("/kernels", headers={"Origin": "http://example.test"})
    assert response.headers["access-control-allow-origin"] == "http://example.test"


KEY = "k" * 32


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-key-wrong-key-1234"}, 401),
        ({"X-API-Key": "wrong"}, 401),
        ({"Authorization": f"Bearer {KEY}"}, 200),
        ({"X-API-Key": KEY}, 200),
        ({"Authorization": f"bearer {KEY}"}, 200),  # the scheme is case-insensitive (RFC 9110)
        ({"Authorization": f"BEARER  {KEY}"}, 200),  # 1*SP between scheme and token
        ({"Authorization": f"Basic {KEY}"}, 401),
        ({"X-API-Key": KEY.upper()}, 401),
        ({"X-API-Key": KEY[:-1]}, 401),
    ],
)
def test_api_keys_guard_processing(make_client, headers: dict, status: int) -> None:
    client = make_client(api_keys=[KEY])
    response = client.post("/pool", json={}, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert "API key" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("path", "spec"),
    [
        ("/convolve", {"preset": "identity"}),
        ("/pool", {}),
        ("/pipeline", {"steps": [{"op": "pool"}]}),
    ],
)
def test_api_keys_guard_every_processing_endpoint(make_client, path: str, spec: dict) -> None:
    client = make_client(api_keys=[KEY])
    assert client.post(path, json=spec).status_code == 401
    files = {"spec": (None, json.dumps(spec))}
    assert client.post(path, files=files).status_code == 401
    assert client.post(path, json=spec, headers={"X-API-Key": KEY}).status_code == 200


def test_api_keys_any_configured_key_is_accepted(make_client) -> None:
    keys = ["a" * 16, "b" * 20, "c" * 40]
    client = make_client(api_keys=keys)
    for key in keys:
        response = client.post("/pool", json={}, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, key
    assert client.post("/pool", json={}, headers={"X-API-Key": "d" * 16}).status_code == 401


def test_api_keys_leave_health_and_docs_open(make_client) -> None:
    client = make_client(api_keys=[KEY])
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json", "/kernels"):
        assert client.get(path).status_code == 200, path


def test_api_keys_off_by_default(client: TestClient) -> None:
    assert client.post("/pool", json={}).status_code == 200
