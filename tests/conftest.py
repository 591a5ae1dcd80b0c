"""Shared fixtures: settings without env files, the app's TestClient, the ascent pixels.

Also the test tiers (``tests/tiers.py``): every test that starts a process, and every test in
``tests/e2e``, is marked ``process`` here, and the schemathesis tests ``slow``, so that
``make check`` can deselect them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

from tests.tiers import starts_processes

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from service.config import Settings

# The app (FastAPI, the service) is imported by the fixtures that build it, not here: with
# pytest-xdist the controlling process loads this file too, and never runs a test.

ROOT = Path(__file__).resolve().parents[1]
ASCENT_PATH = ROOT / "service" / "data" / "ascent.png"
E2E = Path(__file__).resolve().parent / "e2e"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast-tier",
        action="store_true",
        help="do not import what the fast tier deselects anyway: tests/e2e, schemathesis modules",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``--fast-tier`` (make check), skip collecting the e2e directory and the modules that
    build schemathesis tests: all their tests are ``process`` or ``slow`` (see below), and
    importing them costs seconds per xdist worker. tests/test_tiers.py checks nothing else goes."""
    if not config.getoption("--fast-tier"):
        return None
    if collection_path == E2E or E2E in collection_path.parents:
        return True
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return "import schemathesis" in collection_path.read_text(encoding="utf-8") or None
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``process`` the e2e tests and the tests that start processes (see tests/tiers.py),
    and ``slow`` the schemathesis tests (generated requests to every operation)."""
    verdicts: dict[int, bool] = {}

    def cached(func: Any) -> bool:
        if id(func) not in verdicts:
            verdicts[id(func)] = starts_processes(func)
        return verdicts[id(func)]

    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        fixtures = item._fixtureinfo.name2fixturedefs.values()
        funcs = [item.function, *(defs[-1].func for defs in fixtures)]
        if E2E in item.path.parents or any(cached(func) for func in funcs):
            item.add_marker(pytest.mark.process)
        if type(item).__module__.startswith("schemathesis."):  # fuzzing: make fuzz, make test
            item.add_marker(pytest.mark.slow)


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: defaults plus ``overrides``, no ``.env`` file."""
    from service.config import Settings

    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def ascent() -> np.ndarray:
    """The ascent pixels decoded independently of the service (PIL directly)."""
    return np.asarray(Image.open(ASCENT_PATH))


def app_client(**overrides: Any) -> TestClient:
    """A TestClient (not yet entered) on an app built with ``make_settings(**overrides)``."""
    from fastapi.testclient import TestClient

    from service.main import create_app

    return TestClient(create_app(make_settings(**overrides)))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """A TestClient on an app built with default settings."""
    with app_client() as test_client:
        yield test_client


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """Build TestClients on apps with overridden settings; closed after the test."""
    clients: list[TestClient] = []

    def factory(**overrides: Any) -> TestClient:
        test_client = app_client(**overrides)
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    pillow_limit = Image.MAX_IMAGE_PIXELS
    yield factory
    for test_client in clients:
        test_client.__exit__(None, None, None)
    Image.MAX_IMAGE_PIXELS = pillow_limit  # create_app sets it process-wide


def png_bytes(pixels: np.ndarray, mode: str | None = None) -> bytes:
    """Encode ``pixels`` as PNG with PIL (test helper, independent of service.imaging)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes with PIL."""
    return np.asarray(Image.open(io.BytesIO(data)))
