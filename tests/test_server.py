"""``service.runtime.server`` and ``service.cli`` with real processes: TCP_NODELAY, SIGTERM drain,
readiness during shutdown, start-up failures, JSON logs."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service import cli
from service.runtime import server
from service.runtime.balancing import BOARD_ENV
from service.runtime.server import cap_malloc_arenas
from service.runtime.supervisor import bind_anchor
from service.runtime.worker import bind_socket
from tests.conftest import ROOT, make_settings
from tests.servers import established_connections, free_port, wait_healthy, worker_pids

TEST_APP = "tests.lifecycle_app:app"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_lines(self, *, strict: bool = True) -> list[dict[str, Any]]:
        """Every output line, parsed as JSON; ``strict``: fail on a line that is not JSON."""
        lines = [line for line in self.log_path.read_text().splitlines() if line.strip()]
        if not strict:
            lines = [line for line in lines if line.startswith("{")]
        return [json.loads(line) for line in lines]


def serve_command(app: str = TEST_APP, **settings: Any) -> list[str]:
    kwargs = ", ".join(f"{key}={value!r}" for key, value in settings.items())
    code = (
        "from service.config import Settings\n"
        "from service.runtime.server import serve\n"
        f"serve(Settings(_env_file=None, {kwargs}), app={app!r})\n"
    )
    return [sys.executable, "-c", code]


@contextlib.contextmanager
def serving(
    tmp_path: Path, *, workers: int, env: dict[str, str] | None = None, wait: bool = True, **kw: Any
) -> Iterator[Served]:
    """Run ``serve`` in a subprocess on a free port; stdout (JSON logs) to a file."""
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "IMGFILTER_LOG_LEVEL": "info",
        "TMPDIR": str(tmp_path),
        **(env or {}),
    }
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = serve_command(host="127.0.0.1", port=port, workers=workers, **kw)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    served = Served(process, f"http://127.0.0.1:{port}", log_path)
    try:
        if wait:
            wait_healthy(served.base_url, process)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()  # a graceful stop takes the workers with it
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_in_flight(base_url: str, at_least: int, deadline_s: float = 10.0) -> None:
    """Poll /metrics until ``imgfilter_http_requests_in_flight`` reaches ``at_least``."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for line in httpx.get(f"{base_url}/metrics", timeout=5).text.splitlines():
            if line.startswith("imgfilter_http_requests_in_flight ") and (
                float(line.split()[1]) >= at_least
            ):
                return
        time.sleep(0.05)
    raise TimeoutError("the slow request never showed up in flight")


# --- the socket ------------------------------------------------------------------------------
@pytest.mark.skipif(sys.platform != "linux", reason="accepted sockets inherit TCP_NODELAY on Linux")
def test_bind_socket_nodelay_reaches_accepted_connections() -> None:
    with bind_socket("127.0.0.1", 0) as listener:
        assert listener.proto == socket.IPPROTO_TCP
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert listener.get_inheritable()
        listener.listen()
        with socket.create_connection(listener.getsockname()[:2]) as _client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_bind_socket_refuses_port_in_use() -> None:
    with bind_socket("127.0.0.1", 0) as taken:
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            bind_socket("127.0.0.1", taken.getsockname()[1])


def test_bind_anchor_refuses_port_in_use_even_by_another_anchor() -> None:
    with bind_anchor("127.0.0.1", 0) as anchor:
        port = anchor.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            bind_anchor("127.0.0.1", port)  # a second server must not join the port silently
        with pytest.raises(OSError, match="in use"):
            bind_socket("127.0.0.1", port)


def test_cap_malloc_arenas_defaults_to_two_and_keeps_the_operators_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    cap_malloc_arenas()
    assert os.environ["MALLOC_ARENA_MAX"] == "2"  # inherited by the spawned workers
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    cap_malloc_arenas()
    assert os.environ["MALLOC_ARENA_MAX"] == "4"


@pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT balancing is Linux's")
def test_worker_sockets_bind_one_socket_per_worker_and_share_connections() -> None:
    with bind_anchor("127.0.0.1", 0) as anchor:
        address = anchor.getsockname()[:2]
        # what each worker's entry point (worker_main) binds: its own socket on the address
        listeners = [bind_socket(*address, reuse_port=True) for _ in range(2)]
        with contextlib.ExitStack() as stack:
            for listener in listeners:
                stack.enter_context(listener)
                assert listener.getsockname()[:2] == address
                assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
                assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                listener.listen(128)
                listener.setblocking(False)
            clients = [stack.enter_context(socket.create_connection(address)) for _ in range(64)]
            accepted = [0, 0]
            deadline = time.monotonic() + 5
            while sum(accepted) < len(clients) and time.monotonic() < deadline:
                for index, listener in enumerate(listeners):
                    with contextlib.suppress(BlockingIOError):
                        connection, _ = listener.accept()
                        connection.close()
                        accepted[index] += 1
        # the anchor does not listen, so every connection reached a worker's socket, and the
        # kernel spread them (all 64 on one socket has probability 2**-63)
        assert sum(accepted) == 64
        assert min(accepted) > 0, accepted


def test_keepalive_responses_skip_delayed_ack_on_asyncio_loop(tmp_path: Path) -> None:
    """uvicorn's own worker socket makes each keep-alive response wait ~40 ms here; ours not."""
    port = free_port()
    code = (
        "import uvicorn\n"
        "from service.runtime.worker import bind_socket\n"
        f"config = uvicorn.Config({TEST_APP!r}, loop='asyncio', log_level='warning')\n"
        f"uvicorn.Server(config).run(sockets=[bind_socket('127.0.0.1', {port})])\n"
    )
    env = {**os.environ, "IMGFILTER_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
        times = []
        with socket.create_connection(("127.0.0.1", port)) as conn:
            for _ in range(25):
                start = time.perf_counter()
                conn.sendall(request)
                data = b""
                while not data.endswith(b'{"status":"ok"}'):
                    chunk = conn.recv(65536)
                    assert chunk, "connection closed"
                    data += chunk
                times.append(time.perf_counter() - start)
        assert statistics.median(times) < 0.015, times
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- graceful shutdown -------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_in_flight_request_finish(tmp_path: Path, workers: int) -> None:
    with serving(tmp_path, workers=workers, graceful_timeout_s=10) as served:
        result: dict[str, Any] = {}

        def slow_call() -> None:
            response = httpx.get(f"{served.base_url}/slow?seconds=1.5", timeout=30)
            result["status"] = response.status_code
            result["body"] = response.json()

        caller = threading.Thread(target=slow_call)
        caller.start()
        wait_in_flight(served.base_url, at_least=2)  # the slow call plus this /metrics call
        sent = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        caller.join(timeout=30)
        returncode = served.process.wait(timeout=30)
        stopped_after = time.monotonic() - sent

    assert result == {"status": 200, "body": {"slept": 1.5}}
    assert returncode == 0
    assert stopped_after < 10
    lines = served.log_lines()
    slow = [line for line in lines if line.get("path") == "/slow"]
    assert [(line["status"], line["operation"]) for line in slow] == [(200, "slow")]
    listening = next(line for line in lines if line["msg"].startswith("listening on"))
    assert listening["workers"] == workers
    if workers > 1:  # the per-start metrics directory and load board are gone after the stop
        for key in ("metrics_dir", "load_board"):
            assert listening[key].startswith(str(tmp_path))
            assert not Path(listening[key]).exists()
        assert not list(tmp_path.glob("imgfilter-*"))
    else:
        assert listening["metrics_dir"] is None
        assert listening["load_board"] is None


@pytest.mark.slow
def test_sigterm_turns_readyz_503_during_shutdown_delay(tmp_path: Path) -> None:
    delay = 3.0
    env = {"IMGFILTER_SHUTDOWN_DELAY_S": str(delay)}
    with serving(tmp_path, workers=2, env=env, shutdown_delay_s=delay) as served:
        with httpx.Client(base_url=served.base_url, timeout=10) as client:
            assert client.get("/readyz").status_code == 200
        served.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        # The supervisor forwards SIGTERM to the workers within 0.5 s. New connections (a load
        # balancer's probes) still get answers during the delay, but readiness says no.
        first_503 = None
        while time.monotonic() - sent < delay - 1:
            with httpx.Client(base_url=served.base_url, timeout=10) as client:
                if client.get("/readyz").status_code == 503:
                    first_503 = time.monotonic() - sent
                    break
            time.sleep(0.05)
        with httpx.Client(base_url=served.base_url, timeout=10) as client:
            readyz = [client.get("/readyz").status_code for _ in range(4)]
            healthz = client.get("/healthz").status_code
        returncode = served.process.wait(timeout=30)
        stopped_after = time.monotonic() - sent
    assert first_503 is not None
    assert readyz == [503, 503, 503, 503]
    assert healthz == 200
    assert returncode == 0
    assert delay <= stopped_after < delay + 10
    lines = served.log_lines()
    assert any(line["msg"].startswith("shutdown signal: not ready") for line in lines)


# --- start-up failures -------------------------------------------------------------------------
def test_serve_exits_3_when_port_is_taken(tmp_path: Path) -> None:
    with bind_socket("127.0.0.1", 0) as taken:
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.run(
            serve_command(host="127.0.0.1", port=port, workers=1),
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
    assert process.returncode == 3
    assert b"cannot bind" in process.stdout


@pytest.mark.slow
def test_serve_exits_3_when_workers_crash_at_start(tmp_path: Path) -> None:
    # The workers' app reads IMGFILTER_* itself and refuses the value at import time.
    env = {"IMGFILTER_SHUTDOWN_DELAY_S": "-1"}
    with serving(tmp_path, workers=2, env=env, wait=False, shutdown_delay_s=0.0) as served:
        returncode = served.process.wait(timeout=60)
    assert returncode == 3
    # (Worker tracebacks go to stderr as plain text; the server's own lines are JSON.)
    assert any("keep dying" in line["msg"] for line in served.log_lines(strict=False))


def test_cli_serve_rejects_bad_settings_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--workers", "0", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "invalid settings" in err
    assert "workers" in err


def test_cli_without_subcommand_prints_help() -> None:
    assert cli.main([]) == 2


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("imgfilter ")


def test_python_m_service_is_the_cli() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert process.returncode == 0
    assert b"--workers" in process.stdout


# --- spreading keep-alive connections over workers (service.runtime.balancing) ----------------
@contextlib.contextmanager
def keepalive_clients(base_url: str, count: int) -> Iterator[list[Counter[str]]]:
    """``count`` threads, each on one keep-alive connection, posting Sobel until the block ends.

    Each thread's tally counts ``ok`` answers, ``closed`` ones (``Connection: close``, after
    which ``http.client`` reconnects) and ``failed`` requests.
    """
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    body = json.dumps({"preset": "sobel-y"}).encode()
    headers = {"Content-Type": "application/json"}
    tallies: list[Counter[str]] = [Counter() for _ in range(count)]
    stop = threading.Event()

    def run(tally: Counter[str]) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        while not stop.is_set():
            try:
                connection.request("POST", "/convolve", body, headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                tally["failed"] += 1
                connection.close()
                continue
            tally["ok" if response.status == 200 else "failed"] += 1
            tally["closed"] += response.getheader("connection") == "close"
        connection.close()

    threads = [threading.Thread(target=run, args=(tally,)) for tally in tallies]
    for thread in threads:
        thread.start()
    try:
        yield tallies
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


@pytest.mark.slow
def test_keepalive_connections_end_up_evenly_spread_over_workers(tmp_path: Path) -> None:
    """8 keep-alive clients on 2 workers: the kernel's hash alone leaves them 4/4 in only
    27 % of tries (binomial); with rebalancing every try ends 4/4, counted in /proc."""
    port_of = int
    with serving(tmp_path, workers=2, app="service.main:app", log_level="warning") as served:
        port = port_of(served.base_url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while len(workers := worker_pids(served.process.pid)) < 2:
            assert time.monotonic() < deadline, "two workers never came up"
            time.sleep(0.1)
        splits: list[list[int]] = []
        closed = answered = 0
        for _ in range(3):  # fresh connections each round: a new draw of the hash
            with keepalive_clients(served.base_url, 8) as tallies:
                time.sleep(1.5)
                samples = []
                for _ in range(5):
                    samples.append(sorted(established_connections(w, port) for w in workers))
                    time.sleep(0.1)
            assert sum(t["failed"] for t in tallies) == 0, tallies
            assert all(t["ok"] > 0 for t in tallies), tallies
            closed += sum(t["closed"] for t in tallies)
            answered += sum(t["ok"] for t in tallies)
            splits.append(max(samples, key=samples.count))
    assert splits == [[4, 4]] * 3, (splits, closed)
    # a few reconnections per hundred requests (3-4 % measured), not a storm (every answer)
    assert closed < answered / 10, (closed, answered)


def test_load_board_is_created_exported_and_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(server.tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.delenv(BOARD_ENV, raising=False)
    with server._load_board(make_settings(workers=3)) as path:
        assert path is not None
        assert path.is_relative_to(tmp_path)
        assert path.stat().st_size == 6 * 16  # twice the workers, 16 bytes a record
        assert os.environ[BOARD_ENV] == str(path)
    assert not path.exists()
    assert not list(tmp_path.iterdir())
    assert BOARD_ENV not in os.environ
    for settings in (make_settings(workers=1), make_settings(rebalance_connections=False)):
        with server._load_board(settings) as none:
            assert none is None

    def unwritable(**_: Any) -> str:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(server.tempfile, "mkdtemp", unwritable)
    with (
        caplog.at_level("WARNING", logger="imgfilter.server"),
        server._load_board(make_settings(workers=2)) as none,
    ):
        assert none is None
        assert BOARD_ENV not in os.environ
    assert "connection balancing off" in caplog.text


def test_die_with_parent_signals_at_once_when_the_parent_is_already_gone() -> None:
    code = (
        "import os, time\n"
        "from service.runtime.worker import die_with_parent\n"
        "assert die_with_parent(os.getppid())\n"  # the real parent: nothing happens
        "print('armed', flush=True)\n"
        "die_with_parent(os.getppid() + 1_000_000)\n"  # not our parent: as if reparented
        "time.sleep(10)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.stdout == "armed\n"
    assert done.returncode == -signal.SIGTERM


def test_worker_main_arms_the_death_signal_before_anything_else() -> None:
    """The worker's entry point sets PR_SET_PDEATHSIG first: started under a "supervisor" that
    is not its parent (as if reparented), it dies of SIGTERM at once, before it binds its
    socket (the port is taken, so binding first would exit 1 with EADDRINUSE)."""
    code = (
        "import multiprocessing, os, uvicorn\n"
        "from service.runtime.worker import bind_socket, worker_main\n"
        "taken = bind_socket('127.0.0.1', 0)\n"
        "taken.listen()\n"
        f"config = uvicorn.Config({TEST_APP!r}, log_level='warning')\n"
        "_, health = multiprocessing.Pipe()\n"
        "address = ('127.0.0.1', taken.getsockname()[1])\n"
        "not_the_parent = os.getpid() + 1_000_000\n"
        "worker = multiprocessing.get_context('spawn').Process(\n"
        "    target=worker_main, args=(config, *address, not_the_parent, health)\n"
        ")\n"
        "worker.start()\n"
        "worker.join(30)\n"
        "print(worker.exitcode)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == str(-signal.SIGTERM), done.stderr


def test_no_writable_temp_dir_exits_3_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A read-only root without a /tmp mount: one line saying what to mount, no traceback."""
    import tempfile

    from service.runtime.server import check_temp_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    monkeypatch.setattr("service.runtime.server.logger.hasHandlers", lambda: False)
    with pytest.raises(SystemExit) as exited:
        check_temp_dir()
    assert exited.value.code == 3
    assert "--tmpfs /tmp" in capsys.readouterr().err
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    check_temp_dir()  # a writable one passes
