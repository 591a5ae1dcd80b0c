"""The operation registry: every surface (routes, pipeline steps, OpenAPI, CLI, client, the
operation list) is derived from its entries, so a new entry appears everywhere at once."""

from __future__ import annotations

import argparse
import json
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import Field

from service import processing
from service.api.operations import operation_router
from service.cli import _add_operation, build_parser
from service.client import Client
from service.config import Settings
from service.imaging import Decoded
from service.ops import OPERATIONS, STEP_MODELS, STEPS, Operation
from service.schemas import StrictModel

SUFFIXES = {"": "", "/array": "Array", "/upload": "Upload"}


class InvertParams(StrictModel):
    """What a test-only operation does: ``out = level - image``."""

    level: int = Field(255, ge=0, le=255, description="The value subtracted from.")
    gray: bool = Field(False, description="Convert to luma first.")


def _invert(image: Decoded, params: InvertParams, settings: Settings) -> Decoded:
    image = processing.prepare(image, "gray" if params.gray else "auto")
    values = params.level - image.pixels.astype(np.float32)
    return processing.finish(values, image, "clamp")


INVERT: Operation[InvertParams] = Operation(
    name="invert",
    params=InvertParams,
    run=_invert,
    summary="Invert an image",
    description="`out = level - image`, clamped to 0..255.",
    help="Negatives.",
    examples={"ascent": {"summary": "ascent", "value": {"image": "ascent"}}},
    array_examples={"small": {"summary": "2x2", "value": {"image": {"pixels": [[0, 255]]}}}},
    request_example={"image": "ascent", "level": 200},
    cli_example="ascent -o negative.png",
)


def test_an_entry_alone_gives_routes_that_run_it_and_a_cli_subcommand() -> None:
    """A new entry, without any other code: three routes that run it, a subcommand."""
    with _served(INVERT) as client:
        pixels = [[0, 100], [200, 255]]
        answer = client.post("/invert/array", json={"image": {"pixels": pixels}, "level": 200})
        assert answer.status_code == 200, answer.text
        assert answer.json()["pixels"] == [[200, 100], [0, 0]]
        refused = client.post("/invert/array", json={"level": 256})
        assert refused.status_code == 422
        assert "255" in refused.json()["detail"][0]["msg"]
        png = client.post("/invert/upload", files={"spec": (None, '{"gray": true}')})
        assert png.headers["content-type"] == "image/png"
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    _add_operation(subparsers, INVERT)
    args = parser.parse_args(["invert", "ascent", "--level", "7", "--gray"])
    assert (args.level, args.gray, args.operation) == ("7", True, "invert")


@pytest.fixture(scope="module")
def client() -> TestClient:
    from service.main import app

    return TestClient(app)


def test_every_entry_has_its_three_operations_in_the_document(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for name, operation in OPERATIONS.items():
        for suffix, id_suffix in SUFFIXES.items():
            post = document["paths"][f"/{name}{suffix}"]["post"]
            assert post["operationId"] == f"{name}{id_suffix}"
            assert post["tags"] == [name]
            assert post["summary"].startswith(operation.summary)
        for model in (operation.spec, operation.request):
            assert model.__name__ in document["components"]["schemas"]
    assert [tag["name"] for tag in document["tags"]][: len(OPERATIONS)] == list(OPERATIONS)


def test_the_pipeline_takes_every_step_entry_and_names_them_when_refused(
    client: TestClient,
) -> None:
    assert set(STEP_MODELS) == {name for name, op in OPERATIONS.items() if op.step}
    steps = [{"op": "nope"}]
    answer = client.post("/pipeline/array", json={"image": {"pixels": [[1]]}, "steps": steps})
    assert answer.status_code == 422
    message = answer.json()["detail"][0]["msg"]
    for name in STEPS:
        assert name in message


def test_operations_endpoint_lists_the_registry(client: TestClient) -> None:
    listed = client.get("/operations").json()
    assert [entry["name"] for entry in listed] == list(OPERATIONS)
    for entry in listed:
        operation = OPERATIONS[entry["name"]]
        assert entry["path"] == f"/{entry['name']}"
        assert entry["step"] is operation.step
        assert set(entry["spec"]["properties"]) == set(operation.spec.model_fields)


def test_every_entry_is_a_cli_subcommand_with_an_option_per_field() -> None:
    parser = build_parser()
    for name, operation in OPERATIONS.items():
        subcommand = parser._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        options = {o for action in subcommand._actions for o in action.option_strings}
        fields = set(operation.params.model_fields)
        assert {"--" + field.replace("_", "-") for field in fields} <= options, name


def test_the_client_calls_any_operation_by_name() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=b"\x89PNG...", headers={"content-type": "image/png"})

    with Client("http://test", transport=httpx.MockTransport(answer)) as api:
        assert api.invert(level=3) == b"\x89PNG..."
        api.call("edge-map", weight=2)
        api.edge_map(weight=2)
        with pytest.raises(AttributeError):
            api._private  # noqa: B018
    assert [request.url.path for request in sent] == ["/invert", "/edge-map", "/edge-map"]
    assert json.loads(sent[0].content) == {"level": 3, "format": "png"}


def _served(operation: Operation[Any]) -> TestClient:
    from service.main import create_app

    app = create_app(Settings())
    app.include_router(operation_router(operation))
    return TestClient(app)
