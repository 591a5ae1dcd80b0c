"""The shared load board of the worker processes (service.runtime.balancing)."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.runtime.balancing import BOARD_ENV, LoadBoard, join_from_environment
from service.runtime.limiter import WorkLimiter
from tests.conftest import make_settings
from tests.servers import dead_pid

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def board_path(tmp_path: Path) -> Path:
    path = tmp_path / "load"
    LoadBoard.create(path, slots=3)
    return path


@pytest.fixture
def live_pids() -> Iterator[list[int]]:
    """PIDs of three live processes that are not this one (sleepers, killed afterwards)."""
    sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    try:
        yield [p.pid for p in sleepers]
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


def claim(path: Path, pid: int) -> LoadBoard:
    """``LoadBoard.join`` that must succeed."""
    board = LoadBoard.join(path, pid=pid)
    assert board is not None, f"no free record for {pid}"
    return board


def test_create_writes_a_private_empty_board_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "load"
    LoadBoard.create(path, slots=4)
    assert path.read_bytes() == bytes(4 * 16)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        LoadBoard.create(path, slots=4)
    with pytest.raises(ValueError, match="at least one slot"):
        LoadBoard.create(tmp_path / "other", slots=0)


def test_published_load_is_seen_by_siblings(board_path: Path, live_pids: list[int]) -> None:
    a = claim(board_path, live_pids[0])
    b = claim(board_path, live_pids[1])
    assert a.siblings() == [(live_pids[1], 0)]
    a.publish(5)
    b.publish(2)
    assert b.siblings() == [(live_pids[0], 5)]
    assert a.siblings() == [(live_pids[1], 2)]


def test_join_takes_distinct_records_and_none_when_all_live_ones_are_taken(
    board_path: Path, live_pids: list[int]
) -> None:
    for pid in live_pids:
        claim(board_path, pid)
    assert LoadBoard.join(board_path) is None
    again = claim(board_path, live_pids[1])  # its own record, taken again
    assert sorted(pid for pid, _ in again.siblings()) == sorted([live_pids[0], live_pids[2]])


def test_a_dead_workers_record_is_reused_and_its_load_reset(
    board_path: Path, live_pids: list[int]
) -> None:
    dead = claim(board_path, dead_pid())
    dead.publish(9)
    others = [claim(board_path, pid) for pid in live_pids[:2]]
    replacement = claim(board_path, live_pids[2])
    assert sorted(replacement.siblings()) == sorted((pid, 0) for pid in live_pids[:2])
    assert (live_pids[2], 0) in others[0].siblings()


@pytest.mark.parametrize(
    ("own", "sibling", "expected"),
    [(0, 0, False), (1, 0, False), (2, 0, True), (4, 3, False), (4, 2, True), (5, 3, True),
     (3, 4, False), (32, 31, False), (32, 30, True)],
)  # fmt: skip
def test_busier_means_at_least_two_more_than_a_live_sibling(
    board_path: Path, live_pids: list[int], own: int, sibling: int, expected: bool
) -> None:
    me = claim(board_path, live_pids[0])
    other = claim(board_path, live_pids[1])
    other.publish(sibling)
    assert me.busier_than_a_sibling(own) is expected


def test_busier_looks_for_any_sibling_not_the_average(
    board_path: Path, live_pids: list[int]
) -> None:
    me, busy, idle = (claim(board_path, pid) for pid in live_pids)
    busy.publish(20)
    idle.publish(3)
    assert me.busier_than_a_sibling(5)
    assert not me.busier_than_a_sibling(4)
    assert me.busier_than_a_sibling(4, margin=1)


def test_dead_and_absent_siblings_never_make_a_worker_busier(
    board_path: Path, live_pids: list[int]
) -> None:
    me = claim(board_path, live_pids[0])
    assert not me.busier_than_a_sibling(10)  # alone: empty records are no siblings
    claim(board_path, dead_pid())
    assert not me.busier_than_a_sibling(10)  # a killed worker's record, load 0
    claim(board_path, live_pids[1])
    assert me.busier_than_a_sibling(10)


def test_leave_frees_the_record_and_is_idempotent(board_path: Path, live_pids: list[int]) -> None:
    me = claim(board_path, live_pids[0])
    other = claim(board_path, live_pids[1])
    other.publish(7)
    other.leave()
    other.leave()
    assert me.siblings() == []
    assert not me.busier_than_a_sibling(100)
    me.leave()
    assert board_path.read_bytes() == bytes(3 * 16)


def test_join_rejects_a_file_that_is_not_a_board(tmp_path: Path) -> None:
    for content in (b"", b"x" * 17):
        path = tmp_path / f"bad{len(content)}"
        path.write_bytes(content)
        with pytest.raises(ValueError, match="not a load board"):
            LoadBoard.join(path)
    with pytest.raises(FileNotFoundError):
        LoadBoard.join(tmp_path / "missing")


def test_join_from_environment(
    board_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    live_pids: list[int],
) -> None:
    monkeypatch.delenv(BOARD_ENV, raising=False)
    assert join_from_environment() is None
    monkeypatch.setenv(BOARD_ENV, str(board_path))
    board = join_from_environment()
    assert board is not None
    assert board.pid == os.getpid()
    board.leave()
    for pid in live_pids:
        claim(board_path, pid)
    with caplog.at_level(logging.WARNING, logger="imgfilter.balancing"):
        assert join_from_environment() is None
        monkeypatch.setenv(BOARD_ENV, str(tmp_path / "missing"))
        assert join_from_environment() is None
    messages = [record.getMessage() for record in caplog.records]
    assert any("no free record" in message for message in messages)
    assert any("missing" in message for message in messages)


def test_processes_share_the_board_and_claim_distinct_records_at_once(tmp_path: Path) -> None:
    """Six real processes join at the same moment; each publishes its load; all see all."""
    path = tmp_path / "load"
    LoadBoard.create(path, slots=6)
    go = tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from service.runtime.balancing import LoadBoard
        while not Path({str(go)!r}).exists():
            time.sleep(0.001)
        board = LoadBoard.join(Path({str(path)!r}))
        board.publish(os.getpid() % 1000)
        sys.stdout.write("ready\\n"); sys.stdout.flush()
        sys.stdin.readline()
        print(sorted(board.siblings()))
        """
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    go.touch()
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    outputs = [child.communicate("\n", timeout=30)[0] for child in children]
    pids = {child.pid for child in children}
    for child, output in zip(children, outputs, strict=True):
        expected = sorted((pid, pid % 1000) for pid in pids - {child.pid})
        assert output.strip() == str(expected)


def test_work_limiter_publishes_its_admitted_requests(
    board_path: Path, live_pids: list[int]
) -> None:
    sibling = claim(board_path, live_pids[0])
    me = claim(board_path, live_pids[1])
    limiter = WorkLimiter(make_settings(max_concurrency=1, max_queue=4))

    def seen() -> int:
        return dict(sibling.siblings())[live_pids[1]]

    with limiter.admit():
        # attached mid-request: publishes what is admitted now
        limiter.watch_load(me.publish, me.busier_than_a_sibling)
        assert seen() == 1
        with limiter.admit(), limiter.admit():
            assert seen() == 3
            sibling.publish(1)
            assert limiter.should_release_connection()
        assert seen() == 1
        assert not limiter.should_release_connection()
    assert seen() == 0
    limiter.watch_load(None)
    with limiter.admit(), limiter.admit(), limiter.admit():
        assert seen() == 0
        assert not limiter.should_release_connection()
