"""The image itself under ``docker run``: healthy, serving, stopping gracefully, read-only root.

Each container is published on 127.0.0.1 only and removed after its test.
"""

from __future__ import annotations

import io
import json
import threading
import time

import httpx
import numpy as np
from PIL import Image

from tests.docker.harness import (
    PORT_BASE,
    ROOT,
    docker,
    inspect,
    json_lines,
    log,
    logs,
    timed,
    upload,
    wait_for,
    wait_healthy,
)

LABEL = ["--label", "org.imgfilter.test=1"]
SOBEL = {"preset": "sobel-x"}
READ_ONLY = ("--read-only", "--tmpfs", "/tmp")  # as documented: read-only root, tmpfs /tmp


def start(image: str, name: str, containers: list[str], *args: str, port: int | None = None) -> str:
    """``docker run -d`` the image (read-only root, tmpfs /tmp unless ``args`` say otherwise)."""
    docker("rm", "-f", name, check=False)
    publish = ["-p", f"127.0.0.1:{port}:8000"] if port else []
    containers.append(name)
    docker("run", "-d", "--name", name, *LABEL, *publish, *args, image)
    return name


def png(width: int, height: int, channels: int = 3, seed: int = 0) -> bytes:
    """A smooth test image (compresses well) with a little noise, as PNG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 127 + 100 * np.sin(x / 37.0) * np.cos(y / 23.0)
    planes = [base + 10 * c + rng.normal(0, 3, base.shape) for c in range(channels)]
    pixels = np.clip(np.dstack(planes), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def start_record(name: str) -> dict[str, object]:
    """The server's start-up log record (the one that tells the worker count)."""
    records = [r for r in json_lines(logs(name)) if "workers" in r]
    assert records, logs(name)
    return records[0]


def test_image_runs_healthy_as_non_root_and_serves(image: str, containers: list[str]) -> None:
    port = PORT_BASE + 1
    name = start(image, "imgfilter-test-run", containers, *READ_ONLY, port=port)
    with timed("run -> healthy"):
        took = wait_healthy(name, deadline_s=30)
    # The first check runs one interval (3 s) after the start; 15 s before the fix.
    assert took < 15, f"healthy only after {took:.1f} s"
    assert docker("exec", name, "id", "-u") == "10001"
    assert inspect(name, "{{.Config.User}}") == "10001:10001"
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    response = httpx.post(f"{base}/convolve", json=SOBEL, timeout=30)
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (512, 512)
    spec = {"steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}]}
    response = upload(f"{base}/pipeline", png(300, 200), spec)
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (150, 100)
    bad = httpx.post(f"{base}/convolve", json={"preset": "nope"}, timeout=10)
    assert bad.status_code == 422
    assert "detail" in bad.json()
    assert "imgfilter_http_requests_total" in httpx.get(f"{base}/metrics", timeout=10).text
    assert httpx.get(f"{base}/docs", timeout=10).status_code == 200
    # Read-only root: nothing outside /tmp can be written.
    denied = docker("exec", name, "sh", "-c", "touch /x 2>&1 || true")
    assert "Read-only file system" in denied


def test_host_and_port_come_from_the_environment(image: str, containers: list[str]) -> None:
    """IMGFILTER_PORT moves the server and the healthcheck follows it (finding 2)."""
    port = PORT_BASE + 2
    name = start(
        image,
        "imgfilter-test-port",
        containers,
        *READ_ONLY,
        "-e",
        "IMGFILTER_PORT=9000",
        "-e",
        "IMGFILTER_WORKERS=1",
        "-p",
        f"127.0.0.1:{port}:9000",
    )
    wait_healthy(name, deadline_s=30)
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    listening = docker(
        "exec",
        name,
        "python",
        "-c",
        "import socket; print(socket.socket().connect_ex(('127.0.0.1', 8000)))",
    )
    assert listening != "0", "something listens on 8000"
    # A wrong port in the healthcheck's view turns the container unhealthy.
    probe = docker(
        "exec",
        "-e",
        "IMGFILTER_PORT=8000",
        name,
        "python",
        "-m",
        "service.runtime.healthcheck",
        check=False,
    )
    assert probe == ""  # the failure is reported on stderr and as exit code
    done = docker(
        "exec",
        "-e",
        "IMGFILTER_PORT=8000",
        name,
        "sh",
        "-c",
        "python -m service.runtime.healthcheck 2>/dev/null; echo $?",
    )
    assert done == "1"


def test_graceful_stop_finishes_in_flight_requests(image: str, containers: list[str]) -> None:
    port = PORT_BASE + 3
    name = start(
        image,
        "imgfilter-test-stop",
        containers,
        *READ_ONLY,
        "-e",
        "IMGFILTER_WORKERS=2",
        "-e",
        "IMGFILTER_QUEUE_TIMEOUT_S=30",
        port=port,
    )
    wait_healthy(name, deadline_s=30)
    url = f"http://127.0.0.1:{port}/pipeline"
    body = png(1500, 1500, seed=1)
    spec = {"steps": [{"op": "convolve", "preset": "gaussian-5"}] * 3}
    warm = upload(url, body, spec)
    assert warm.status_code == 200, warm.text
    answers: list[httpx.Response] = []
    threads = [
        threading.Thread(target=lambda: answers.append(upload(url, body, spec))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # all four are sent and being read or processed
    with timed("docker stop with 4 requests in flight"):
        docker("stop", "-t", "30", name, timeout=60)
    for thread in threads:
        thread.join(timeout=60)
    assert [a.status_code for a in answers] == [200] * 4
    assert inspect(name, "{{.State.ExitCode}}") == "0"
    assert "Traceback" not in logs(name)


def test_read_only_root_without_tmp_fails_clearly(image: str, containers: list[str]) -> None:
    """No writable /tmp: exit 3 and one line that says what to mount (finding 10)."""
    name = start(image, "imgfilter-test-notmp", containers, "--read-only")
    wait_for("exit", lambda: inspect(name, "{{.State.Status}}") == "exited", 30)
    assert inspect(name, "{{.State.ExitCode}}") == "3"
    output = logs(name)
    assert "Traceback" not in output
    assert "no writable temporary directory" in output
    assert "--tmpfs /tmp" in output


def test_cpu_quota_sets_the_default_worker_count(image: str, containers: list[str]) -> None:
    """``--cpus 1`` means one worker, on cgroup v1 and v2 hosts alike (finding 9)."""
    name = start(image, "imgfilter-test-cpus", containers, *READ_ONLY, "--cpus", "1")
    wait_healthy(name, deadline_s=30)
    assert start_record(name)["workers"] == 1
    cgroup = docker(
        "exec", name, "sh", "-c", "test -f /sys/fs/cgroup/cpu.max && echo v2 || echo v1"
    )
    log(f"cgroup {cgroup}: --cpus 1 -> 1 worker")


def test_nothing_but_the_service_is_in_the_image(image: str) -> None:
    """Runtime stage: no compiler, no sources, the wheel's package only."""
    out = docker(
        "run",
        "--rm",
        *LABEL,
        "--entrypoint",
        "sh",
        image,
        "-c",
        "command -v gcc cc || true; ls /src /wheels 2>&1 || true; "
        "python -c 'import service; print(service.__file__)'",
    )
    assert "gcc" not in out
    assert "No such file" in out
    assert "site-packages/service/__init__.py" in out


def test_base_image_says_whether_it_is_a_stand_in(image: str) -> None:
    """A stand-in base (no registry here) carries the label, and the log says which it is."""
    base = next(
        line.split("=", 1)[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("ARG PYTHON_IMAGE=")
    )
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", base)) or {}
    stand_in = labels.get("org.imgfilter.stand-in") == "true"
    log(f"{base}: {'LOCAL STAND-IN built from Debian packages' if stand_in else 'pulled'}")
    if stand_in:
        assert "do not push" in labels["org.opencontainers.image.description"]
