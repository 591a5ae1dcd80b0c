"""Driving a real Docker engine from the container tests: commands, waits, bounded load.

Every command runs with a timeout and every load loop has a fixed number of requests, each with
its own timeout, so a hang fails a test instead of stalling it. Traffic goes only to ports
published on 127.0.0.1 or to containers on this machine's bridges.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "imgfilter"  # docker-compose.yml's `name:`
#: Host ports the tests publish (the team's range for this work; never 8000).
PORT_BASE = int(os.environ.get("IMGFILTER_DOCKER_TEST_PORT", "18200"))
TIMINGS: list[tuple[str, float]] = []


def log(message: str) -> None:
    """A progress line on the terminal (``pytest -s``), with the wall-clock time."""
    print(f"[docker-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextlib.contextmanager
def timed(what: str) -> Iterator[None]:
    """Record how long ``what`` took in :data:`TIMINGS` (printed at the end of the session)."""
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS.append((what, time.monotonic() - start))
        log(f"{what}: {time.monotonic() - start:.1f} s")


def run(
    *args: str,
    timeout: float = 120,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command in the repository root; output captured as text."""
    done = subprocess.run(
        list(args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {done.returncode}\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """``docker ARGS``; its stdout, stripped."""
    return run("docker", *args, timeout=timeout, check=check).stdout.strip()


def compose(*args: str, env: Mapping[str, str] | None = None, timeout: float = 300) -> str:
    """``docker compose ARGS`` in the repository root (the project's compose file)."""
    return run("docker", "compose", *args, env=env, timeout=timeout).stdout.strip()


def logs(container: str) -> str:
    """The container's output, stdout and stderr together."""
    done = run("docker", "logs", container, check=False)
    return done.stdout + done.stderr


def inspect(container: str, template: str) -> str:
    return docker("inspect", "-f", template, container)


def health(container: str) -> str:
    return inspect(container, "{{if .State.Health}}{{.State.Health.Status}}{{end}}")


def wait_for(
    what: str, predicate: Callable[[], bool], deadline_s: float, interval_s: float = 0.2
) -> float:
    """Poll ``predicate`` until true; the seconds it took. Fails after ``deadline_s``."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        with contextlib.suppress(httpx.TransportError, AssertionError):
            if predicate():
                return time.monotonic() - start
        time.sleep(interval_s)
    raise AssertionError(f"{what}: not within {deadline_s} s")


def wait_healthy(container: str, deadline_s: float = 60) -> float:
    """Seconds until Docker reports ``container`` healthy; fails if it stops or turns unhealthy."""

    def healthy() -> bool:
        state = inspect(container, "{{.State.Status}}")
        status = health(container)
        assert state == "running", f"{container} is {state}:\n{logs(container)[-2000:]}"
        assert status != "unhealthy", f"{container} is unhealthy"
        return status == "healthy"

    return wait_for(f"{container} healthy", healthy, deadline_s)


def container_ip(container: str) -> str:
    """The container's address on its (first) bridge network."""
    ips = inspect(container, "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}").split()
    assert ips, f"{container} has no network address"
    return ips[0]


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among ``text``'s lines (compose prefixes each with ``name | ``)."""
    records = []
    for line in ANSI.sub("", text).splitlines():
        start = line.find("{")
        if start < 0:
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line[start:])
            if isinstance(record, dict):
                records.append(record)
    return records


@dataclass
class LoadResult:
    """Outcome of :func:`load`: status codes (0 = no HTTP answer) and latencies."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed(self) -> int:
        return self.total - self.statuses[200]


def load(
    url: str,
    requests: int,
    concurrency: int,
    *,
    json_body: Any = None,
    timeout_s: float = 30,
    started: threading.Event | None = None,
    id_prefix: str = "load",
) -> LoadResult:
    """``requests`` POSTs (or GETs without a body) from ``concurrency`` keep-alive clients.

    Each request has an ``X-Request-ID`` of ``<id_prefix>-<n>`` and a ``timeout_s`` timeout, so
    the whole call is bounded; ``started`` is set once a tenth of them are answered.
    """
    result = LoadResult()
    lock = threading.Lock()
    counter = iter(range(requests))

    def client_loop() -> None:
        with httpx.Client(timeout=timeout_s) as client:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                rid = f"{id_prefix}-{n}"
                begin = time.monotonic()
                try:
                    if json_body is None:
                        response = client.get(url, headers={"X-Request-ID": rid})
                    else:
                        response = client.post(url, json=json_body, headers={"X-Request-ID": rid})
                    status, error = response.status_code, None
                except httpx.HTTPError as exc:
                    status, error = 0, type(exc).__name__
                with lock:
                    result.statuses[status] += 1
                    result.latencies.append(time.monotonic() - begin)
                    result.request_ids.append(rid)
                    if error:
                        result.errors[error] += 1
                    if started is not None and result.total >= max(1, requests // 10):
                        started.set()

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client_loop) for _ in range(concurrency)]:
            future.result()
    return result


def upload(
    url: str, image: bytes, spec: Mapping[str, Any], timeout_s: float = 120
) -> httpx.Response:
    """One multipart request: ``image`` as the file, ``spec`` as the JSON text part."""
    files = {"image": ("image.png", image, "image/png")}
    return httpx.post(url, files=files, data={"spec": json.dumps(spec)}, timeout=timeout_s)


def parallel(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once in threads; their results in order (exceptions re-raised)."""
    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]
