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
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- bench:load:start -->\nold\n<!-- bench:load:end -->\nafter\n")
    raw = tmp_path / "load.json"
    done = _run(
        "bench.load",
        "--duration=0.5",
        "--connections=2",
        "--cases=healthz,pool",
        "--no-scaleout",
        "--python-client",
        f"--readme={readme}",
        f"--json={raw}",
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "OVERALL: PASS" in done.stdout
    text = readme.read_text()
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
