"""Start real server processes on 127.0.0.1 (tests, bench): free port, wait for /healthz, stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running server process and its base URL."""

    process: subprocess.Popen[bytes]
    base_url: str


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], deadline_s: float = 30.0) -> None:
    """Poll ``/healthz`` until it answers 200; fail if the process dies or time runs out."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} did not become healthy in {deadline_s} s")


@contextlib.contextmanager
def running_server(
    args: Sequence[str], *, port: int, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run ``python <args>`` (which must listen on ``port``) until the block ends."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process)
        yield Server(process, base_url)
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM to the process group of ``process`` (started with ``start_new_session``), even if
    the leader is gone, so no worker outlives it; SIGKILL after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def uvicorn_args(port: int, *extra: str) -> list[str]:
    """Arguments to run the app with uvicorn on ``port``."""
    return ["-m", "uvicorn", "service.main:app", "--host", "127.0.0.1", "--port", str(port), *extra]
