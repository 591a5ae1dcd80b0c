"""Faults: a worker process killed mid-load is replaced, and later requests succeed.

The server runs with two worker processes under a supervisor, started both ways the project
starts it: ``uvicorn --workers 2`` and ``python -m service serve --workers 2`` (uvicorn's
``Multiprocess`` with the project's bookkeeping). Workers are found as the supervisor's
children in ``/proc`` whose command line is multiprocessing's ``spawn_main`` (the resource
tracker, also a child, is not a worker). SIGTERM draining is tested with the deploy code.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from service.runtime.balancing import BOARD_ENV
from tests.servers import (
    Server,
    free_port,
    running,
    running_server,
    uvicorn_args,
    worker_pids,
)

WORKERS = 2
LIGHT = {"image": {"pixels": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}, "preset": "box-3"}
HEAVY = {"preset": "gaussian-5"}  # on ascent: a few ms of real work per request


def _wait_workers(supervisor: int, *, exclude: set[int], deadline_s: float = 30.0) -> set[int]:
    """Wait until ``WORKERS`` workers run, none of them in ``exclude``; return their PIDs."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        workers = worker_pids(supervisor)
        if len(workers) == WORKERS and not workers & exclude:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"workers now {worker_pids(supervisor)}, excluded {exclude}")


def _wait_all_answer(base_url: str, deadline_s: float = 30.0) -> None:
    """Wait until a burst of fresh connections all succeed (every worker accepts again)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        statuses = asyncio.run(_load(base_url, 20, fresh_connections=True))
        if statuses == Counter({200: 20}):
            return
        time.sleep(0.2)
    raise AssertionError("the server did not recover")


async def _load(base_url: str, count: int, *, fresh_connections: bool = False) -> Counter[object]:
    """``count`` requests, 8 at a time; a Counter of status codes and transport errors."""
    outcomes: Counter[object] = Counter()
    semaphore = asyncio.Semaphore(8)
    limits = httpx.Limits(max_keepalive_connections=0 if fresh_connections else 8)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:

        async def one(index: int) -> None:
            async with semaphore:
                try:
                    response = await client.post("/convolve", json=HEAVY if index % 2 else LIGHT)
                    outcomes[response.status_code] += 1
                except httpx.TransportError as exc:  # the message too: refused, reset, ...
                    outcomes[f"{type(exc).__name__}: {exc}"[:120]] += 1

        await asyncio.gather(*(one(index) for index in range(count)))
    return outcomes


def _kill_mid_load(server: Server) -> tuple[Counter[object], int, set[int]]:
    """Run load, SIGKILL one worker while it runs; returns (outcomes, victim, new workers)."""
    supervisor = server.process.pid
    before = _wait_workers(supervisor, exclude=set())
    victim = min(before)

    async def scenario() -> Counter[object]:
        load = asyncio.create_task(_load(server.base_url, 200))
        await asyncio.sleep(0.3)
        assert not load.done(), "the load finished before the kill: make it longer"
        os.kill(victim, signal.SIGKILL)
        return await load

    outcomes = asyncio.run(scenario())
    after = _wait_workers(supervisor, exclude={victim})
    return outcomes, victim, after


def _board_owners(worker: int) -> set[int]:
    """Live PIDs holding a record of the load board named in a worker's environment."""
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    prefix = f"{BOARD_ENV}=".encode()
    path = next(item.removeprefix(prefix) for item in environ if item.startswith(prefix))
    records = memoryview(Path(path.decode()).read_bytes()).cast("q")
    owners = {records[i] for i in range(0, len(records), 2) if records[i]}
    return {pid for pid in owners if running(pid)}


def _wait_board_owners(workers: set[int], deadline_s: float = 30.0) -> None:
    """Wait until the live owners of the load board are exactly ``workers`` (all started)."""
    deadline = time.monotonic() + deadline_s
    while (owners := _board_owners(min(workers))) != workers:
        assert time.monotonic() < deadline, f"board owners {owners}, workers {workers}"
        time.sleep(0.1)


LAUNCHERS = {
    "uvicorn": lambda port: uvicorn_args(port, "--workers", str(WORKERS)),
    "imgfilter-serve": lambda port: [
        "-m",
        "service",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_killed_worker_is_replaced_and_service_recovers(launcher: str) -> None:
    port = free_port()
    env = {"IMGFILTER_LOG_LEVEL": "warning", "IMGFILTER_WORKERS": str(WORKERS)}
    with running_server(LAUNCHERS[launcher](port), port=port, env=env) as server:
        supervisor = server.process.pid
        outcomes, victim, after = _kill_mid_load(server)

        # Only the requests in flight on the killed worker may fail, and only as transport
        # errors (their connection died with it); everything else succeeded, nothing was a 5xx.
        assert outcomes[200] >= 150, outcomes
        failures = {key: n for key, n in outcomes.items() if key != 200}
        assert all(isinstance(key, str) for key in failures), outcomes
        assert sum(failures.values()) <= 16, outcomes

        assert victim not in after
        assert server.process.poll() is None, "the supervisor itself must survive"
        _wait_all_answer(server.base_url)
        if launcher == "imgfilter-serve":  # the replacement takes a record of the load board
            _wait_board_owners(after)

        # and once more: the replacement can itself be replaced
        second_victim = min(after)
        os.kill(second_victim, signal.SIGKILL)
        _wait_workers(supervisor, exclude={victim, second_victim})
        _wait_all_answer(server.base_url)
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 200


@pytest.mark.slow
def test_workers_exit_when_the_supervisor_is_killed() -> None:
    """SIGKILL (the OOM killer, kill -9) gives the supervisor no chance to stop its workers;
    the kernel then sends them SIGTERM (PR_SET_PDEATHSIG) and none is left serving."""
    port = free_port()
    env = {"IMGFILTER_LOG_LEVEL": "warning", "IMGFILTER_WORKERS": str(WORKERS)}
    with running_server(LAUNCHERS["imgfilter-serve"](port), port=port, env=env) as server:
        workers = _wait_workers(server.process.pid, exclude=set())
        _wait_board_owners(workers)  # both are serving
        server.process.kill()
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while alive := {pid for pid in workers if running(pid)}:
            assert time.monotonic() < deadline, f"workers {alive} outlived their supervisor"
            time.sleep(0.1)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
