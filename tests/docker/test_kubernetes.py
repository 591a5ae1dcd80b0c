"""The Kubernetes Deployment's container, run under ``docker run`` exactly as the manifest sets
it (no cluster can run here), and the documented memory worst case under its memory limit.

Mapped from ``deploy/kubernetes/``: image, command/args, env from the ConfigMap, the container
port, non-root user and group, read-only root with the in-memory ``emptyDir`` on ``/tmp`` (its
size limit), dropped capabilities, no privilege escalation, CPU and memory limits. The probes
are then asked as the kubelet would (their paths on their ports), and SIGTERM is sent as on pod
deletion: ``/readyz`` turns 503 at once while ``/healthz`` stays 200 for the shutdown delay, and
the container exits 0 within ``terminationGracePeriodSeconds``.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
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
)

KUBE = ROOT / "deploy" / "kubernetes"
LABEL = ["--label", "org.imgfilter.test=1"]
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def kube(kind: str) -> dict[str, Any]:
    (found,) = [
        doc
        for path in sorted(KUBE.glob("*.yaml"))
        if (doc := yaml.safe_load(path.read_text()))["kind"] == kind
    ]
    return found


def quantity_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMG]i)?", value).groups()  # type: ignore[union-attr]
    return int(number) * UNITS.get(unit or "", 1)


def pod_spec() -> tuple[dict[str, Any], dict[str, Any]]:
    pod = kube("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def docker_run_args(name: str, host_port: int) -> list[str]:
    """``docker run`` arguments equivalent to the Deployment's container (see module doc)."""
    pod, container = pod_spec()
    settings = kube("ConfigMap")["data"]
    assert container["envFrom"] == [
        {"configMapRef": {"name": kube("ConfigMap")["metadata"]["name"]}}
    ]
    pod_security = pod["securityContext"]
    security = container["securityContext"]
    limits = container["resources"]["limits"]
    (port,) = container["ports"]
    args = ["--name", name, *LABEL, "-p", f"127.0.0.1:{host_port}:{port['containerPort']}"]
    args += ["--user", f"{pod_security['runAsUser']}:{pod_security['runAsGroup']}"]
    if "fsGroup" in pod_security:
        args += ["--group-add", str(pod_security["fsGroup"])]
    if security.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if security.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    for capability in security.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", capability]
    assert not security.get("privileged")
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in container["volumeMounts"]:
        empty_dir = volumes[mount["name"]]["emptyDir"]
        assert empty_dir.get("medium") == "Memory", "only in-memory emptyDirs map to a tmpfs"
        size = quantity_bytes(empty_dir["sizeLimit"])
        args += ["--tmpfs", f"{mount['mountPath']}:size={size},mode=1777"]
    args += ["--memory", str(quantity_bytes(limits["memory"])), "--cpus", str(limits["cpu"])]
    for key, value in settings.items():
        args += ["-e", f"{key}={value}"]
    if "command" in container:
        args += ["--entrypoint", container["command"][0]]
    args.append(container["image"])
    args += container.get("command", [])[1:] + container.get("args", [])
    return args


@pytest.fixture
def pod_container(image: str) -> Iterator[tuple[str, str]]:
    """The Deployment's container running under Docker: (name, base URL)."""
    _, container = pod_spec()
    assert container["image"] == image, "the manifest names the image compose builds"
    name = "imgfilter-test-pod"
    port = PORT_BASE + 20
    docker("rm", "-f", name, check=False)
    docker("run", "-d", *docker_run_args(name, port))
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        docker("rm", "-f", "-v", name, check=False)


def probe_url(base: str, probe: dict[str, Any]) -> str:
    _, container = pod_spec()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    http = probe["httpGet"]
    assert ports.get(http["port"], http["port"]) == container["ports"][0]["containerPort"]
    return base + http["path"]


def test_deployment_container_under_docker_run(pod_container: tuple[str, str]) -> None:
    name, base = pod_container
    pod, container = pod_spec()
    startup = container["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    with timed("pod container: startup probe passes"):
        wait_for(
            "startup probe",
            lambda: httpx.get(probe_url(base, startup), timeout=2).status_code == 200,
            budget,
        )
    for probe in ("readinessProbe", "livenessProbe"):
        timeout = container[probe].get("timeoutSeconds", 1)
        assert httpx.get(probe_url(base, container[probe]), timeout=timeout).status_code == 200
    assert httpx.post(f"{base}/convolve", json={"preset": "sobel-x"}, timeout=30).status_code == 200
    assert docker("exec", name, "id", "-u") == str(pod["securityContext"]["runAsUser"])
    records = [r for r in json_lines(logs(name)) if "workers" in r]
    workers = int(kube("ConfigMap")["data"]["IMGFILTER_WORKERS"])
    assert records[0]["workers"] == workers == int(container["resources"]["limits"]["cpu"])
    # Pod deletion: SIGTERM, readiness fails at once, liveness holds, exit 0 within the grace.
    delay = float(kube("ConfigMap")["data"]["IMGFILTER_SHUTDOWN_DELAY_S"])
    grace = pod["terminationGracePeriodSeconds"]
    docker("kill", "-s", "TERM", name)
    start = time.monotonic()
    assert httpx.get(probe_url(base, container["readinessProbe"]), timeout=2).status_code == 503
    assert httpx.get(probe_url(base, container["livenessProbe"]), timeout=2).status_code == 200
    wait_for("exit", lambda: inspect(name, "{{.State.Status}}") == "exited", grace)
    took = time.monotonic() - start
    assert inspect(name, "{{.State.ExitCode}}") == "0"
    assert delay <= took < grace
    log(f"pod container: SIGTERM -> exit 0 in {took:.1f} s (delay {delay} s, grace {grace} s)")


# --- the memory worst case ---------------------------------------------------------------------
def max_pixel_png(pixels: int, target_bytes: int, channels: int = 4) -> bytes:
    """An RGBA image of exactly ``pixels`` pixels whose PNG is just under ``target_bytes``:
    identical smooth rows (they compress to almost nothing) and enough noisy rows to fill the
    upload limit."""
    width = 8000
    height = pixels // width
    assert width * height == pixels, pixels
    row = (127 + 100 * np.sin(np.arange(width) / 53.0)).astype(np.uint8)
    image = np.empty((height, width, channels), np.uint8)
    image[:] = row[None, :, None]
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    noisy = int(0.97 * target_bytes) // (width * channels)
    for _ in range(4):
        image[:noisy] = noise[:noisy]
        image[noisy:] = row[None, :, None]
        buffer = io.BytesIO()
        Image.fromarray(image, "RGBA").save(buffer, "PNG", compress_level=1)
        data = buffer.getvalue()
        if 0.95 * target_bytes <= len(data) <= target_bytes:
            return data
        noisy = int(noisy * 0.975 * target_bytes / len(data))
    raise AssertionError(f"no PNG near {target_bytes} bytes (last {len(data)})")


def cgroup_memory(name: str) -> tuple[int, int]:
    """(peak bytes, OOM kills) of the container's memory cgroup, v1 or v2."""
    script = (
        "if [ -f /sys/fs/cgroup/memory.peak ]; then cat /sys/fs/cgroup/memory.peak; "
        "grep '^oom_kill ' /sys/fs/cgroup/memory.events | cut -d' ' -f2; "
        "else cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes; "
        "grep '^oom_kill ' /sys/fs/cgroup/memory/memory.oom_control | cut -d' ' -f2 || echo 0; fi"
    )
    peak, kills = docker("exec", name, "sh", "-c", script).split()[:2]
    return int(peak), int(kills)


def test_worst_case_memory_holds_under_the_limit(
    pod_container: tuple[str, str], tmp_path: Path
) -> None:
    """workers x (concurrency x peak + queued bodies) at MAX_PIXELS stays within the limit.

    The heaviest request measured (deploy/README.md: a MAX_PIXELS RGBA upload through three
    convolutions) runs on every slot of every worker while every queue place holds a body of
    ``MAX_UPLOAD_BYTES``: clients resend as soon as a queued request is shed (503 after the
    queue timeout), so the queues stay full for the whole peak. No OOM kill, no worker lost,
    every heavy request answered 200.
    """
    name, base = pod_container
    _, container = pod_spec()
    settings = kube("ConfigMap")["data"]
    limit = quantity_bytes(container["resources"]["limits"]["memory"])
    workers = int(settings["IMGFILTER_WORKERS"])
    slots = workers * int(settings.get("IMGFILTER_MAX_CONCURRENCY", "1"))
    queued = workers * int(settings["IMGFILTER_MAX_QUEUE"])
    with timed("worst-case image"):
        body = max_pixel_png(
            int(settings["IMGFILTER_MAX_PIXELS"]), int(settings["IMGFILTER_MAX_UPLOAD_BYTES"])
        )
    wait_for("ready", lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, 60)
    heavy = {
        "steps": [
            {"op": "convolve", "preset": "sobel-x"},
            {"op": "convolve", "preset": "sobel-y"},
            {"op": "convolve", "preset": "laplacian"},
        ]
    }
    url = f"{base}/pipeline"
    stop = threading.Event()
    heavy_codes: list[int] = []
    queue_codes: list[int] = []
    odd: list[str] = []

    def heavy_client() -> None:
        heavy_codes.append(upload(url, body, heavy, timeout_s=120).status_code)

    def queue_client() -> None:
        while not stop.is_set():
            try:
                response = upload(url, body, heavy, timeout_s=120)
            except httpx.HTTPError as exc:
                queue_codes.append(0)
                odd.append(repr(exc))
                continue
            queue_codes.append(response.status_code)
            if response.status_code not in (200, 503):
                odd.append(f"{response.status_code} {response.text[:300]}")

    heavies = [threading.Thread(target=heavy_client) for _ in range(slots)]
    fillers = [threading.Thread(target=queue_client) for _ in range(queued)]
    with timed(f"worst case: {slots} heavy + {queued} queued {len(body) / 2**20:.1f} MiB bodies"):
        for thread in heavies:
            thread.start()
        time.sleep(0.3)
        for thread in fillers:
            thread.start()
        for thread in heavies:
            thread.join(timeout=150)
        stop.set()
        for thread in fillers:
            thread.join(timeout=150)
    assert not any(t.is_alive() for t in heavies + fillers), "a client hangs"
    peak, kills = cgroup_memory(name)
    log(
        f"worst case: peak {peak / 2**20:.0f} MiB of {limit / 2**20:.0f} MiB, OOM kills {kills}, "
        f"heavy {heavy_codes}, queued {sorted(set(queue_codes))} x{len(queue_codes)}"
    )
    assert kills == 0
    assert inspect(name, "{{.State.OOMKilled}}") == "false"
    # 504: the processing timeout, when this shared machine is slow; the memory was used all
    # the same (the abandoned thread keeps its slot until it finishes).
    assert len(heavy_codes) == slots
    assert set(heavy_codes) <= {200, 504}
    assert set(queue_codes) <= {200, 503, 504}, odd
    assert peak < limit
    assert inspect(name, "{{.State.Status}}") == "running"
    if workers > 1:  # the supervisor restarts a killed worker: count the starts
        starts = [
            r for r in json_lines(docker("logs", name)) if "Started server" in r.get("msg", "")
        ]
        assert len(starts) == workers
