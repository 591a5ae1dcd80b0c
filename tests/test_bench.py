"""The benchmarks run end to end from a fresh clone (``make bench``, ``make loadbench``).

Tiny durations: these check that the tools work and report what they must, not speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT

pytest.importorskip("scipy")


def _run(module: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_loadbench_runs_and_writes_its_table(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("before\n<!-- bench:load:start -->\nold\n<!-- bench:load:end -->\nafter\n")
    raw = tmp_path / "load.json"
    done = _run(
        "bench.load",
        "--duration=0.5",
        "--connections=2",
        "--cases=healthz,pool",
        "--no-scaleout",
        "--python-client",
        f"--doc={doc}",
        f"--json={raw}",
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "OVERALL: PASS" in done.stdout
    text = doc.read_text()
    assert text.startswith("before\n<!-- bench:load:start -->\n")
    assert text.endswith("<!-- bench:load:end -->\nafter\n")
    assert "old" not in text
    assert "| /healthz | 2 |" in text
    assert "/pool 2x2 max" in text
    assert "zero errors (service, every case) | PASS" in text
    results = json.loads(raw.read_text())["results"]
    assert set(results) == {"healthz", "pool"}
    for case in results.values():
        ours = case["2"]["service"]
        assert ours["requests"] > 0
        assert ours["errors"] == 0


def test_rss_verdict_tells_a_high_water_mark_from_a_leak() -> None:
    from bench.load import rss_verdict

    # The run of 2026-11-27 09:33: worker 339 stepped from 92 to 139 MiB in the upload block
    # at 32 connections and stayed there; a line through it rises +62 MiB.
    step = [91.0, 91.0, 91.0, 91.8, 91.8, 91.8, 91.8, 89.0, 92.2, *[138.8] * 10, 138.0, 122.9]
    flat = [136.3, 136.3, 126.6, *[125.0] * 16, 125.0, 125.1]
    target, holds, measured = rss_verdict({339: step, 340: flat}, 2, 65_536)
    assert holds, measured
    assert "fitted rise +62.4" in measured  # reported; it judged this a leak before
    assert "stay within 32 MiB of the run's peak" in target
    assert "a leak over 1.00 KiB per request would show" in measured  # 32 MiB / 32,768

    def verdict(*series: list[float]) -> bool:
        return rss_verdict(dict(enumerate(series)), 2, 65_536)[1]

    steady = [100.0 + 2.0 * i for i in range(19)]  # leaks through the run, and on:
    assert not verdict(flat, [*steady, 136.0 + 17.0, 136.0 + 34.0])  # +34 over the peak
    assert verdict(flat, [*steady, 136.0 + 16.0, 136.0 + 32.0])  # +32: at the slack
    assert not verdict(step, [*flat[:-2], 125.0, 170.0])  # growth only in the repeat passes
    assert verdict([*flat[:-2], 168.0, 100.0])  # 125 -> 168 (+31.7 over 136.3): noise
    assert not rss_verdict({1: flat}, 2, 65_536, replaced=True)[1]


def test_python_client_reconnects_after_connection_close() -> None:
    """Like wrk: a response with ``Connection: close`` is not an error; the next request opens
    a new connection (the service answers so when rebalancing its workers)."""
    import asyncio

    from bench import load

    connections = 0

    async def main() -> load.Run:
        nonlocal connections

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, load.HOST, 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await load._python_load(port, load.Request("GET", "/"), 2, 0.3)

    run = asyncio.run(main())
    assert run.errors == 0, run.error_detail
    assert run.requests >= 4
    assert connections == run.requests


def test_vendored_yardstick_is_the_shared_original() -> None:
    """bench/vendor/naive_app.py (used by clones without ../shared) is an unmodified copy: its
    SHA-256 is the original's, recorded in bench/vendor/README.md. (The ascent it reads is the
    package's, pinned by tests/test_imaging.py.) Nothing here depends on where the clone is."""
    import hashlib

    vendored = ROOT / "bench" / "vendor" / "naive_app.py"
    digest = hashlib.sha256(vendored.read_bytes()).hexdigest()
    assert digest in (ROOT / "bench" / "vendor" / "README.md").read_text()


def test_large_bench_measures_peak_memory_and_the_yardstick(tmp_path: Path) -> None:
    # one fresh worker for a memory case, one for the throughput table; tiny images
    raw = tmp_path / "large.json"
    done = _run(
        "bench.large",
        "--memory-sides=300",
        "--speed-sides=320",
        "--modes=RGB",
        "--ops=pipeline",
        "--repeats=1",
        f"--json={raw}",
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "| pipeline | RGB 300x300 |" in done.stdout
    assert "| 320x320 |" in done.stdout
    result = json.loads(raw.read_text())
    (memory,) = result["memory"]
    assert memory["decoded_bytes"] == 300 * 300 * 3
    assert 0 < memory["peak_bytes"] < 200 * 2**20  # measured, and not absurd
    assert result["straightforward_s"] > 0
    assert set(result["threads_s"]) == {"1", "2"}
    assert "target 1" in " ".join(result["summary"])
