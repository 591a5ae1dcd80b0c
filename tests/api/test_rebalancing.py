"""``Connection: close`` when this worker is busier than a sibling (service.runtime.balancing).

The app joins the load board named in ``IMGFILTER_LOAD_BOARD`` at lifespan startup. A sibling
worker is simulated by a record held for another live process with a chosen load; three
requests are then sent at once to an app with one processing slot, so when the first is
answered this worker has 3 requests admitted, then 2, then 1.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from service.main import create_app
from service.runtime.balancing import BOARD_ENV, LoadBoard
from tests.conftest import make_settings
from tests.servers import dead_pid

SOBEL = {"preset": "sobel-x"}
RELEASES = "imgfilter_connection_releases_total"


@pytest.fixture
def sibling_pid() -> Iterator[int]:
    """A live process standing in for the sibling worker."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        yield sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.fixture
def board_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "load"
    LoadBoard.create(path, slots=4)
    monkeypatch.setenv(BOARD_ENV, str(path))
    return path


async def _three_at_once(app: FastAPI, path: str = "/convolve") -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return list(await asyncio.gather(*(client.post(path, json=SOBEL) for _ in range(3))))


def _closes(app: FastAPI, path: str = "/convolve") -> list[bool]:
    with TestClient(app):  # runs the lifespan: joins and leaves the board
        responses = asyncio.run(_three_at_once(app, path))
    assert [r.status_code for r in responses] == [200, 200, 200]
    return [r.headers.get("connection") == "close" for r in responses]


@pytest.mark.parametrize(("sibling_load", "expected"), [(0, 2), (1, 1), (2, 0), (5, 0)])
def test_answers_close_while_at_least_two_busier_than_a_sibling(
    board_path: Path, sibling_pid: int, sibling_load: int, expected: int
) -> None:
    sibling = LoadBoard.join(board_path, pid=sibling_pid)
    assert sibling is not None
    sibling.publish(sibling_load)
    before = REGISTRY.get_sample_value(RELEASES) or 0.0
    closes = _closes(create_app(make_settings(max_concurrency=1)))
    assert sum(closes) == expected
    assert not closes[-1]  # the last answer leaves this worker with 1 admitted: never busier
    assert (REGISTRY.get_sample_value(RELEASES) or 0.0) - before == expected


@pytest.mark.parametrize("path", ["/pool", "/pipeline"])
def test_every_processing_route_rebalances(board_path: Path, sibling_pid: int, path: str) -> None:
    assert LoadBoard.join(board_path, pid=sibling_pid) is not None
    spec = {"/pool": {"size": 2}, "/pipeline": {"steps": [{"op": "pool", "size": 2}]}}[path]
    app = create_app(make_settings(max_concurrency=1))

    async def three() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return list(await asyncio.gather(*(client.post(path, json=spec) for _ in range(3))))

    with TestClient(app):
        responses = asyncio.run(three())
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert sum(r.headers.get("connection") == "close" for r in responses) == 2


def test_no_close_when_the_sibling_is_dead(board_path: Path) -> None:
    assert LoadBoard.join(board_path, pid=dead_pid()) is not None
    assert _closes(create_app(make_settings(max_concurrency=1))) == [False, False, False]


def test_no_close_when_turned_off(board_path: Path, sibling_pid: int) -> None:
    assert LoadBoard.join(board_path, pid=sibling_pid) is not None
    app = create_app(make_settings(max_concurrency=1, rebalance_connections=False))
    assert _closes(app) == [False, False, False]


def test_lifespan_takes_a_record_and_frees_it(board_path: Path, sibling_pid: int) -> None:
    sibling = LoadBoard.join(board_path, pid=sibling_pid)
    assert sibling is not None
    app = create_app(make_settings())
    with TestClient(app) as client:
        assert client.post("/convolve", json=SOBEL).status_code == 200
        (worker,) = sibling.siblings()
        assert worker[1] == 0  # its load, published back to 0 after the request
        assert app.state.load_board is not None
    assert sibling.siblings() == []
    assert app.state.load_board is None


def test_without_a_board_nothing_is_joined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BOARD_ENV, raising=False)
    app = create_app(make_settings(max_concurrency=1))
    assert _closes(app) == [False, False, False]
