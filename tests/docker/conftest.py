"""Container tests against a real Docker engine: ``make docker-test`` (not part of ``make test``).

They are collected only with ``IMGFILTER_DOCKER_TEST=1``, which ``make docker-test`` sets after
``deploy/test/setup.sh`` has made sure an engine, compose v2 and the base images (pulled, or
local stand-ins) are there. The image is built once per session from the unchanged Dockerfile.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
import yaml

from tests.docker.harness import ROOT, TIMINGS, docker, log, run, timed

if os.environ.get("IMGFILTER_DOCKER_TEST") != "1":
    collect_ignore_glob = ["test_*.py"]

TEST_LABEL = "org.imgfilter.test=1"


def compose_image() -> str:
    """The image name docker-compose.yml gives the API (the tag every deploy file uses)."""
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return str(data["services"]["api"]["image"])


@pytest.fixture(scope="session")
def image(outbound_nat: None) -> str:
    """The project's image, built from the Dockerfile as it is by ``docker compose build``.

    Compose builds with the engine's BuildKit, so the documented ``up --build`` afterwards
    reuses every layer (a plain ``docker build`` here would use the legacy builder's cache).
    """
    tag = compose_image()
    with timed(f"docker compose build api ({tag})"):
        run("docker", "compose", "build", "api", timeout=900)
    return tag


@pytest.fixture
def containers() -> Iterator[list[str]]:
    """Names of containers a test started; removed (with their anonymous volumes) afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        docker("rm", "-f", "-v", name, check=False)


#: Where Docker's default address pools put bridge networks first (docker0, then compose's).
BRIDGE_POOL = "172.16.0.0/12"


@pytest.fixture(scope="session")
def outbound_nat() -> Iterator[None]:
    """Let containers on Docker's bridges reach the package index while a compose build runs.

    ``dockerd --iptables=false`` (how this engine runs where the host's firewall is not Docker's)
    gives the bridges no NAT, and compose's BuildKit builds run ``pip`` on a bridge. A
    MASQUERADE rule per default address pool is added for the session and removed after; with an
    engine that manages iptables itself nothing is added.
    """
    if shutil.which("iptables") is None:
        yield
        return
    listed = run("iptables", "-t", "nat", "-S", "POSTROUTING", check=False).stdout
    if "DOCKER" in run("iptables", "-t", "nat", "-S", check=False).stdout:
        yield  # Docker manages NAT itself
        return
    rules = []
    rule = ["POSTROUTING", "-s", BRIDGE_POOL, "!", "-d", BRIDGE_POOL, "-j", "MASQUERADE"]
    if f"-s {BRIDGE_POOL} ! -d {BRIDGE_POOL} -j MASQUERADE" not in listed:
        run("iptables", "-t", "nat", "-A", *rule)
        rules.append(rule)
    log(f"outbound NAT for builds on the bridges: {len(rules)} MASQUERADE rule added")
    try:
        yield
    finally:
        for rule in rules:
            run("iptables", "-t", "nat", "-D", *rule, check=False)
        log("outbound NAT rules removed")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    left = docker("ps", "-aq", "--filter", f"label={TEST_LABEL}", check=False).split()
    if left:
        docker("rm", "-f", "-v", *left, check=False)
    if TIMINGS:
        log("timings: " + ", ".join(f"{what} {seconds:.0f} s" for what, seconds in TIMINGS))
