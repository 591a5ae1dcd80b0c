"""The test tiers: ``make check`` (fast) leaves out every slow, process, e2e and network test."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.servers import ROOT, dead_pid, free_port, running_server
from tests.tiers import starts_processes


def _spawns() -> None:
    subprocess.run(["true"], check=True)


def _calls_a_spawner() -> None:
    _spawns()


def _pure() -> int:
    return 1 + 1


# Reached through a dict, so that the tests below do not themselves refer to a spawner.
SAMPLES = {"spawns": _spawns, "indirect": _calls_a_spawner, "pure": _pure}
HELPERS = {"running_server": running_server, "dead_pid": dead_pid, "free_port": free_port}


def test_a_function_that_starts_a_process_is_found_directly_and_through_helpers() -> None:
    assert starts_processes(SAMPLES["spawns"])
    assert starts_processes(SAMPLES["indirect"])
    assert starts_processes(HELPERS["running_server"])
    assert starts_processes(HELPERS["dead_pid"])


def test_a_function_that_starts_none_is_not_marked() -> None:
    assert not starts_processes(SAMPLES["pure"])
    assert not starts_processes(HELPERS["free_port"])


REPORT_PLUGIN = """
import json, os

def pytest_collection_finish(session):
    marks = {item.nodeid: sorted({m.name for m in item.iter_markers()}) for item in session.items}
    with open(os.environ["TIER_REPORT"], "w") as out:
        json.dump(marks, out)
"""


def _collect(tmp_path: Path, *args: str) -> dict[str, list[str]]:
    (tmp_path / "tier_report.py").write_text(textwrap.dedent(REPORT_PLUGIN))
    report = tmp_path / "report.json"
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "TIER_REPORT": str(report), "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "tier_report", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    marks: dict[str, list[str]] = json.loads(report.read_text())
    return marks


def test_the_fast_tier_collects_no_slow_process_e2e_or_network_test(tmp_path: Path) -> None:
    fast_expression = re.search(r"^FAST := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert fast_expression is not None
    everything = _collect(tmp_path)
    fast = _collect(tmp_path, "-m", fast_expression[1])
    # make check's --fast-tier skips importing modules; it must not lose a selected test
    assert _collect(tmp_path, "--fast-tier", "-m", fast_expression[1]) == fast
    assert "--fast-tier" in (ROOT / "Makefile").read_text()

    assert fast
    assert set(fast) < set(everything)
    for nodeid, marks in fast.items():
        assert not {"slow", "process", "network"} & set(marks), nodeid
        assert not nodeid.startswith("tests/e2e/"), nodeid
    left_out = set(everything) - set(fast)
    assert left_out == {
        nodeid
        for nodeid, marks in everything.items()
        if {"slow", "process", "network"} & set(marks)
    }
    # what the marks come from: the e2e directory, the server helpers (via a fixture), a
    # subprocess in the test's own body, an explicit `slow`, the network test
    e2e = [nodeid for nodeid in everything if nodeid.startswith("tests/e2e/")]
    assert e2e
    assert all("process" in everything[nodeid] for nodeid in e2e)
    assert "process" in everything["tests/test_client.py::test_client_kernels_lists_presets"]
    assert "process" in everything["tests/test_cli.py::test_cli_python_dash_m_service_subprocess"]
    killed = "tests/test_faults.py::test_workers_exit_when_the_supervisor_is_killed"
    assert "slow" in everything[killed]
    lock = "tests/test_deploy.py::test_lock_is_complete_and_installable_on_the_image_platform"
    assert "network" in everything[lock]
    assert "tests/api/test_errors.py::test_pipeline_10000_steps_is_422" in fast
