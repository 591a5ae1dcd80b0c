"""service.client against a real uvicorn process (API keys on), checked with scipy/NumPy."""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from service.client import ApiError, AsyncClient, Client
from tests.conftest import ROOT, decode_png, png_bytes
from tests.servers import Server, free_port, running_server, uvicorn_args

API_KEY = "client-test-key-0123456789"
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    port = free_port()
    env = {"IMGFILTER_API_KEYS": API_KEY, "IMGFILTER_LOG_LEVEL": "warning"}
    with running_server(uvicorn_args(port), port=port, env=env) as running:
        yield running


@pytest.fixture
def api(server: Server) -> Iterator[Client]:
    with Client(server.base_url, api_key=API_KEY) as client:
        yield client


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, size=(9, 12), dtype=np.uint8)


def _correlate_clamped(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Reference: scipy's correlate with reflect borders, clipped to 0..255 and truncated."""
    values = ndimage.correlate(image.astype(np.float64), kernel, mode="reflect")
    return np.clip(values, 0, 255).astype(np.uint8)


def test_client_convolve_png_matches_scipy(api: Client, ascent: np.ndarray) -> None:
    png = api.convolve("ascent", preset="sobel-x")
    assert png.startswith(b"\x89PNG")
    np.testing.assert_array_equal(decode_png(png), _correlate_clamped(ascent, SOBEL_X))


def test_client_convolve_json_returns_uint8_array(api: Client, ascent: np.ndarray) -> None:
    result = api.convolve(kernel=SOBEL_X, format="json")
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, _correlate_clamped(ascent, SOBEL_X))


def test_client_convolve_raw_returns_float32(api: Client, small: np.ndarray) -> None:
    kernel = [[0.5, -1.0], [2.0, 0.25]]
    result = api.convolve(small, kernel=kernel, border="nearest", scale="raw", format="json")
    assert result.dtype == np.float32
    expected = ndimage.correlate(small.astype(np.float64), np.array(kernel), mode="nearest")
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("kind", ["path", "bytes", "uint8-array", "float-array"])
def test_client_convolve_uploads_each_image_kind(
    api: Client, small: np.ndarray, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "small.png"
    path.write_bytes(png_bytes(small))
    image = {
        "path": path,
        "bytes": path.read_bytes(),
        "uint8-array": small,
        "float-array": small.astype(np.float64) + 0.5,  # JSON pixels; fractions truncate
    }[kind]
    result = api.convolve(image, preset="sobel-x", format="json")
    np.testing.assert_array_equal(result, _correlate_clamped(small, SOBEL_X))


def test_client_pool_matches_block_max(api: Client, small: np.ndarray) -> None:
    result = api.pool(small, method="max", size=3, format="json")
    expected = small[:9, :12].reshape(3, 3, 4, 3).max(axis=(1, 3))
    np.testing.assert_array_equal(result, expected)
    png = api.pool(small, size=[3, 4], stride=2)
    assert decode_png(png).shape == (4, 5)


def test_client_pipeline_equals_convolve_then_pool(api: Client, ascent: np.ndarray) -> None:
    steps = [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}]
    png = api.pipeline(steps)
    as_json = api.pipeline(steps, "ascent", format="json")
    edges = _correlate_clamped(ascent, SOBEL_X)
    expected = edges.reshape(256, 2, 256, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(decode_png(png), expected)
    np.testing.assert_array_equal(as_json, expected)


def test_client_kernels_lists_presets(api: Client) -> None:
    kernels = {info["name"]: info for info in api.kernels()}
    assert kernels["sobel-x"]["kernel"] == SOBEL_X.tolist()
    assert kernels["sobel-x"]["weight"] == 1.0


def test_client_invalid_spec_raises_api_error_with_detail(api: Client) -> None:
    with pytest.raises(ApiError) as caught:
        api.convolve(kernel=[[1, 2], [3]])
    error = caught.value
    assert error.status_code == 422
    assert error.detail[0]["loc"] == ["body", "kernel"]
    assert "same length" in error.detail[0]["msg"]
    assert "body.kernel" in str(error)


def test_client_undecodable_bytes_raise_400(api: Client) -> None:
    with pytest.raises(ApiError) as caught:
        api.pool(b"definitely not an image", size=2)
    assert caught.value.status_code == 400
    assert "not an image" in caught.value.detail


def test_client_sends_api_key(server: Server) -> None:
    with Client(server.base_url) as anonymous, pytest.raises(ApiError) as caught:
        anonymous.convolve(preset="identity")
    assert caught.value.status_code == 401
    with Client(server.base_url, api_key="wrong-key-0123456789") as wrong:
        with pytest.raises(ApiError) as caught:
            wrong.pool(size=2)
        assert caught.value.status_code == 401
        assert wrong.kernels()  # open endpoint: no key needed


def test_async_client_twin(server: Server, ascent: np.ndarray) -> None:
    async def scenario() -> tuple[bytes, list[str], ApiError]:
        async with AsyncClient(server.base_url, api_key=API_KEY) as client:
            png = await client.convolve(preset="sobel-x")
            names = [info["name"] for info in await client.kernels()]
            try:
                await client.pipeline([{"op": "pool", "size": 0}])
            except ApiError as exc:
                return png, names, exc
            raise AssertionError("a pool size of 0 was accepted")

    png, names, error = asyncio.run(scenario())
    np.testing.assert_array_equal(decode_png(png), _correlate_clamped(ascent, SOBEL_X))
    assert "sobel-x" in names
    assert error.status_code == 422
    assert error.detail[0]["loc"][:3] == ["body", "steps", 0]


def test_readme_installs_the_client_from_the_clone_never_by_bare_name() -> None:
    """docs/naming.md: no index lookup of our name, so a squatted name cannot be installed."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert re.findall(r"pip install (\S+)", readme), "the README shows how to install the client"
    # and docs/clients.md, which holds the generated clients' install lines
    pages = [readme, (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")]
    installs = [target for page in pages for target in re.findall(r"pip install (\S+)", page)]
    for target in installs:
        name = target.strip("`'\"")
        assert not name.startswith(project["name"]), f"install by bare name: {target}"
        if re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", name):
            continue  # a third-party tool (a client generator), pinned to an exact version
        assert name.startswith(("-e", ".", "/")), f"not a path install: {target}"
    assert "client" in project["optional-dependencies"]
    assert "-e '.[client]'" in readme
