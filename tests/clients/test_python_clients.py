"""Clients generated from ``openapi/openapi.json`` make every call of issue 12, unpatched.

openapi-python-client and openapi-generator ``-g python`` generate into a temporary directory,
with the versions pinned in ``pyproject.toml``; the calls go to a real uvicorn server, without
API keys and with keys (401, then success through each generated auth).
"""

from __future__ import annotations

import importlib
import io
import json
from types import ModuleType
from typing import Any

import pytest
from PIL import Image

from tests.clients import generated
from tests.servers import Server

KEY = generated.KEY
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
    return generated.upload_png()


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


# --- openapi-generator -g python -------------------------------------------------------------

needs_java = pytest.mark.skipif(not generated.has_java(), reason="openapi-generator needs java")


@pytest.fixture(scope="module")
def ogen(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    if not generated.has_java():
        pytest.skip("openapi-generator needs java (Java 17: apt-get install default-jre-headless)")
    return generated.openapi_generator_python(tmp_path_factory.mktemp("ogen"))


def _ogen_api(package: ModuleType, server: Server, tag: str, **config: Any) -> Any:
    client = package.ApiClient(package.Configuration(host=server.base_url, **config))
    return getattr(package, f"{tag.title()}Api")(client)


@needs_java
def test_ogen_meta_calls(ogen: ModuleType, open_server: Server) -> None:
    health, meta = (_ogen_api(ogen, open_server, tag) for tag in ("health", "meta"))
    assert health.get_health().status == "ok"
    assert health.get_readiness().status == "ready"
    assert "sobel-x" in [kernel.name for kernel in meta.list_kernels()]
    assert meta.get_kernel("sobel-x").kernel == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    assert bytes(meta.get_ascent_image()).startswith(PNG)


@needs_java
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_ogen_processing_calls(ogen: ModuleType, open_server: Server, endpoint: str) -> None:
    api = _ogen_api(ogen, open_server, endpoint)
    request = getattr(ogen, f"{endpoint.title()}Request").from_dict(
        {"image": "ascent", **SPECS[endpoint]}
    )
    assert bytes(getattr(api, endpoint)(request)).startswith(PNG)
    array = getattr(api, f"{endpoint}_array")(request)
    assert array.width == (512 if endpoint == "convolve" else 256)
    assert len(array.pixels) == array.height
    spec = getattr(ogen, f"{endpoint.title()}Spec").from_dict(SPECS[endpoint])
    upload = getattr(api, f"{endpoint}_upload")(spec=spec, image=("x.png", _upload_png()))
    assert Image.open(io.BytesIO(bytes(upload))).size[1] in (6, 3)


@needs_java
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_ogen_contract_examples(ogen: ModuleType, open_server: Server, endpoint: str) -> None:
    api = _ogen_api(ogen, open_server, endpoint)
    model = getattr(ogen, f"{endpoint.title()}Request")
    for example in EXAMPLES[endpoint].values():
        assert bytes(getattr(api, endpoint)(model.from_dict(example["value"]))).startswith(PNG)
    for example in ARRAY_EXAMPLES[endpoint].values():
        assert getattr(api, f"{endpoint}_array")(model.from_dict(example["value"])).height >= 1


@needs_java
def test_ogen_errors(ogen: ModuleType, open_server: Server) -> None:
    api = _ogen_api(ogen, open_server, "convolve")
    with pytest.raises(ogen.exceptions.UnprocessableEntityException) as invalid:
        api.convolve(ogen.ConvolveRequest.from_dict({"preset": "no"}))
    issue = invalid.value.data.detail[0]
    assert [part.actual_instance for part in issue.loc] == ["body", "preset"]
    spec = ogen.ConvolveSpec.from_dict({"preset": "sobel-x"})
    with pytest.raises(ogen.exceptions.BadRequestException) as bad:
        api.convolve_upload(spec=spec, image=("x.png", b"not an image"))
    assert "not an image" in bad.value.data.detail


@needs_java
def test_ogen_api_keys(ogen: ModuleType, keyed_server: Server) -> None:
    request = ogen.PoolRequest.from_dict({"size": 2})
    with pytest.raises(ogen.exceptions.UnauthorizedException) as refused:
        _ogen_api(ogen, keyed_server, "pool").pool(request)
    assert "API key" in refused.value.data.detail
    bearer = _ogen_api(ogen, keyed_server, "pool", access_token=KEY)
    assert bytes(bearer.pool(request)).startswith(PNG)
    header = _ogen_api(ogen, keyed_server, "pool", api_key={"apiKeyAuth": KEY})
    assert bytes(header.pool(request)).startswith(PNG)
