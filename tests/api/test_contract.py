"""Issue 12's contract: content negotiation, the per-encoding operations, and a schema exactly
as strict as the server (each case is checked against both)."""

from __future__ import annotations

import io
import json
from typing import Any

import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import ndimage

from service.openapi_dump import openapi_document
from tests.conftest import decode_png, png_bytes

PIXELS = [[0, 50, 100], [150, 200, 250], [10, 20, 30]]
LAPLACIAN = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
DOCUMENT = openapi_document()


def _reference_laplacian() -> np.ndarray:
    image = np.asarray(PIXELS, dtype=np.float64)
    return ndimage.correlate(image, np.asarray(LAPLACIAN, dtype=np.float64), mode="reflect")


# --- Accept and format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "spec", "media_type"),
    [
        (None, {}, "image/png"),
        ("*/*", {"format": "npy"}, "application/x-npy"),
        ("image/png", {"format": "npy"}, "image/png"),  # a named type wins over format
        ("application/x-npy", {}, "application/x-npy"),
        ("image/*;q=0.5, application/x-npy", {}, "application/x-npy"),
        ("image/png, application/x-npy", {"format": "npy"}, "application/x-npy"),  # tie: format
        ("application/json", {}, "image/png"),  # errors' type only: disregarded (generators)
        (None, {"format": "json"}, "application/json"),  # kept for existing callers
        ("image/png", {"format": "json"}, "image/png"),
    ],
)
def test_accept_and_format_pick_the_answer(
    client: TestClient, accept: str | None, spec: dict[str, Any], media_type: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    body = {"image": {"pixels": PIXELS}, "kernel": LAPLACIAN, **spec}
    response = client.post("/convolve", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["vary"] == "Accept"


def test_npy_answer_loads_with_numpy_uint8_and_raw_float32(client: TestClient) -> None:
    body = {"image": {"pixels": PIXELS}, "kernel": LAPLACIAN}
    headers = {"Accept": "application/x-npy"}
    clamped = np.load(io.BytesIO(client.post("/convolve", json=body, headers=headers).content))
    assert clamped.dtype == np.uint8
    np.testing.assert_array_equal(clamped, np.clip(_reference_laplacian(), 0, 255).astype(np.uint8))
    raw_body = {**body, "scale": "raw"}
    raw = np.load(io.BytesIO(client.post("/convolve", json=raw_body, headers=headers).content))
    assert raw.dtype == np.float32
    np.testing.assert_allclose(raw, _reference_laplacian(), rtol=1e-6)


def test_array_operation_answers_json_whatever_the_format(client: TestClient) -> None:
    body = {"image": {"pixels": PIXELS}, "kernel": LAPLACIAN, "scale": "raw", "format": "png"}
    response = client.post("/convolve/array", json=body)
    assert response.status_code == 200
    result = response.json()
    assert result["dtype"] == "float32"
    np.testing.assert_allclose(result["pixels"], _reference_laplacian(), rtol=1e-6)


@pytest.mark.parametrize(
    ("path", "accept"),
    [("/convolve/array", "image/png"), ("/convolve", "image/gif"), ("/pool/upload", "text/html")],
)
def test_unsatisfiable_accept_is_406_json(client: TestClient, path: str, accept: str) -> None:
    spec = {"preset": "sobel-x"} if "convolve" in path else {}
    if path.endswith("/upload"):
        response = client.post(
            path, files={"spec": (None, json.dumps(spec))}, headers={"Accept": accept}
        )
    else:
        response = client.post(path, json=spec, headers={"Accept": accept})
    assert response.status_code == 406
    assert accept in response.json()["detail"]


def test_raw_as_png_is_still_422(client: TestClient) -> None:
    body = {"preset": "sobel-x", "scale": "raw"}
    response = client.post("/convolve", json=body, headers={"Accept": "image/png"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "scale"]


# --- the per-encoding operations -----------------------------------------------------------


def test_upload_operation_takes_multipart_only(client: TestClient) -> None:
    image = png_bytes(np.asarray(PIXELS, dtype=np.uint8))
    spec = json.dumps({"kernel": LAPLACIAN})
    response = client.post(
        "/convolve/upload", files={"image": ("x.png", image), "spec": (None, spec)}
    )
    assert response.status_code == 200
    expected = np.clip(_reference_laplacian(), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(decode_png(response.content), expected)
    assert client.post("/convolve/upload", json={"kernel": LAPLACIAN}).status_code == 415
    assert client.post("/convolve/array", files={"spec": (None, spec)}).status_code == 415


def test_curl_upload_on_the_endpoint_keeps_working(client: TestClient) -> None:
    image = png_bytes(np.asarray(PIXELS, dtype=np.uint8))
    files = {
        "image": ("x.png", image),
        "spec": (None, json.dumps({"kernel": LAPLACIAN, "format": "json"})),
    }
    response = client.post("/convolve", files=files)
    assert response.status_code == 200
    assert response.json()["pixels"] == np.clip(_reference_laplacian(), 0, 255).astype(int).tolist()


@pytest.mark.parametrize("empty", [("", b""), None], ids=["empty-file", "empty-text"])
def test_empty_image_part_means_ascent(
    client: TestClient, ascent: np.ndarray, empty: tuple[str, bytes] | None
) -> None:
    files: dict[str, Any] = {"spec": (None, json.dumps({"size": 2}))}
    files["image"] = empty if empty is not None else (None, "")
    response = client.post("/pool/upload", files=files)
    assert response.status_code == 200, response.text
    assert decode_png(response.content).shape == (256, 256)


def test_empty_named_file_is_still_400(client: TestClient) -> None:
    files = {"image": ("x.png", b""), "spec": (None, json.dumps({"size": 2}))}
    assert client.post("/pool/upload", files=files).status_code == 400


# --- the schema is exactly as strict as the server -----------------------------------------


def _validator(schema_name: str) -> jsonschema.protocols.Validator:
    document = {**DOCUMENT, "$ref": f"#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(document)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/convolve", {"kernel": [[False]]}),
        ("/convolve", {"kernel": [["1"]]}),
        ("/convolve", {"kernel": [[1]], "preset": "sobel-x"}),
        ("/convolve", {}),
        ("/convolve", {"kernel": None, "preset": "sobel-x"}),
        ("/convolve", {"preset": "sobel-x", "weight": True}),
        ("/convolve", {"preset": "sobel-x", "cval": "2"}),
        ("/convolve", {"preset": "sobel-x", "image": {"pixels": [[1, True]]}}),
        ("/convolve", {"preset": "sobel-x", "image": {"pixels": [["1"]]}}),
        ("/pool", {"size": True}),
        ("/pool", {"size": "2"}),
        ("/pool", {"size": [2, False]}),
        ("/pool", {"stride": [1, 2, 3]}),
        ("/pipeline", {"steps": [{"op": "convolve"}]}),
        ("/pipeline", {"steps": [{"op": "convolve", "kernel": [[1]], "preset": "box-3"}]}),
        ("/pipeline", {"steps": [{"op": "pool", "size": True}]}),
    ],
)
def test_schema_and_server_both_refuse(client: TestClient, path: str, body: dict[str, Any]) -> None:
    assert client.post(path, json=body).status_code == 422
    model = {"/convolve": "ConvolveRequest", "/pool": "PoolRequest", "/pipeline": "PipelineRequest"}
    assert not _validator(model[path]).is_valid(body)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/convolve", {"preset": "sobel-x"}),
        ("/convolve", {"kernel": [[1, 2.5]], "weight": 0.5, "cval": 3}),
        ("/convolve", {"kernel": [[1, 1, 1]] * 3, "mode": "codelab"}),
        ("/pool", {"size": [2, 3], "stride": None}),
        ("/pipeline", {"steps": [{"op": "convolve", "preset": "box-3"}, {"op": "pool"}]}),
    ],
)
def test_schema_and_server_both_accept(client: TestClient, path: str, body: dict[str, Any]) -> None:
    assert client.post(path, json=body).status_code == 200
    model = {"/convolve": "ConvolveRequest", "/pool": "PoolRequest", "/pipeline": "PipelineRequest"}
    assert _validator(model[path]).is_valid(body)


def test_request_schemas_have_no_defaults() -> None:
    text = json.dumps(DOCUMENT["components"]["schemas"]["ConvolveRequest"])
    assert '"default"' not in text


def test_every_422_has_one_shape() -> None:
    for path, item in DOCUMENT["paths"].items():
        for operation in item.values():
            if "422" in operation["responses"]:
                content = operation["responses"]["422"]["content"]["application/json"]
                assert content["schema"]["$ref"].endswith("/ValidationErrorMessage"), path
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


@pytest.mark.parametrize(
    "operation", [(p, "post") for p, item in DOCUMENT["paths"].items() if "post" in item]
)
def test_every_example_answers_200_and_stays_light(
    client: TestClient, operation: tuple[str, str]
) -> None:
    # Issue 16: a shipped example answering 879 KB of JSON froze Swagger UI's tab. JSON stays
    # under 100 KB; a PNG (shown as an image there) under 160 KB: the 512x512 edge
    # maps of ascent are 110-130 KB at the default PNG level.
    path, _ = operation
    content = DOCUMENT["paths"][path]["post"]["requestBody"]["content"]
    for media_type, body in content.items():
        for example in body["examples"].values():
            if media_type == "application/json":
                response = client.post(path, json=example["value"])
            else:
                spec = json.dumps(example["value"]["spec"])
                response = client.post(path, files={"spec": (None, spec)})
            assert response.status_code == 200, (path, example, response.text)
            json_answer = response.headers["content-type"].startswith("application/json")
            limit = 100_000 if json_answer else 160 * 1024
            assert len(response.content) < limit, (path, example["summary"])


def test_spec_part_may_be_a_json_file_part(client: TestClient) -> None:
    spec = json.dumps({"size": 2}).encode()
    as_json = client.post("/pool/upload", files={"spec": ("blob", spec, "application/json")})
    assert as_json.status_code == 200
    as_other = client.post("/pool/upload", files={"spec": ("spec.txt", spec, "text/plain")})
    assert as_other.status_code == 422
    assert as_other.json()["detail"][0]["loc"] == ["body", "spec"]
