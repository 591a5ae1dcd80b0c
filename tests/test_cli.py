"""The image subcommands of ``imgfilter`` (service.cli): in-process, plus one real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import ndimage

from service.cli import main
from service.config import get_settings
from tests.conftest import ROOT, decode_png, png_bytes

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)


def _sobel_x(image: np.ndarray) -> np.ndarray:
    """Reference: scipy's correlate (reflect borders), clipped to 0..255 and truncated."""
    values = ndimage.correlate(image.astype(np.float64), SOBEL_X, mode="reflect")
    return np.clip(values, 0, 255).astype(np.uint8)


def _max_pool_2(image: np.ndarray) -> np.ndarray:
    rows, cols = image.shape[0] // 2, image.shape[1] // 2
    return image[: rows * 2, : cols * 2].reshape(rows, 2, cols, 2).max(axis=(1, 3))


@pytest.fixture
def small_png(tmp_path: Path) -> tuple[Path, np.ndarray]:
    pixels = np.random.default_rng(3).integers(0, 256, size=(10, 14), dtype=np.uint8)
    path = tmp_path / "small.png"
    path.write_bytes(png_bytes(pixels))
    return path, pixels


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("imgfilter: error: ")
    return err.removeprefix("imgfilter: error: ").strip()


def test_cli_convolve_ascent_preset_writes_png(tmp_path: Path, ascent: np.ndarray) -> None:
    out = tmp_path / "edges.png"
    assert main(["convolve", "ascent", "--preset", "sobel-x", "-o", str(out)]) == 0
    np.testing.assert_array_equal(decode_png(out.read_bytes()), _sobel_x(ascent))


def test_cli_convolve_kernel_rows_to_json_file(
    tmp_path: Path, small_png: tuple[Path, np.ndarray]
) -> None:
    path, pixels = small_png
    out = tmp_path / "edges.json"
    assert main(["convolve", str(path), "--kernel=-1,0,1;-2,0,2;-1,0,1", "-o", str(out)]) == 0
    document = json.loads(out.read_text())
    assert (document["width"], document["height"], document["dtype"]) == (14, 10, "uint8")
    np.testing.assert_array_equal(np.array(document["pixels"]), _sobel_x(pixels))


def test_cli_pool_file_writes_smaller_png(
    tmp_path: Path, small_png: tuple[Path, np.ndarray]
) -> None:
    path, pixels = small_png
    out = tmp_path / "small-pooled.png"
    assert main(["pool", str(path), "--size", "2", "-o", str(out)]) == 0
    np.testing.assert_array_equal(decode_png(out.read_bytes()), _max_pool_2(pixels))


@pytest.mark.parametrize("from_file", [False, True])
def test_cli_pipeline_equals_convolve_then_pool(
    tmp_path: Path, ascent: np.ndarray, from_file: bool
) -> None:
    steps = json.dumps([{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}])
    if from_file:
        (tmp_path / "steps.json").write_text(steps)
        steps = f"@{tmp_path / 'steps.json'}"
    out = tmp_path / "out.png"
    assert main(["pipeline", "ascent", "--steps", steps, "-o", str(out)]) == 0
    np.testing.assert_array_equal(decode_png(out.read_bytes()), _max_pool_2(_sobel_x(ascent)))


def test_cli_many_inputs_fill_directory_with_progress(
    tmp_path: Path, small_png: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    path, pixels = small_png
    other = tmp_path / "other.png"
    other.write_bytes(png_bytes(pixels.T.copy()))
    out_dir = tmp_path / "out"
    assert main(["pool", str(path), str(other), "ascent", "--size", "2", "-o", str(out_dir)]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["ascent.png", "other.png", "small.png"]
    np.testing.assert_array_equal(
        decode_png((out_dir / "other.png").read_bytes()), _max_pool_2(pixels.T)
    )
    err = capsys.readouterr().err
    assert "1/3" in err
    assert "3/3" in err


def test_cli_invalid_kernel_has_the_api_message(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    ragged = [[1, 2], [3]]
    code = main(["convolve", "ascent", "--kernel", json.dumps(ragged), "-o", "unused.png"])
    assert code == 2
    api = client.post("/convolve", json={"kernel": ragged})
    assert api.status_code == 422
    issue = api.json()["detail"][0]
    assert _error_line(capsys) == f"kernel: {issue['msg']}"
    assert not Path("unused.png").exists()


def test_cli_codelab_border_refused_like_api(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {"preset": "sobel-x", "mode": "codelab", "border": "wrap"}
    args = ["convolve", "ascent", "--preset", "sobel-x", "--mode", "codelab", "--border", "wrap"]
    assert main([*args, "-o", "unused.png"]) == 2
    msg = client.post("/convolve", json=spec).json()["detail"][0]["msg"]
    assert _error_line(capsys) == msg  # a model-level error has an empty location


def test_cli_undecodable_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    assert main(["pool", str(bad), "-o", str(tmp_path / "x.png")]) == 1
    assert _error_line(capsys).startswith(f"{bad}: the bytes are not an image")


def test_cli_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.png"
    assert main(["pool", str(missing), "-o", str(tmp_path / "x.png")]) == 1
    assert _error_line(capsys) == f"{missing}: No such file or directory"


def test_cli_several_inputs_without_dir_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pool", "ascent", "ascent"]) == 2
    assert "-o DIR" in _error_line(capsys)


def test_cli_pool_window_pair_and_stride(
    tmp_path: Path, small_png: tuple[Path, np.ndarray]
) -> None:
    path, pixels = small_png
    out = tmp_path / "pooled.json"
    args = ["pool", str(path), "--size", "2,3", "--stride", "1", "--method", "min", "-o", str(out)]
    assert main(args) == 0
    result = np.array(json.loads(out.read_text())["pixels"])
    windows = np.lib.stride_tricks.sliding_window_view(pixels, (2, 3))
    np.testing.assert_array_equal(result, windows.min(axis=(2, 3)))


def test_cli_bad_kernel_json_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convolve", "ascent", "--kernel", "[[1,", "-o", "x.png"]) == 2
    assert _error_line(capsys).startswith("--kernel is not valid JSON")


def test_cli_bad_steps_json_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "ascent", "--steps", "[{", "-o", "x.png"]) == 2
    assert _error_line(capsys).startswith("--steps is not valid JSON")


def test_cli_kernels_json_equals_api(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kernels", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == client.get("/kernels").json()
    assert main(["kernels"]) == 0
    assert "sobel-x" in capsys.readouterr().out
    assert main(["kernels", "no-such"]) == 1
    assert "unknown preset 'no-such'" in _error_line(capsys)


def test_cli_python_dash_m_service_subprocess(tmp_path: Path, ascent: np.ndarray) -> None:
    out = tmp_path / "edges.png"
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "service",
            "convolve",
            "ascent",
            "--preset",
            "sobel-x",
            "-o",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    np.testing.assert_array_equal(decode_png(out.read_bytes()), _sobel_x(ascent))


def test_cli_several_inputs_refuse_a_single_output_file(
    tmp_path: Path, small_png: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = small_png
    out = tmp_path / "single.png"
    assert main(["pool", str(path), "ascent", "-o", str(out)]) == 2
    assert not out.exists()  # no directory named single.png either
    assert "need a directory, not one file" in _error_line(capsys)


@pytest.mark.parametrize("size", ["0", "x", "1,2,3"])
def test_cli_pool_size_message_has_no_pydantic_internals(
    size: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pool", "ascent", f"--size={size}", "-o", "unused.png"]) == 2
    line = _error_line(capsys)
    assert line.startswith("size: must ")
    for internal in ("constrained", "tuple[", "Value error", "Input should"):
        assert internal not in line


def test_cli_help_says_what_runs_locally(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "run locally in this process" in text
    assert "over HTTP" not in text


def _read_until(fd: int, wanted: bytes, seconds: float) -> bytes:
    """Bytes from a pty until ``wanted`` appears or ``seconds`` pass."""
    import os
    import select
    import time

    seen = b""
    deadline = time.monotonic() + seconds
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


@pytest.mark.parametrize("tty", [True, False])
def test_serve_prints_the_urls_only_on_a_terminal(tty: bool) -> None:
    import os
    import pty
    import signal

    from tests.servers import free_port

    port = free_port()
    env = {**os.environ, "IMGFILTER_PORT": str(port), "IMGFILTER_WORKERS": "1"}
    main_fd, child_fd = pty.openpty() if tty else os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        stdout=child_fd,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    os.close(child_fd)
    try:
        seen = _read_until(main_fd, b"listening on", 60)
        seen += _read_until(main_fd, b"(API docs)", 2)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        os.close(main_fd)
    assert b"listening on" in seen  # the server started (and honoured IMGFILTER_PORT)
    line = f"open http://127.0.0.1:{port}/ (playground), http://127.0.0.1:{port}/docs".encode()
    assert (line in seen) is tty


def test_make_run_leaves_host_and_port_to_the_imgfilter_settings() -> None:
    import os
    import shutil

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "MAKEFLAGS")}

    def dry_run(*args: str) -> str:
        done = subprocess.run(
            [make, "-n", "run", *args],
            env={**env, "IMGFILTER_PORT": "18400"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return next(line for line in done.stdout.splitlines() if "service serve" in line)

    assert "--port" not in dry_run()
    assert "--host" not in dry_run()
    assert dry_run("PORT=9001", "HOST=0.0.0.0").endswith("serve --host 0.0.0.0 --port 9001")


def test_cli_raw_to_png_and_oversized_json_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["convolve", "ascent", "--preset", "laplacian", "--scale", "raw"]
    assert main([*args, "-o", str(tmp_path / "x.png")]) == 2
    assert "PNG cannot hold" in _error_line(capsys)
    monkeypatch.setenv("IMGFILTER_MAX_JSON_VALUES", "1000")
    get_settings.cache_clear()
    try:
        assert main([*args, "-o", str(tmp_path / "x.json")]) == 1
    finally:
        get_settings.cache_clear()
    assert "at most 1,000 values" in _error_line(capsys)
