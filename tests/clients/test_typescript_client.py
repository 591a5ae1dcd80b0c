"""openapi-typescript + openapi-fetch: ``ts/calls.ts`` type-checks (tsc, strict) against the
types generated from ``openapi/openapi.json`` and makes every call of issue 12 against real
uvicorn servers. Versions: ``package-lock.json`` beside this file.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients import generated
from tests.servers import Server

HERE = Path(__file__).parent
CALLS = [
    "health", "readiness", "listKernels", "getKernel", "ascent",
    "convolve png", "pool png", "pipeline png",
    "convolve array", "pool array", "pipeline array",
    "convolve upload", "pool upload", "pipeline upload",
    "examples", "422", "400", "401", "bearer", "x-api-key",
]  # fmt: skip


def _examples() -> dict[str, dict[str, object]]:
    paths = json.loads(generated.DOCUMENT.read_text())["paths"]
    return {
        path.strip("/"): operation["post"]["requestBody"]["content"]["application/json"]["examples"]
        for path, operation in paths.items()
        if "post" in operation and "application/json" in operation["post"]["requestBody"]["content"]
    }


def test_typescript_client_makes_every_call(
    tmp_path: Path, open_server: Server, keyed_server: Server
) -> None:
    tools = generated.node_tools()
    node = shutil.which("node")
    assert node is not None
    for name in ("calls.ts", "tsconfig.json"):
        shutil.copy(HERE / "ts" / name, tmp_path / name)
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "node_modules").symlink_to(tools.parent)
    run = {"cwd": tmp_path, "check": True, "capture_output": True, "text": True, "timeout": 300}
    subprocess.run(
        [tools / "openapi-typescript", generated.DOCUMENT, "-o", tmp_path / "schema.d.ts"], **run
    )
    compiled = subprocess.run([tools / "tsc", "-p", "tsconfig.json"], **{**run, "check": False})
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    env = {
        "OPEN_URL": open_server.base_url,
        "KEYED_URL": keyed_server.base_url,
        "API_KEY": generated.KEY,
        "UPLOAD_PNG": base64.b64encode(generated.upload_png()).decode(),
        "EXAMPLES": json.dumps(_examples()),
        "PATH": str(Path(node).parent),
    }
    answer = subprocess.run([node, "out/calls.js"], env=env, **{**run, "check": False})
    results = json.loads(answer.stdout.strip().splitlines()[-1])
    assert results == dict.fromkeys(CALLS, "ok"), answer.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["redocly", "lint", "--extends", "recommended", "--format", "stylish"],
        ["spectral", "lint", "--ruleset", str(HERE / ".spectral.yaml"), "--fail-severity", "error"],
    ],
    ids=["redocly", "spectral"],
)
def test_openapi_document_has_no_lint_errors(command: list[str]) -> None:
    tools = generated.node_tools()
    result = subprocess.run(
        [tools / command[0], *command[1:], generated.DOCUMENT],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
