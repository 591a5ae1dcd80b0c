"""The deployment files agree with the code, and the Dockerfile's build, install and CMD work.

``make deploy-check`` validates the files' syntax (hadolint, the compose-spec schema,
kubernetes-validate); this module checks what those cannot: settings in compose and the
ConfigMap are real, valid settings; ports, probes, user and healthcheck agree everywhere; and
the wheel the Dockerfile builds, installed into a fresh venv, serves ``/convolve`` and
``/metrics`` when started with the Dockerfile's own ``CMD`` (parsed here, so they cannot drift);
and ``deploy/requirements.lock``, which the image installs, pins every runtime requirement and is
complete and installable (hashes, wheels) for the image's Python and platform.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from PIL import Image

from service.config import ENV_PREFIX, Settings
from tests.conftest import ROOT
from tests.servers import free_port, wait_healthy

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
KUBE = ROOT / "deploy" / "kubernetes"
LOCK = ROOT / "deploy" / "requirements.lock"
DOCKERIGNORE = ROOT / ".dockerignore"


# --- parsing -----------------------------------------------------------------------------------
def dockerfile_instructions(stage: str | None = None) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined; one stage if named."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs: list[tuple[str, str]] = []
    current: str | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else None
        if stage is None or current == stage or keyword == "ARG":
            pairs.append((keyword, rest.strip()))
    return pairs


def instruction(keyword: str, stage: str | None = None) -> list[str]:
    return [rest for key, rest in dockerfile_instructions(stage) if key == keyword]


def dockerfile_cmd() -> list[str]:
    (cmd,) = instruction("CMD", "runtime")
    parsed = json.loads(cmd)  # exec form, so signals reach the server directly
    assert isinstance(parsed, list)
    return [str(item) for item in parsed]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in instruction("ENV", "runtime"):
        for token in shlex.split(rest):
            key, _, value = token.partition("=")
            env[key] = value
    return env


def run_commands(stage: str) -> list[list[str]]:
    """Every shell command of the stage's ``RUN`` lines (split at ``&&``), as tokens."""
    return [shlex.split(part) for rest in instruction("RUN", stage) for part in rest.split("&&")]


def run_command_after(prefix: str, stage: str, *, last: str | None = None) -> list[str]:
    """The arguments after ``prefix`` of the stage's first command that starts with it (and
    ends with ``last``, if given)."""
    words = shlex.split(prefix)
    for command in run_commands(stage):
        if command[: len(words)] == words and (last is None or command[-1] == last):
            return command[len(words) :]
    raise AssertionError(f"no `RUN {prefix} ... {last or ''}` in stage {stage}")


def locked_pins() -> dict[str, tuple[str, list[str]]]:
    """``name -> (version, hashes)`` of ``deploy/requirements.lock`` (names normalised)."""
    pins: dict[str, tuple[str, list[str]]] = {}
    text = re.sub(r"\\\n", " ", LOCK.read_text())
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        name, _, version = requirement.partition("==")
        assert version, f"not pinned with ==: {line}"
        hashes = [option.removeprefix("--hash=sha256:") for option in options]
        assert all(option.startswith("--hash=sha256:") for option in options), line
        pins[canonicalize_name(name)] = (version, hashes)
    return pins


def runtime_requirements() -> list[Requirement]:
    """``[project] dependencies`` of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(item) for item in project["dependencies"]]


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def compose_default(value: str) -> str:
    """``${VAR:-default}`` interpolated as compose does with VAR unset."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def settings_from_env(env: dict[str, str]) -> Settings:
    """Settings exactly as the service would read ``env`` (only ``IMGFILTER_*`` counts)."""
    unknown = {
        key
        for key in env
        if key.startswith(ENV_PREFIX)
        and key[len(ENV_PREFIX) :].lower() not in Settings.model_fields
    }
    assert not unknown, f"not settings: {sorted(unknown)}"
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith(ENV_PREFIX)}
    try:
        os.environ.update({key: value for key, value in env.items() if value != ""})
        return Settings(_env_file=None)  # type: ignore[call-arg]
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)


# --- Dockerfile --------------------------------------------------------------------------------
def test_dockerfile_runtime_is_pinned_slim_and_non_root() -> None:
    (arg,) = [rest for rest in instruction("ARG") if rest.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.1[1-9]\.\d+-slim-\w+", arg)
    froms = instruction("FROM")
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    (user,) = instruction("USER", "runtime")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert uid != "0"
    assert instruction("EXPOSE", "runtime") == ["8000"]
    # Only the wheel and the lock enter the runtime stage: no sources, no build tools.
    copies = instruction("COPY", "runtime")
    assert copies == [
        "--from=build /wheels /wheels",
        "deploy/requirements.lock /wheels/requirements.lock",
    ]


def test_dockerfile_installs_the_locked_hashed_wheels_then_the_project_alone() -> None:
    locked = run_command_after("python -m pip install", "runtime", last="/wheels/requirements.lock")
    assert {"--only-binary=:all:", "--require-hashes", "--no-cache-dir"} <= set(locked)
    assert locked[-2] == "-r"
    project = run_command_after("python -m pip install", "runtime", last="/wheels/*.whl")
    assert "--no-deps" in project  # everything else came from the lock
    commands = run_commands("runtime")
    assert commands.index(["python", "-m", "pip", "install", *locked]) < commands.index(
        ["python", "-m", "pip", "install", *project]
    )
    # The build context is an allow-list: every file the Dockerfile copies must be let in.
    allowed = [line[1:] for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")]
    for source in ("pyproject.toml", "README.md", "service", "deploy/requirements.lock"):
        assert any(source == entry.rstrip("/") for entry in allowed), source


def test_lock_pins_every_runtime_requirement_within_its_range() -> None:
    pins = locked_pins()
    assert all(hashes for _, hashes in pins.values())
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in {LOCK.name}: run `make lock`"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (name, version)
    header = LOCK.read_text().splitlines()[1]
    python_image = next(a for a in instruction("ARG") if a.startswith("PYTHON_IMAGE="))
    minor = re.search(r"python:(3\.\d+)\.", python_image)
    assert minor is not None
    assert f"--python-version {minor[1]}" in header, "lock resolved for the image's Python"


@pytest.mark.slow
@pytest.mark.network  # pip download: make lock-check (and .ci/run), not make test
def test_lock_is_complete_and_installable_on_the_image_platform(tmp_path: Path) -> None:
    """pip fetches every locked wheel for CPython 3.11 on manylinux x86_64, checks its hash,
    and, in hash-checking mode, refuses any dependency (of a pin, or of an extra the project
    asks for, like ``uvicorn[standard]``) that the lock does not pin: a complete lock."""
    extras = {canonicalize_name(r.name): sorted(r.extras) for r in runtime_requirements()}
    lines = []
    for line in LOCK.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9._-]+)==", line)
        if match and extras.get(canonicalize_name(match[1])):
            name = match[1]
            line = f"{name}[{','.join(extras[canonicalize_name(name)])}]" + line[len(name) :]
        lines.append(line)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(lines) + "\n")
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--no-input"),
            *("--only-binary=:all:", "--require-hashes", "-r", str(requirements)),
            *("--python-version", "3.11", "--implementation", "cp"),
            *(arg for platform in platforms for arg in ("--platform", platform)),
            *("--dest", str(tmp_path / "wheels")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    errors = [line for line in done.stderr.splitlines() if "is ignored" not in line]
    assert done.returncode == 0, "\n".join(errors[-20:])
    fetched = {canonicalize_name(p.name.split("-")[0]) for p in (tmp_path / "wheels").iterdir()}
    assert fetched == set(locked_pins())


def test_dockerfile_cmd_serves_on_exposed_port() -> None:
    """Host and port come from IMGFILTER_HOST/IMGFILTER_PORT (the image's ENV), not the CMD, so
    ``docker run -e IMGFILTER_PORT=...`` moves the server; the healthcheck follows them."""
    assert dockerfile_cmd() == ["python", "-m", "service", "serve"]
    env = dockerfile_env()
    assert env["IMGFILTER_HOST"] == "0.0.0.0"
    assert env["IMGFILTER_PORT"] == instruction("EXPOSE", "runtime")[0] == "8000"
    (healthcheck,) = instruction("HEALTHCHECK", "runtime")
    command = ["python", "-m", "service.runtime.healthcheck"]
    assert json.loads(healthcheck.split(" CMD ", 1)[1]) == command
    assert "--start-interval" not in healthcheck  # Engine 25+ only; Debian bookworm has 20.10


def test_dockerfile_needs_no_frontend_image() -> None:
    """No ``# syntax=`` line: BuildKit would fetch that frontend image from a registry."""
    assert not re.search(r"^#\s*syntax=", DOCKERFILE.read_text(), re.MULTILINE | re.IGNORECASE)


def test_every_deploy_file_names_the_same_image_tag() -> None:
    """Dockerfile header, compose, the Deployment and deploy/README.md: one ``name:version``."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    tag = f"imgfilter-service:{version}"
    assert load_yaml(COMPOSE)["services"]["api"]["image"] == tag
    (container,) = kube("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == tag
    for path in (DOCKERFILE, ROOT / "deploy" / "README.md"):
        named = set(re.findall(r"imgfilter-service(?::[\w.]+)?(?=[\s`]|$)", path.read_text()))
        assert named == {tag}, (path.name, named)


# --- docker-compose.yml ------------------------------------------------------------------------
def test_compose_api_never_publishes_a_host_port() -> None:
    services = load_yaml(COMPOSE)["services"]
    assert "ports" not in services["api"]  # so `--scale api=N` cannot collide
    assert services["api"]["expose"] == ["8000"]
    (published,) = services["lb"]["ports"]
    assert compose_default(published) == "8000:8080"
    assert services["lb"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_compose_services_are_hardened_and_limited() -> None:
    for name, service in load_yaml(COMPOSE)["services"].items():
        assert service["read_only"] is True, name
        assert any(str(mount).startswith("/tmp") for mount in service["tmpfs"]), name
        assert service["restart"] == "unless-stopped", name
        limits = service["deploy"]["resources"]["limits"]
        assert {"cpus", "memory"} <= set(limits), name
        assert "healthcheck" in service, name


def test_compose_environment_is_valid_settings() -> None:
    environment = load_yaml(COMPOSE)["services"]["api"]["environment"]
    env = {key: compose_default(str(value)) for key, value in environment.items()}
    settings = settings_from_env(env)
    assert settings.workers == 1
    assert settings.max_upload_bytes == 20 * 1024 * 1024


def test_compose_healthcheck_is_the_dockerfile_healthcheck() -> None:
    (healthcheck,) = instruction("HEALTHCHECK", "runtime")
    docker_cmd = json.loads(healthcheck.split(" CMD ", 1)[1])
    compose_cmd = load_yaml(COMPOSE)["services"]["api"]["healthcheck"]["test"]
    assert compose_cmd == ["CMD", *docker_cmd]


def test_nginx_config_matches_compose() -> None:
    lb = load_yaml(COMPOSE)["services"]["lb"]
    source, target = lb["volumes"][0].split(":")[:2]
    conf = (ROOT / source).read_text()
    assert target == "/etc/nginx/nginx.conf"
    assert "server api:8000 resolve;" in conf
    assert "listen 8080;" in conf
    body_limit = int(re.search(r"client_max_body_size (\d+)m;", conf)[1])  # type: ignore[index]
    assert body_limit * 1024 * 1024 > Settings.model_fields["max_upload_bytes"].default


# --- Kubernetes --------------------------------------------------------------------------------
def kube(kind: str) -> dict[str, Any]:
    (found,) = [
        doc for path in sorted(KUBE.glob("*.yaml")) if (doc := load_yaml(path))["kind"] == kind
    ]
    return found


def test_kubernetes_configmap_is_valid_settings_matching_limits() -> None:
    data = kube("ConfigMap")["data"]
    settings = settings_from_env(data)
    pod = kube("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert settings.workers == int(container["resources"]["limits"]["cpu"])
    assert settings.port == container["ports"][0]["containerPort"] == 8000
    # SIGTERM: delay, then drain; both must end before Kubernetes sends SIGKILL.
    budget = settings.shutdown_delay_s + settings.graceful_timeout_s
    assert budget < pod["terminationGracePeriodSeconds"]
    assert settings.shutdown_delay_s > 0


def test_kubernetes_deployment_probes_and_security() -> None:
    deployment = kube("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["envFrom"] == [
        {"configMapRef": {"name": kube("ConfigMap")["metadata"]["name"]}}
    ]
    (user,) = instruction("USER", "runtime")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == user.split(":")[0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert mounts == {"tmp": "/tmp"}
    assert "emptyDir" in volumes["tmp"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert kube("Service")["spec"]["selector"] == selector
    hpa = kube("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


# --- the wheel and the CMD, for real -------------------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built with the Dockerfile's own ``pip wheel`` arguments."""
    args = run_command_after("python -m pip wheel", "build")
    out = tmp_path_factory.mktemp("wheels")
    args = [str(out) if arg == "/wheels" else str(ROOT) if arg == "." else arg for arg in args]
    assert str(out) in args, args
    assert str(ROOT) in args, args
    offline = ["--no-build-isolation"]  # the test venv's setuptools: no index needed
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", *offline, *args]
    subprocess.run(pip_wheel, cwd=ROOT, check=True)
    (built,) = out.glob("imgfilter_service-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel; its dependencies are borrowed from the test venv.

    The borrowed site-packages is a plain path line in a ``.pth`` file: its own ``.pth``
    files (the editable install of this checkout) are not run, so ``service`` can only come
    from the wheel.
    """
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    args = run_command_after("python -m pip install", "runtime", last="/wheels/*.whl")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"),
            *("--no-deps", *args[:-1], str(wheel)),
        ],
        check=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "_borrowed_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def test_wheel_ships_every_package_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "service").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert "service/data/ascent.png" in expected
    assert not expected - names, sorted(expected - names)


def test_installed_wheel_is_what_runs(installed: Path, tmp_path: Path) -> None:
    code = (
        "import importlib.metadata as md, service, service.main\n"
        "print(service.__file__)\n"
        "missing = [r for r in md.requires('imgfilter-service') if 'extra ==' not in r\n"
        "           and not md.distributions(name=r.split('[')[0].split('>')[0].strip())]\n"
        "print(missing)\n"
    )
    out = subprocess.run(
        [str(installed), "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert Path(out[0]).is_relative_to(installed.parent.parent), out[0]
    assert out[1] == "[]"
    assert (installed.parent / "imgfilter").exists()  # the console script


@pytest.fixture(scope="module")
def container_like(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Dockerfile's CMD (and ENV) run from the installed wheel, as in the container."""
    port = free_port()
    cmd = dockerfile_cmd()
    assert cmd[0] == "python"
    cmd[0] = str(installed)
    workdir = tmp_path_factory.mktemp("tmp")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith((ENV_PREFIX, "PROMETHEUS_", "PYTHON"))
    }
    env.update(dockerfile_env())
    env.update({"TMPDIR": str(workdir), "IMGFILTER_WORKERS": "2", "IMGFILTER_PORT": str(port)})
    env["IMGFILTER_HOST"] = "127.0.0.1"  # tests stay on the loopback interface
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process, deadline_s=60)
        yield base_url
        process.send_signal(signal.SIGTERM)  # what `docker stop` does
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_dockerfile_healthcheck_passes(container_like: str, installed: Path) -> None:
    (healthcheck,) = instruction("HEALTHCHECK", "runtime")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"
    port = httpx.URL(container_like).port
    env = {**os.environ, **dockerfile_env(), "IMGFILTER_PORT": str(port)}
    command = [str(installed), *command[1:]]
    assert subprocess.run(command, env=env, timeout=30).returncode == 0
    env["IMGFILTER_PORT"] = str(free_port())  # nothing listens there: unhealthy
    assert subprocess.run(command, env=env, timeout=30, capture_output=True).returncode == 1


def test_dockerfile_cmd_serves_convolve_and_metrics(container_like: str) -> None:
    calls = 6
    for _ in range(calls):
        # A new connection each time, so both workers get work and metrics must be merged.
        response = httpx.post(f"{container_like}/convolve", json={"preset": "sobel-x"}, timeout=30)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).size == (512, 512)
        assert httpx.get(f"{container_like}/healthz", timeout=10).status_code == 200
    text = httpx.get(f"{container_like}/metrics", timeout=10).text

    def value(sample: str) -> float:
        match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
        assert match, sample
        return float(match[1])

    route = 'method="POST",route="/convolve",status="200"'
    assert value(f"imgfilter_http_requests_total{{{route}}}") == calls
    assert value(f"imgfilter_http_request_duration_seconds_count{{{route}}}") == calls
    healthz = 'method="GET",route="/healthz",status="200"'
    assert value(f"imgfilter_http_requests_total{{{healthz}}}") >= calls
    for stage in ("decode", "convolve", "encode"):
        assert value(f'imgfilter_stage_seconds_count{{stage="{stage}"}}') >= calls
    assert value('imgfilter_http_request_body_bytes_total{route="/convolve"}') > 0
    assert value('imgfilter_http_response_body_bytes_total{route="/convolve"}') > calls * 1000
    assert value('imgfilter_rejections_total{reason="too_many_bytes"}') == 0
