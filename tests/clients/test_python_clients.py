"""Clients generated from ``openapi/openapi.json`` make every call of issue 12, unpatched.

openapi-python-client and openapi-generator ``-g python`` generate into a temporary directory,
with the versions pinned in ``pyproject.toml``; the calls go to a real uvicorn server, without
API keys and with keys (401, then success through each generated auth).
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.clients import generated
from tests.servers import Server, free_port, running_server, uvicorn_args

KEY = "client-test-key-0123456789"
PNG = b"\x89PNG\r\n\x1a\n"
ENDPOINTS = ("convolve", "pool", "pipeline")
SPECS: dict[str, dict[str, Any]] = {
    "convolve": {"preset": "sobel-x"},
    "pool": {"size": 2, "method": "max"},
    "pipeline": {"steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}]},
}
SMALL = [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90, 100, 110]]
EXAMPLES = {
    name: json.loads(generated.DOCUMENT.read_text())["paths"][f"/{name}"]["post"]["requestBody"][
        "content"
    ]["application/json"]["examples"]
    for name in ENDPOINTS
}
ARRAY_EXAMPLES = {
    name: json.loads(generated.DOCUMENT.read_text())["paths"][f"/{name}/array"]["post"][
        "requestBody"
    ]["content"]["application/json"]["examples"]
    for name in ENDPOINTS
}


def _upload_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8) * 5).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def open_server() -> Iterator[Server]:
    port = free_port()
    with running_server(uvicorn_args(port), port=port, env={"IMGFILTER_API_KEYS": ""}) as server:
        yield server


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[Server]:
    port = free_port()
    with running_server(uvicorn_args(port), port=port, env={"IMGFILTER_API_KEYS": KEY}) as server:
        yield server


# --- openapi-python-client -----------------------------------------------------------------


@pytest.fixture(scope="module")
def opc(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return generated.openapi_python_client(tmp_path_factory.mktemp("opc"))


def _opc_call(package: ModuleType, module: str, client: Any, **kwargs: Any) -> Any:
    operation = importlib.import_module(f"{package.__name__}.api.{module}")
    return operation.sync_detailed(client=client, **kwargs)


def _opc_model(package: ModuleType, name: str) -> Any:
    return getattr(importlib.import_module(f"{package.__name__}.models"), name)


def test_opc_meta_calls(opc: ModuleType, open_server: Server) -> None:
    client = opc.Client(base_url=open_server.base_url)
    assert _opc_call(opc, "health.get_health", client).parsed.status.value == "ok"
    assert _opc_call(opc, "health.get_readiness", client).parsed.status.value == "ready"
    kernels = _opc_call(opc, "meta.list_kernels", client).parsed
    assert "sobel-x" in [kernel.name for kernel in kernels]
    kernel = _opc_call(opc, "meta.get_kernel", client, name="sobel-x").parsed
    assert kernel.kernel == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert _opc_call(opc, "meta.get_ascent_image", client).content.startswith(PNG)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_opc_processing_calls(opc: ModuleType, open_server: Server, endpoint: str) -> None:
    client = opc.Client(base_url=open_server.base_url)
    request = _opc_model(opc, f"{endpoint.title()}Request").from_dict(
        {"image": "ascent", **SPECS[endpoint]}
    )
    png = _opc_call(opc, f"{endpoint}.{endpoint}", client, body=request)
    assert png.status_code == 200
    assert png.content.startswith(PNG)
    array = _opc_call(opc, f"{endpoint}.{endpoint}_array", client, body=request).parsed
    assert array.width == 256 if endpoint != "convolve" else array.width == 512
    assert len(array.pixels) == array.height
    spec = _opc_model(opc, f"{endpoint.title()}Spec").from_dict(SPECS[endpoint])
    body = _opc_model(opc, f"{endpoint.title()}UploadBody")(
        spec=spec, image=opc.types.File(payload=io.BytesIO(_upload_png()), file_name="x.png")
    )
    upload = _opc_call(opc, f"{endpoint}.{endpoint}_upload", client, body=body)
    assert upload.status_code == 200, upload.content
    assert Image.open(io.BytesIO(upload.content)).size[1] in (6, 3)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_opc_contract_examples(opc: ModuleType, open_server: Server, endpoint: str) -> None:
    client = opc.Client(base_url=open_server.base_url)
    model = _opc_model(opc, f"{endpoint.title()}Request")
    for example in EXAMPLES[endpoint].values():
        answer = _opc_call(
            opc, f"{endpoint}.{endpoint}", client, body=model.from_dict(example["value"])
        )
        assert answer.status_code == 200, (example, answer.content)
        assert answer.content.startswith(PNG)
    for example in ARRAY_EXAMPLES[endpoint].values():
        body = model.from_dict(example["value"])
        answer = _opc_call(opc, f"{endpoint}.{endpoint}_array", client, body=body)
        assert answer.status_code == 200, (example, answer.content)
        assert answer.parsed.height >= 1


def test_opc_errors(opc: ModuleType, open_server: Server) -> None:
    client = opc.Client(base_url=open_server.base_url)
    request = _opc_model(opc, "ConvolveRequest")
    invalid = _opc_call(opc, "convolve.convolve", client, body=request.from_dict({"preset": "no"}))
    assert invalid.status_code == 422
    assert type(invalid.parsed).__name__ == "ValidationErrorMessage"
    assert invalid.parsed.detail[0].loc == ["body", "preset"]
    spec = _opc_model(opc, "ConvolveSpec").from_dict({"preset": "sobel-x"})
    body = _opc_model(opc, "ConvolveUploadBody")(
        spec=spec, image=opc.types.File(payload=io.BytesIO(b"not an image"), file_name="x.png")
    )
    bad = _opc_call(opc, "convolve.convolve_upload", client, body=body)
    assert bad.status_code == 400
    assert "not an image" in bad.parsed.detail


def test_opc_api_keys(opc: ModuleType, keyed_server: Server) -> None:
    body = _opc_model(opc, "PoolRequest").from_dict({"size": 2})
    anonymous = opc.Client(base_url=keyed_server.base_url)
    refused = _opc_call(opc, "pool.pool", anonymous, body=body)
    assert refused.status_code == 401
    assert "API key" in refused.parsed.detail
    bearer = opc.AuthenticatedClient(base_url=keyed_server.base_url, token=KEY)
    assert _opc_call(opc, "pool.pool", bearer, body=body).content.startswith(PNG)
    header = opc.AuthenticatedClient(
        base_url=keyed_server.base_url, token=KEY, auth_header_name="X-API-Key", prefix=""
    )
    assert _opc_call(opc, "pool.pool", header, body=body).content.startswith(PNG)
