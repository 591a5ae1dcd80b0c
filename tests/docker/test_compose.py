"""docker-compose.yml for real, with the commands docs/operations.md and deploy/README.md give.

One replica, then four behind nginx: requests spread over all four, a replica killed under load
costs at most 1% of requests and nothing hangs; the request ID and client address agree
between nginx's and the API's logs; then ``docker compose down`` leaves nothing behind. The
load balancer is published on ``IMGFILTER_PUBLISH_PORT`` (a port of this test's range instead
of 8000; the commands are otherwise exactly as documented). The tests run in order.
"""

from __future__ import annotations

import io
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image

from tests.docker.harness import (
    ANSI,
    PORT_BASE,
    PROJECT,
    ROOT,
    compose,
    container_ip,
    docker,
    health,
    inspect,
    json_lines,
    load,
    log,
    run,
    timed,
    upload,
    wait_for,
)

PORT = PORT_BASE + 10
ENV = {"IMGFILTER_PUBLISH_PORT": str(PORT)}
BASE = f"http://127.0.0.1:{PORT}"
SOBEL = {"preset": "sobel-x"}


def documented_commands() -> list[str]:
    """The ``docker compose ...`` lines of docs/operations.md and deploy/README.md (code blocks)."""
    commands = []
    for path in (ROOT / "docs" / "operations.md", ROOT / "deploy" / "README.md"):
        for block in re.findall(r"```sh\n(.*?)```", path.read_text(), re.DOTALL):
            for line in block.splitlines():
                command = line.split("#", 1)[0].strip()
                if "docker compose" in command:
                    commands.append(command)
    return commands


def documented(*words: str) -> list[str]:
    """The one documented compose command containing all ``words``, as argv (env prefix kept
    as environment)."""
    (command,) = [c for c in documented_commands() if all(w in c.split() for w in words)]
    return command.split()


def run_documented(*words: str, timeout: float = 600) -> None:
    argv = documented(*words)
    env = dict(ENV)
    while "=" in argv[0]:
        key, _, value = argv.pop(0).partition("=")
        env[key] = value
    log(" ".join(argv) + f"   (env {env})")
    run(*argv, env=env, timeout=timeout)


def api_containers() -> list[str]:
    return compose("ps", "-q", "api", env=ENV).split()


def wait_stack_healthy(replicas: int, deadline_s: float = 90) -> float:
    def ready() -> bool:
        ids = api_containers()
        lb = compose("ps", "-q", "lb", env=ENV).split()
        return (
            len(ids) == replicas
            and all(health(c) == "healthy" for c in ids + lb)
            and httpx.get(f"{BASE}/healthz", timeout=5).status_code == 200
        )

    return wait_for(f"{replicas} replica(s) and lb healthy", ready, deadline_s)


@pytest.fixture(scope="module")
def stack(image: str) -> Iterator[None]:
    """Whatever this module starts is taken down at its end, even after a failure."""
    del image  # built first: the documented `up --build` then reuses its layers
    compose("down", "--remove-orphans", "--timeout", "5", env=ENV, timeout=120)
    yield
    compose("down", "--remove-orphans", "--timeout", "5", env=ENV, timeout=120)


def test_documented_compose_commands_exist() -> None:
    commands = documented_commands()
    assert any("--build" in c for c in commands)
    assert any("--scale api=4" in c for c in commands)
    assert not any("--profile" in c for c in commands), "--profile scale changes nothing"


def test_load_balancer_image_is_recent_enough_for_the_config(stack: None) -> None:
    """``server api:8000 resolve`` needs nginx 1.27.3 or later (finding 6)."""
    lb_image = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["lb"]["image"]
    out = run("docker", "run", "--rm", "--label", "org.imgfilter.test=1", lb_image, "nginx", "-v")
    version = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    assert version, out.stderr
    log(f"{lb_image}: nginx {'.'.join(version.groups())}")
    assert tuple(map(int, version.groups())) >= (1, 27, 3)


def test_one_replica_with_the_documented_command(stack: None) -> None:
    with timed("docker compose up -d --build (1 replica)"):
        run_documented("up", "-d", "--build")
        took = wait_stack_healthy(1)
    log(f"stack healthy {took:.1f} s after `up` returned")
    assert len(api_containers()) == 1
    response = httpx.post(f"{BASE}/convolve", json=SOBEL, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert httpx.get(f"{BASE}/lb-healthz", timeout=5).status_code == 200
    # An upload near the 20 MiB limit streams through nginx to the API and back.
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (2500, 2700, 3), dtype=np.uint8)  # noise: ~20 MB as PNG
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=0)
    assert 19 * 2**20 < len(buffer.getvalue()) < 20 * 2**20
    spec = {"steps": [{"op": "pool", "size": 4}]}
    response = upload(f"{BASE}/pipeline", buffer.getvalue(), spec)
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (675, 625)


def test_request_ids_and_client_address_agree_in_both_logs(stack: None) -> None:
    """nginx keeps a valid X-Request-ID, replaces an invalid one as the API would, and drops a
    client's X-Forwarded-For (findings 3 and 4)."""
    cases = {"kept-id.1": "kept-id.1", "bad id with spaces!": None}
    seen = {}
    for sent in cases:
        response = httpx.get(
            f"{BASE}/healthz",
            headers={"X-Request-ID": sent, "X-Forwarded-For": "203.0.113.7"},
            timeout=10,
        )
        assert response.status_code == 200
        seen[sent] = response.headers["x-request-id"]
    assert seen["kept-id.1"] == "kept-id.1"
    assert re.fullmatch(r"[0-9a-f]{32}", seen["bad id with spaces!"])
    time.sleep(0.5)
    lb_log = {
        r.get("request_id"): r for r in json_lines(compose("logs", "--no-color", "lb", env=ENV))
    }
    api_log = {
        r.get("request_id"): r for r in json_lines(compose("logs", "--no-color", "api", env=ENV))
    }
    for rid in seen.values():
        assert rid in lb_log, rid
        assert rid in api_log, rid
        assert api_log[rid]["client"].split(":")[0] == lb_log[rid]["remote"]
        assert "203.0.113.7" not in str(api_log[rid]["client"])


def test_nginx_logs_json_even_for_large_bodies(stack: None) -> None:
    """A body over nginx's in-memory buffer no longer logs a plain-text warning (finding 5)."""
    body = b"x" * (64 * 1024)
    response = httpx.post(
        f"{BASE}/convolve", content=body, headers={"content-type": "image/png"}, timeout=30
    )
    assert response.status_code in (400, 415, 422)
    time.sleep(0.5)
    text = ANSI.sub("", compose("logs", "--no-color", "--no-log-prefix", "lb", env=ENV))
    plain = [line for line in text.splitlines() if line.strip() and not line.startswith("{")]
    assert not plain, plain[-5:]


def test_metrics_are_scraped_per_replica_not_through_the_lb(stack: None) -> None:
    """The lb refuses /metrics; each replica answers on its own address (finding 7)."""
    response = httpx.get(f"{BASE}/metrics", timeout=10)
    assert response.status_code == 404
    assert "each api replica" in response.json()["detail"]
    (replica,) = api_containers()
    text = httpx.get(f"http://{container_ip(replica)}:8000/metrics", timeout=10).text
    assert "imgfilter_http_requests_total" in text


def test_four_replicas_share_the_load(stack: None) -> None:
    with timed("docker compose up -d --scale api=4"):
        run_documented("up", "-d", "--scale", "api=4")
        wait_stack_healthy(4)
    replicas = api_containers()
    # nginx re-resolves `api` every 5 s: wait until it has all four.
    wait_for("nginx sees 4 replicas", lambda: _upstreams(40) == 4, 30, interval_s=1)
    result = load(f"{BASE}/convolve", 200, 8, json_body=SOBEL, id_prefix="spread")
    assert result.statuses == Counter({200: 200}), result.statuses
    served = _served_by(set(result.request_ids))
    log(f"200 requests over 4 replicas: {sorted(served.values())}")
    assert len(served) == 4, served
    assert min(served.values()) >= 20, served
    # Each replica's own metrics, scraped on the compose network's addresses.
    for replica in replicas:
        text = httpx.get(f"http://{container_ip(replica)}:8000/metrics", timeout=10).text
        assert 'route="/convolve",status="200"' in text
    # ... and by hand, with deploy/README.md's command as written.
    (by_hand,) = [c for c in documented_commands() if " exec " in c]
    text = run("bash", "-c", by_hand, env=ENV).stdout
    assert 'imgfilter_http_requests_total{method="POST",route="/convolve",status="200"}' in text


def _served_by(request_ids: set[str]) -> Counter[str]:
    """Upstream address of each of these requests, from nginx's JSON access log."""
    records = json_lines(compose("logs", "--no-color", "--no-log-prefix", "lb", env=ENV))
    return Counter(r["upstream"] for r in records if r.get("request_id") in request_ids)


def _upstreams(requests: int) -> int:
    result = load(f"{BASE}/healthz", requests, 4, id_prefix=f"probe{time.monotonic_ns()}")
    return len(_served_by(set(result.request_ids)))


def test_killing_a_replica_under_load_costs_at_most_one_percent(stack: None) -> None:
    victim = api_containers()[0]
    started = threading.Event()
    outcome = {}

    def traffic() -> None:
        outcome["result"] = load(
            f"{BASE}/convolve",
            400,
            8,
            json_body=SOBEL,
            timeout_s=30,
            started=started,
            id_prefix="kill",
        )

    worker = threading.Thread(target=traffic)
    with timed("400 requests, one replica killed"):
        worker.start()
        assert started.wait(60)
        # A crash, not `docker kill` (which Docker counts as a manual stop, not restarted):
        # SIGKILL to the replica's main process from the host, as the OOM killer would.
        os.kill(int(inspect(victim, "{{.State.Pid}}")), signal.SIGKILL)
        worker.join(timeout=300)
    assert not worker.is_alive(), "the load did not finish: something hangs"
    result = outcome["result"]
    log(
        f"kill under load: {dict(result.statuses)}, errors {dict(result.errors)}, "
        f"slowest {max(result.latencies):.2f} s"
    )
    assert result.total == 400
    assert result.failed <= 4, result.statuses
    assert max(result.latencies) < 30
    # restart: unless-stopped brings the crashed replica back.
    wait_for("crashed replica back", lambda: health(victim) == "healthy", 60)


def test_down_removes_everything(stack: None) -> None:
    with timed("docker compose down"):
        run_documented("down")
    label = f"label=com.docker.compose.project={PROJECT}"
    assert docker("ps", "-aq", "--filter", label) == ""
    assert docker("network", "ls", "-q", "--filter", label) == ""
    assert docker("volume", "ls", "-q", "--filter", label) == ""
