"""Generate clients from the committed ``openapi/openapi.json`` with the pinned generators."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.conftest import ROOT

DOCUMENT = ROOT / "openapi" / "openapi.json"
BIN = Path(sys.executable).parent


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
