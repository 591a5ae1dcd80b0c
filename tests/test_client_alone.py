"""The client stands alone: ``clients/python`` installs into a venv holding only httpx and NumPy
(and what they require), and works there against a real server, without the server's packages.

Offline: the wheel is built with this venv's setuptools, and httpx, NumPy and their
requirements are linked from this venv (each distribution's files, found from its metadata).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import service
from tests.conftest import ROOT
from tests.servers import Server, free_port, running_server, uvicorn_args

CLIENT = ROOT / "clients" / "python"
SERVER_ONLY = ["service", "fastapi", "starlette", "pydantic", "uvicorn", "PIL", "orjson"]


def _closure(*names: str) -> dict[str, md.Distribution]:
    """The distributions ``names`` need, transitively (no extras), from this venv."""
    found: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        dist = md.distribution(todo.pop())
        key = dist.metadata["Name"].lower()
        if key in found:
            continue
        found[key] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("client-wheel")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"),
            *("--no-build-isolation", "--wheel-dir", str(out), str(CLIENT)),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("imgfilter_client-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the client's wheel installed, and httpx + NumPy (+ requirements) linked."""
    root = tmp_path_factory.mktemp("client-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"),
            *("--no-deps", "--no-index", str(wheel)),
        ],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = Path(sysconfig.get_path("purelib"))
    for dist in _closure("httpx", "numpy").values():
        tops = {Path(str(file)).parts[0] for file in dist.files or []}
        for top in tops - {"..", "__pycache__"}:
            if (ours / top).exists() and not (site / top).exists():
                (site / top).symlink_to(ours / top)
    return python


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    port = free_port()
    with running_server(uvicorn_args(port), port=port) as running:
        yield running


SCRIPT = """
import importlib.util, json, sys
import numpy as np
from imgfilter_client import ApiError, Client, __version__

base_url = sys.argv[1]
rng = np.random.default_rng(5)
shapes = [(5, 7), (4, 6, 2), (3, 5, 3), (6, 4, 4)]
with Client(base_url) as api:
    same = []
    for shape in shapes:  # uint8 arrays go up as PNG files made by the client itself
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        back = api.pool(pixels, method="max", size=1, format="json")
        same.append(bool(np.array_equal(back, pixels)))
    png = api.convolve("ascent", preset="sobel-x")
    try:
        api.convolve(kernel=[[1, 2], [3]])
        status = None
    except ApiError as error:
        status = error.status_code
print(json.dumps({
    "version": __version__,
    "same": same,
    "png": png[:8].hex(),
    "status": status,
    "installed": sorted(m.split(".")[0] for m in sys.modules if not m.startswith("_")),
    "findable": {name: importlib.util.find_spec(name) is not None for name in %r},
}))
"""


def test_client_works_in_a_venv_with_only_httpx_and_numpy(venv: Path, server: Server) -> None:
    done = subprocess.run(
        [str(venv), "-I", "-c", SCRIPT % SERVER_ONLY, server.base_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["same"] == [True] * 4
    assert report["png"] == b"\x89PNG\r\n\x1a\n".hex()
    assert report["status"] == 422
    assert report["version"] == service.__version__
    assert not any(report["findable"].values()), report["findable"]
    assert "httpx" in report["installed"]
    assert "numpy" in report["installed"]


def test_client_wheel_holds_the_client_module_alone(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        modules = [name for name in archive.namelist() if name.endswith(".py")]
        assert modules == ["imgfilter_client.py"]
        assert archive.read("imgfilter_client.py") == (ROOT / "service" / "client.py").read_bytes()
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith("METADATA")))
    requires = [line for line in metadata.decode().splitlines() if line.startswith("Requires-Dist")]
    assert sorted(Requirement(line.split(":", 1)[1]).name for line in requires) == [
        "httpx",
        "numpy",
    ]
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    assert project["version"] == service.__version__
