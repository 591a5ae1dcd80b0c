"""Every bad input gets a clear 4xx JSON error (never a 500), across the processing endpoints."""

from __future__ import annotations

import asyncio
import base64
import errno
import json
from collections.abc import AsyncIterator, Callable

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from starlette.requests import Request

from service.main import create_app
from tests.conftest import make_settings, png_bytes

ENDPOINTS = ["/convolve", "/pool", "/pipeline"]
VALID = {
    "/convolve": {"preset": "sobel-x"},
    "/pool": {"size": 2},
    "/pipeline": {"steps": [{"op": "pool", "size": 2}]},
}


def _detail_locs(response) -> list[list[object]]:
    return [issue["loc"] for issue in response.json()["detail"]]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_post_empty_body_is_422(client: TestClient, path: str) -> None:
    response = client.post(path, content=b"", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "empty" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_post_without_content_type_is_415(client: TestClient, path: str) -> None:
    response = client.post(path, content=b"{}")
    assert response.status_code == 415
    assert "Content-Type" in response.json()["detail"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_post_text_plain_is_415(client: TestClient, path: str) -> None:
    response = client.post(path, content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "text/plain" in response.json()["detail"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_post_invalid_json_is_422(client: TestClient, path: str) -> None:
    response = client.post(path, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_post_unknown_field_is_422(client: TestClient, path: str) -> None:
    response = client.post(path, json={**VALID[path], "colour": "gray"})
    assert response.status_code == 422
    issues = {tuple(issue["loc"]): issue["type"] for issue in response.json()["detail"]}
    assert issues[("body", "colour")] == "extra_forbidden"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_post_body_over_byte_limit_is_413(make_client, path: str) -> None:
    client = make_client(max_upload_bytes=2048)
    body = json.dumps({**VALID[path], "image": {"pixels": [[1] * 2000]}})
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]


def _padded_body(size: int) -> bytes:
    """A valid /pool JSON spec padded with trailing spaces to exactly ``size`` bytes."""
    body = json.dumps({"size": 1, "format": "json", "image": {"pixels": [[1, 2]]}}).encode()
    return body + b" " * (size - len(body))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_post_body_exactly_at_byte_limit_is_accepted(make_client, chunked: bool) -> None:
    client = make_client(max_upload_bytes=2048)
    body = _padded_body(2048)
    content = iter([body[:1000], body[1000:]]) if chunked else body
    response = client.post("/pool", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json()["pixels"] == [[1, 2]]
    over = client.post(
        "/pool", content=_padded_body(2049), headers={"content-type": "application/json"}
    )
    assert over.status_code == 413


def test_post_body_over_limit_without_content_length_is_413(make_client) -> None:
    client = make_client(max_upload_bytes=2048)

    def chunks():
        yield b'{"preset": "sobel-x", "image": {"pixels": [['
        for _ in range(500):
            yield b"1, 1, 1, 1, "
        yield b"1]]}"

    response = client.post(
        "/convolve", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize("path", ENDPOINTS)
def test_post_image_over_pixel_limit_is_413(make_client, path: str) -> None:
    client = make_client(max_pixels=10_000)
    files = {"image": ("big.png", png_bytes(np.zeros((101, 100), np.uint8)), "image/png")}
    response = client.post(path, files=files, data={"spec": json.dumps(VALID[path])})
    assert response.status_code == 413
    assert "10000 pixels" in response.json()["detail"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_post_undecodable_upload_is_400(client: TestClient, path: str) -> None:
    files = {"image": ("x.png", b"definitely not a png", "image/png")}
    response = client.post(path, files=files, data={"spec": json.dumps(VALID[path])})
    assert response.status_code == 400
    assert "not an image" in response.json()["detail"]


def test_post_zero_byte_upload_is_400(client: TestClient) -> None:
    files = {"image": ("x.png", b"", "image/png")}
    response = client.post("/pool", files=files, data={"spec": "{}"})
    assert response.status_code == 400
    assert "empty" in response.json()["detail"]


def test_post_undecodable_base64_image_is_400(client: TestClient) -> None:
    data = base64.b64encode(b"GIF89a but not really").decode()
    response = client.post("/pool", json={"image": {"data": data}})
    assert response.status_code == 400


def test_post_invalid_base64_is_422(client: TestClient) -> None:
    response = client.post("/pool", json={"image": {"data": "@@@not base64@@@"}})
    assert response.status_code == 422
    assert ["body", "image", "data"] in _detail_locs(response)


def test_multipart_missing_spec_is_422(client: TestClient) -> None:
    files = {"image": ("a.png", png_bytes(np.zeros((4, 4), np.uint8)), "image/png")}
    response = client.post("/pool", files=files)
    assert response.status_code == 422
    assert ["body", "spec"] in _detail_locs(response)


def test_multipart_invalid_spec_json_is_422_under_spec(client: TestClient) -> None:
    response = client.post("/convolve", files={"spec": (None, "{oops")})
    assert response.status_code == 422
    assert _detail_locs(response)[0][:2] == ["body", "spec"]


def test_multipart_spec_with_image_field_is_422(client: TestClient) -> None:
    response = client.post("/pool", files={"spec": (None, '{"image": "ascent"}')})
    assert response.status_code == 422
    assert ["body", "spec", "image"] in _detail_locs(response)


def test_multipart_unknown_part_is_422(client: TestClient) -> None:
    response = client.post("/pool", files={"spec": (None, "{}"), "specs": (None, "{}")})
    assert response.status_code == 422
    assert "specs" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        ([], "empty"),
        ([[]], "empty"),
        ([[1, 2], [3]], "same length"),
        ([[1]] * 10000, "at most 63"),
        ([[1] * 64], "at most 63"),
    ],
    ids=["empty", "empty-row", "ragged", "10000x1", "1x64"],
)
def test_convolve_bad_kernel_is_422(
    client: TestClient, kernel: list[list[int]], message: str
) -> None:
    response = client.post("/convolve", json={"kernel": kernel})
    assert response.status_code == 422
    assert ["body", "kernel"] in _detail_locs(response)
    assert message in json.dumps(response.json())


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["kernel", "weight"])
def test_convolve_nan_and_infinity_literals_are_422(
    client: TestClient, literal: str, field: str
) -> None:
    body = (
        f'{{"kernel": [[1, {literal}]]}}'
        if field == "kernel"
        else f'{{"preset": "box-3", "weight": {literal}}}'
    )
    response = client.post("/convolve", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]


def test_convolve_kernel_and_preset_together_is_422(client: TestClient) -> None:
    response = client.post("/convolve", json={"kernel": [[1]], "preset": "identity"})
    assert response.status_code == 422
    assert "exactly one" in response.json()["detail"][0]["msg"]


def test_convolve_neither_kernel_nor_preset_is_422(client: TestClient) -> None:
    response = client.post("/convolve", json={})
    assert response.status_code == 422
    assert "exactly one" in response.json()["detail"][0]["msg"]


def test_convolve_unknown_preset_lists_names(client: TestClient) -> None:
    response = client.post("/convolve", json={"preset": "sobel-z"})
    assert response.status_code == 422
    assert "sobel-x" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kernel": [[1, 2], [3, 4]], "mode": "codelab"}, "odd square"),
        ({"kernel": [[1, 2, 3]], "mode": "codelab"}, "odd square"),
        ({"preset": "sobel-x", "mode": "codelab", "border": "reflect"}, "keep"),
        ({"preset": "sobel-x", "mode": "codelab", "flip": True}, "flip"),
    ],
)
def test_convolve_codelab_restrictions_are_422(
    client: TestClient, spec: dict, message: str
) -> None:
    response = client.post("/convolve", json=spec)
    assert response.status_code == 422
    assert message in response.json()["detail"][0]["msg"]


def test_convolve_raw_png_is_422(client: TestClient) -> None:
    response = client.post("/convolve", json={"preset": "sobel-x", "scale": "raw"})
    assert response.status_code == 422
    assert "format: json" in response.json()["detail"][0]["msg"]


def test_convolve_valid_kernel_larger_than_image_is_422(client: TestClient) -> None:
    spec = {"kernel": [[1] * 5] * 5, "border": "valid", "image": {"pixels": [[1, 2], [3, 4]]}}
    response = client.post("/convolve", json=spec)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        ([[1, 2], [3]], "rectangular"),
        ([], "non-empty"),
        ([[[0] * 7]], "channels"),
        ([["a"]], "numbers"),
    ],
)
def test_bad_pixels_are_422(client: TestClient, pixels: list, message: str) -> None:
    response = client.post("/pool", json={"image": {"pixels": pixels}})
    assert response.status_code == 422
    assert message in response.json()["detail"][0]["msg"]


def test_pixels_with_nan_literal_are_422(client: TestClient) -> None:
    body = '{"image": {"pixels": [[1, NaN]]}}'
    response = client.post("/pool", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_pool_size_larger_than_image_is_422(client: TestClient) -> None:
    response = client.post("/pool", json={"size": 4, "image": {"pixels": [[1, 2], [3, 4]]}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "size"]


def test_pool_size_at_limit_is_accepted(client: TestClient) -> None:
    response = client.post("/pool", json={"size": 64, "format": "json"})  # ascent: 512 / 64
    assert response.status_code == 200
    assert response.json()["width"] == 8


def test_pool_size_over_limit_is_422(client: TestClient) -> None:
    response = client.post("/pool", json={"size": 65})
    assert response.status_code == 422
    assert "64" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("size", [0, -1, [2, 0]])
def test_pool_nonpositive_size_is_422(client: TestClient, size: object) -> None:
    response = client.post("/pool", json={"size": size})
    assert response.status_code == 422


def test_pipeline_10000_steps_is_422(client: TestClient) -> None:
    response = client.post("/pipeline", json={"steps": [{"op": "pool"}] * 10000})
    assert response.status_code == 422
    assert "at most 16 steps" in response.json()["detail"][0]["msg"]


def test_pipeline_no_steps_is_422(client: TestClient) -> None:
    response = client.post("/pipeline", json={"steps": []})
    assert response.status_code == 422


def test_pipeline_unknown_op_is_422(client: TestClient) -> None:
    response = client.post("/pipeline", json={"steps": [{"op": "blur"}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "union_tag_invalid"


def test_pipeline_core_error_points_at_step(client: TestClient) -> None:
    spec = {
        "image": {"pixels": [[1, 2], [3, 4]]},
        "steps": [{"op": "pool", "size": 1}, {"op": "pool", "size": 3}],
    }
    response = client.post("/pipeline", json=spec)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "steps", 1, "size"]


def test_errors_carry_no_traceback_or_paths(client: TestClient) -> None:
    files = {"image": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png")}
    response = client.post("/pool", files=files, data={"spec": "{}"})
    assert response.status_code == 400
    text = response.text
    assert "Traceback" not in text
    assert "/work/" not in text
    assert ".py" not in text


def _rejections(client: TestClient, reason: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'imgfilter_rejections_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_pixel_limit_rejections_are_counted_in_metrics(make_client) -> None:
    client = make_client(max_pixels=10_000)
    before = _rejections(client, "too_many_pixels")
    files = {"image": ("big.png", png_bytes(np.zeros((101, 100), np.uint8)), "image/png")}
    assert client.post("/pool", files=files, data={"spec": "{}"}).status_code == 413
    big_pixels = {"image": {"pixels": [[0] * 101] * 100}}
    assert client.post("/pool", json=big_pixels).status_code == 413
    assert _rejections(client, "too_many_pixels") == before + 2


@pytest.mark.parametrize("path", ENDPOINTS)
def test_body_slower_than_the_body_timeout_is_408_and_frees_its_admission(path: str) -> None:
    app = create_app(make_settings(body_timeout_s=0.2, max_concurrency=1, max_queue=0))
    limiter = app.state.work_limiter
    stalled = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"ima'
        stalled.set()
        await asyncio.sleep(30)  # the rest never comes
        yield b'ge": "ascent"}'

    async def main() -> tuple[httpx.Response, int, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            slow = asyncio.create_task(
                client.post(path, content=trickle(), headers={"content-type": "application/json"})
            )
            await stalled.wait()
            held = limiter._admitted  # the slow body holds the worker's only admission
            response = await slow
            return response, held, loop.time() - started

    before = REGISTRY.get_sample_value("imgfilter_rejections_total", {"reason": "slow_body"})
    response, held, elapsed = asyncio.run(main())
    assert held == 1
    assert response.status_code == 408
    assert response.headers["connection"] == "close"
    assert response.json() == {
        "detail": "the request body did not arrive within 0.2 s (5 bytes received)"
    }
    assert 0.2 <= elapsed < 5
    assert limiter._admitted == 0
    after = REGISTRY.get_sample_value("imgfilter_rejections_total", {"reason": "slow_body"})
    assert (after or 0) - (before or 0) == 1


@pytest.mark.parametrize("path", ["/convolve/array", "/pool/array", "/pipeline/array"])
def test_json_answer_over_max_json_values_is_422(
    make_client: Callable[..., TestClient], path: str
) -> None:
    body = {"preset": "sobel-x"} if path.startswith("/convolve") else {}
    if path.startswith("/pipeline"):
        body = {"steps": [{"op": "convolve", "preset": "sobel-x"}]}
    pool = {"size": 1} if path.startswith("/pool") else {}
    client = make_client(max_json_values=512 * 512 - 1)  # ascent's answer has 512 * 512 values
    response = client.post(path, json={"image": "ascent", **body, **pool})
    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["loc"] == ["body", "format"]
    assert "262,144" in issue["msg"]
    assert "npy" in issue["msg"]
    at_limit = make_client(max_json_values=512 * 512)
    assert at_limit.post(path, json={"image": "ascent", **body, **pool}).status_code == 200


def test_json_bound_leaves_npy_and_png_alone(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_json_values=1)
    spec = {"image": "ascent", "preset": "sobel-x"}
    assert client.post("/convolve", json=spec).status_code == 200
    npy = client.post("/convolve", json=spec, headers={"Accept": "application/x-npy"})
    assert npy.status_code == 200


def test_no_room_to_spool_an_upload_is_503_not_a_client_error(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def full_disk(*_: object, **__: object) -> object:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Request, "form", full_disk)
    response = client.post(
        "/convolve/upload",
        files={"spec": (None, '{"preset": "sobel-x"}')},
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "retry later" in response.json()["detail"]
