"""Generate clients from the committed ``openapi/openapi.json`` with the pinned generators."""

from __future__ import annotations

import hashlib
import importlib
import io
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from tests.conftest import ROOT

DOCUMENT = ROOT / "openapi" / "openapi.json"
BIN = Path(sys.executable).parent
NODE_TOOLS = Path(__file__).parent
KEY = "client-test-key-0123456789"


def upload_png() -> bytes:
    """A small 8x6 grayscale PNG to upload."""
    buffer = io.BytesIO()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8) * 5).save(buffer, "PNG")
    return buffer.getvalue()


def node_tools() -> Path:
    """``tests/clients/node_modules`` as ``package-lock.json`` pins it (``npm ci`` when stale).

    The install is cached: a stamp file holds the lock file's hash. Skips without npm.
    """
    import pytest

    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (node and npm: apt-get install nodejs npm)")
    lock = hashlib.sha256((NODE_TOOLS / "package-lock.json").read_bytes()).hexdigest()
    modules = NODE_TOOLS / "node_modules"
    stamp = modules / ".installed-lock"
    if not stamp.exists() or stamp.read_text() != lock:
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=NODE_TOOLS, check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        stamp.write_text(lock)
    return modules / ".bin"


def openapi_python_client(target: Path, package: str = "imgfilter_client") -> ModuleType:
    """openapi-python-client, default settings; returns the imported package."""
    out = target / package
    subprocess.run(
        [BIN / "openapi-python-client", "generate", "--path", DOCUMENT, "--output-path", out,
         "--meta", "none"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return _import(target, package)


def openapi_generator_python(target: Path, package: str = "imgfilter_ogen") -> ModuleType:
    """openapi-generator ``-g python`` (the PyPI wheel's jar; needs ``java``)."""
    out = target / "ogen"
    subprocess.run(
        [BIN / "openapi-generator-cli", "generate", "-i", DOCUMENT, "-g", "python", "-o", out,
         "--package-name", package],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return _import(out, package)


def has_java() -> bool:
    return shutil.which("java") is not None


def _import(path: Path, package: str) -> ModuleType:
    sys.path.insert(0, str(path))
    importlib.invalidate_caches()
    return importlib.import_module(package)
