"""The worker's one lifespan (service.runtime.lifecycle.worker_lifespan), in process.

Signals with real processes: tests/test_server.py (SIGTERM, readiness during the delay).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.main import create_app
from service.runtime import lifecycle
from service.runtime.balancing import BOARD_ENV, LoadBoard
from tests.conftest import make_settings


@pytest.fixture
def draining() -> Iterator[lifecycle.ReadinessState]:
    """The process-wide readiness flag, set to draining for the test and reset after."""
    lifecycle.STATE.mark_draining()
    yield lifecycle.STATE
    lifecycle.STATE.mark_ready()


@pytest.mark.usefixtures("draining")
def test_startup_marks_ready_without_touching_signals_off_main_thread() -> None:
    app = FastAPI(lifespan=lifecycle.worker_lifespan(make_settings()))
    before = signal.getsignal(signal.SIGTERM)
    with TestClient(app):  # the lifespan runs in the portal thread
        assert lifecycle.is_ready()
        assert app.state.load_board is None  # no limiter: no board
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.usefixtures("draining")
def test_the_app_has_one_lifespan_doing_readiness_and_the_board(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "board"
    LoadBoard.create(path, slots=2)
    monkeypatch.setenv(BOARD_ENV, str(path))
    app = create_app(make_settings())
    with TestClient(app) as client:
        assert lifecycle.is_ready()
        board = app.state.load_board
        assert board is not None
        assert client.get("/readyz").status_code == 200
        limiter = app.state.work_limiter
        with limiter.admit(), limiter.admit():
            assert board._view[board._load_at] == 2  # the limiter's load hook feeds the board
    assert app.state.load_board is None
    assert board._map.closed  # left at shutdown
    with limiter.admit():
        pass  # detached: nothing published to the closed board
