"""Overload: the per-worker work limit (unit) and a real uvicorn process under a burst.

``WorkLimiter`` is driven directly with tiny settings and ``threading.Event`` gates, so each
test decides exactly when work starts and ends. The process test fires a bounded burst of
heavy requests at ``uvicorn service.main:app`` limited to one slot and a one-deep queue: the
excess must be shed at once as 503 + ``Retry-After``, never as another 5xx or a dropped
connection, and the server's memory must come back near where it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import anyio
import httpx
import numpy as np
import pytest

from service.api.errors import answer
from service.errors import OverloadedError, ProcessingTimeoutError
from service.runtime.limiter import WorkLimiter
from tests.conftest import make_settings
from tests.servers import Server, free_port, rss_kib, running_server, uvicorn_args


def _limiter(**overrides: float) -> WorkLimiter:
    return WorkLimiter(make_settings(**overrides))


def _answered(error: Exception) -> tuple[int, dict[str, str]]:
    """The status and the error's own headers, as the HTTP layer answers ``error``."""
    response = answer(error)
    own = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
    return response.status_code, own


def _gate() -> tuple[threading.Event, threading.Event]:
    """(started, release): work sets ``started`` and blocks until ``release`` is set."""
    return threading.Event(), threading.Event()


def _blocking(started: threading.Event, release: threading.Event) -> str:
    started.set()
    assert release.wait(10), "the test never released the work"
    return "done"


async def _wait_for(event: threading.Event, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not event.is_set():
        assert time.monotonic() < deadline, "work did not start"
        await anyio.sleep(0.005)


# --- WorkLimiter, in-process ----------------------------------------------------------------


def test_limiter_runs_at_most_max_concurrency_at_once() -> None:
    limiter = _limiter(max_concurrency=2, max_queue=10, queue_timeout_s=10)
    lock = threading.Lock()
    running = 0
    peak = 0

    def work(index: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return index

    async def main() -> list[int]:
        results: list[int] = []

        async def one(index: int) -> None:
            results.append(await limiter.run(work, index))

        async with anyio.create_task_group() as tg:
            for index in range(8):
                tg.start_soon(one, index)
        return results

    results = anyio.run(main)
    assert sorted(results) == list(range(8))
    assert peak == 2
    assert limiter.in_flight == 0


def test_limiter_full_queue_answers_503_at_once_with_retry_after() -> None:
    limiter = _limiter(max_concurrency=1, max_queue=1, queue_timeout_s=5)
    started, release = _gate()

    async def main() -> tuple[OverloadedError, float, list[str]]:
        results: list[str] = []

        async def run_one() -> None:
            results.append(await limiter.run(_blocking, started, release))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run_one)  # takes the slot
            await _wait_for(started)
            tg.start_soon(run_one)  # waits in the queue
            await anyio.sleep(0.05)
            begin = time.monotonic()
            with pytest.raises(OverloadedError) as caught:
                await limiter.run(_blocking, started, release)
            elapsed = time.monotonic() - begin
            release.set()
        return caught.value, elapsed, results

    error, elapsed, results = anyio.run(main)
    assert elapsed < 0.5  # refused at once, not after the 5 s queue timeout
    assert _answered(error) == (503, {"retry-after": "5"})
    assert "retry" in error.message
    assert results == ["done", "done"]  # the running and the queued work both finished


def test_limiter_idle_with_queue_of_one_accepts_two_simultaneous_callers() -> None:
    """Regression: a caller that got a free slot used to count as queued until it resumed,
    so a second simultaneous caller met a 'full' queue of one and was refused."""
    limiter = _limiter(max_concurrency=1, max_queue=1, queue_timeout_s=5)

    async def main() -> list[object]:
        results: list[object] = []

        async def one() -> None:
            results.append(await limiter.run(time.sleep, 0.05))

        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)
        return results

    assert anyio.run(main) == [None, None]


def test_limiter_queue_wait_over_timeout_is_503() -> None:
    limiter = _limiter(max_concurrency=1, max_queue=4, queue_timeout_s=0.2)
    started, release = _gate()

    async def main() -> float:
        async with anyio.create_task_group() as tg:
            tg.start_soon(limiter.run, _blocking, started, release)
            await _wait_for(started)
            begin = time.monotonic()
            with pytest.raises(OverloadedError) as caught:
                await limiter.run(_blocking, started, release)
            elapsed = time.monotonic() - begin
            assert _answered(caught.value)[1] == {"retry-after": "1"}  # ceil(0.2 s)
            release.set()
        return elapsed

    elapsed = anyio.run(main)
    assert 0.15 < elapsed < 2.0
    assert limiter.in_flight == 0


def test_limiter_processing_timeout_is_504_and_slot_held_until_thread_ends() -> None:
    limiter = _limiter(max_concurrency=1, max_queue=0, processing_timeout_s=0.2)
    started, release = _gate()

    async def main() -> None:
        begin = time.monotonic()
        with pytest.raises(ProcessingTimeoutError) as caught:
            await limiter.run(_blocking, started, release)
        assert _answered(caught.value) == (504, {})
        assert time.monotonic() - begin < 2.0
        # The abandoned thread still runs, so it still holds the only slot: no queue -> 503.
        assert limiter.in_flight == 1
        with pytest.raises(OverloadedError):
            await limiter.run(time.sleep, 0)
        release.set()
        deadline = time.monotonic() + 5
        while limiter.in_flight and time.monotonic() < deadline:
            await anyio.sleep(0.01)
        assert limiter.in_flight == 0
        assert await limiter.run(lambda: 42) == 42

    anyio.run(main)


def test_limiter_releases_slot_after_an_exception() -> None:
    limiter = _limiter(max_concurrency=1, max_queue=0)

    def boom() -> None:
        raise ValueError("bug")

    async def main() -> None:
        for _ in range(3):
            with pytest.raises(ValueError, match="bug"):
                await limiter.run(boom)
            assert limiter.in_flight == 0
        assert await limiter.run(sum, [1, 2, 3]) == 6

    anyio.run(main)


def test_limiter_releases_slot_when_the_caller_is_cancelled() -> None:
    """A client that disconnects mid-work cancels the request; the slot returns when the
    abandoned thread ends, and the queue counter does not leak."""
    limiter = _limiter(max_concurrency=1, max_queue=1, queue_timeout_s=5)
    started, release = _gate()

    async def main() -> None:
        with anyio.move_on_after(0.2):
            await limiter.run(_blocking, started, release)
        assert limiter.in_flight == 1
        with anyio.move_on_after(0.1):  # a queued caller cancelled while waiting
            await limiter.run(time.sleep, 0)
        release.set()
        deadline = time.monotonic() + 5
        while limiter.in_flight and time.monotonic() < deadline:
            await anyio.sleep(0.01)
        assert limiter.in_flight == 0
        # queue counter back to 0: with the slot free, two callers (slot + queue) both run
        async with anyio.create_task_group() as tg:
            tg.start_soon(limiter.run, time.sleep, 0.05)
            tg.start_soon(limiter.run, time.sleep, 0.05)

    anyio.run(main)


@pytest.mark.parametrize(("max_concurrency", "max_queue"), [(1, 0), (1, 2), (3, 1)])
def test_limiter_admits_concurrency_plus_queue_then_503(
    max_concurrency: int, max_queue: int
) -> None:
    limiter = _limiter(max_concurrency=max_concurrency, max_queue=max_queue)
    with contextlib.ExitStack() as held:
        for _ in range(max_concurrency + max_queue):
            held.enter_context(limiter.admit())
        with pytest.raises(OverloadedError) as caught, limiter.admit():
            pass
        status, headers = _answered(caught.value)
        assert status == 503
        assert "retry-after" in headers
    with limiter.admit():  # every admission was handed back
        pass


@pytest.mark.parametrize(("queue_timeout_s", "retry_after"), [(0.2, "1"), (2.0, "2"), (2.5, "3")])
def test_limiter_retry_after_is_queue_timeout_rounded_up(
    queue_timeout_s: float, retry_after: str
) -> None:
    """Retry-After takes whole seconds (RFC 9110): the queue wait rounded up, at least 1."""
    limiter = _limiter(max_concurrency=1, max_queue=0, queue_timeout_s=queue_timeout_s)
    with limiter.admit(), pytest.raises(OverloadedError) as caught, limiter.admit():
        pass
    assert _answered(caught.value)[1] == {"retry-after": retry_after}


def test_limiter_capacity_from_settings() -> None:
    limiter = _limiter(max_concurrency=3, max_queue=0)
    gates = [_gate() for _ in range(3)]

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for started, release in gates:
                tg.start_soon(limiter.run, _blocking, started, release)
            for started, _ in gates:
                await _wait_for(started)
            assert limiter.in_flight == 3
            with pytest.raises(OverloadedError):
                await limiter.run(time.sleep, 0)
            for _, release in gates:
                release.set()

    anyio.run(main)
    assert limiter.in_flight == 0


# --- a real uvicorn process under a burst -----------------------------------------------------

BURST = 40
KERNEL = np.random.default_rng(31).normal(size=(31, 31)).round(4).tolist()


def _rss(pid: int) -> int:
    kib = rss_kib(pid)
    assert kib is not None, f"no VmRSS for {pid}"
    return kib


async def _burst(base_url: str, count: int) -> tuple[list[httpx.Response], list[Exception]]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def one() -> httpx.Response:
            return await client.post("/convolve", json={"kernel": KERNEL, "border": "reflect"})

        outcomes = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    responses = [item for item in outcomes if isinstance(item, httpx.Response)]
    errors = [item for item in outcomes if isinstance(item, Exception)]
    return responses, errors


@pytest.fixture(scope="module")
def limited_server() -> Iterator[Server]:
    """``uvicorn service.main:app``: one worker, one work slot, a queue of one."""
    port = free_port()
    env = {
        "IMGFILTER_MAX_CONCURRENCY": "1",
        "IMGFILTER_MAX_QUEUE": "1",
        "IMGFILTER_WORKERS": "1",
        "IMGFILTER_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
        "IMGFILTER_LOG_LEVEL": "warning",
    }
    with running_server(uvicorn_args(port, "--workers", "1"), port=port, env=env) as server:
        yield server


@pytest.mark.slow
def test_uvicorn_sheds_a_burst_with_503_and_recovers(limited_server: Server) -> None:
    server = limited_server
    pid = server.process.pid
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for _ in range(3):  # warm up: imports, ascent, allocator pools
            assert client.post("/convolve", json={"kernel": KERNEL}).status_code == 200
    baseline = _rss(pid)

    begin = time.monotonic()
    responses, errors = asyncio.run(_burst(server.base_url, BURST))
    elapsed = time.monotonic() - begin

    assert errors == [], f"dropped connections: {errors[:3]}"
    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] >= 1
    assert statuses[503] >= 1, f"nothing was shed: {statuses} in {elapsed:.1f} s"
    for response in responses:
        if response.status_code == 503:
            assert response.headers["retry-after"] == "2"
            assert "retry" in response.json()["detail"]
        else:
            assert response.headers["content-type"] == "image/png"

    # after the burst: the server answers, and its memory returns near the baseline
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        assert client.get("/healthz").status_code == 200
        assert client.post("/convolve", json={"kernel": KERNEL}).status_code == 200
    time.sleep(0.5)
    grown_mib = (_rss(pid) - baseline) / 1024
    assert grown_mib < 64, f"RSS {baseline / 1024:.0f} MiB grew by {grown_mib:.0f} MiB"


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_uvicorn_refuses_oversized_body_without_dropping_the_client(
    limited_server: Server, framing: str
) -> None:
    """Over TCP a 6 MiB body against a 2 MiB limit gets its 413 (no reset), and the server,
    connection pool and all, keeps answering."""
    body = b'{"image": {"data": "' + b"A" * (6 * 1024 * 1024) + b'"}}'
    content: bytes | Iterator[bytes] = body
    if framing == "chunked":
        content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
    with httpx.Client(base_url=limited_server.base_url, timeout=30) as client:
        response = client.post(
            "/pool", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert "2097152 bytes" in response.json()["detail"]
        assert client.get("/healthz").status_code == 200


@pytest.mark.slow
def test_uvicorn_times_out_a_slow_body_and_frees_the_admission_it_held() -> None:
    """A client that sends headers and 10 of 100 body bytes holds the worker's only admission
    (others get 503) until the body timeout answers it 408 and closes; then work resumes."""
    port = free_port()
    env = {
        "IMGFILTER_MAX_CONCURRENCY": "1",
        "IMGFILTER_MAX_QUEUE": "0",
        "IMGFILTER_BODY_TIMEOUT_S": "1.0",
        "IMGFILTER_LOG_LEVEL": "warning",
    }
    with (
        running_server(uvicorn_args(port, "--workers", "1"), port=port, env=env) as server,
        socket.create_connection(("127.0.0.1", port), timeout=10) as slow,
    ):
        slow.sendall(
            b"POST /pool HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"size": 2'
        )
        sent = time.monotonic()
        time.sleep(0.1)  # the server reads the headers and admits the request
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            deadline = sent + 0.8
            busy = [client.post("/pool", json={"size": 2}).status_code]
            while time.monotonic() < deadline:
                busy.append(client.post("/pool", json={"size": 2}).status_code)
                time.sleep(0.05)
            reply = b""
            while chunk := slow.recv(65536):  # until the server closes the connection
                reply += chunk
            waited = time.monotonic() - sent
            after = client.post("/pool", json={"size": 2}).status_code
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), reply[:200]
    assert b"connection: close" in head.lower()
    assert json.loads(body)["detail"].startswith("the request body did not arrive within 1 s")
    assert 1.0 <= waited < 5
    assert set(busy) == {503}, busy
    assert after == 200
