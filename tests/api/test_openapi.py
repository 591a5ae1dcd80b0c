"""The committed OpenAPI document tells the truth, and documents both encodings and examples."""

from __future__ import annotations

import json

import pytest

from service.openapi_dump import openapi_document, render
from tests.conftest import ROOT

COMMITTED = ROOT / "openapi" / "openapi.json"


def test_committed_openapi_matches_app() -> None:
    assert COMMITTED.exists(), "run `make openapi`"
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    )


@pytest.mark.parametrize("path", ["/convolve", "/pool", "/pipeline"])
def test_processing_endpoints_document_one_encoding_per_operation(path: str) -> None:
    paths = openapi_document()["paths"]
    for suffix, request, answers in (
        ("", "application/json", ["image/png", "application/x-npy"]),
        ("/array", "application/json", ["application/json"]),
        ("/upload", "multipart/form-data", ["image/png", "application/x-npy"]),
    ):
        operation = paths[path + suffix]["post"]
        content = operation["requestBody"]["content"]
        assert list(content) == [request]
        assert content[request]["examples"], "worked examples are shown in /docs"
        responses = operation["responses"]
        assert list(responses["200"]["content"]) == answers
        assert {"400", "401", "406", "413", "415", "422", "503"} <= set(responses)
        assert operation["operationId"] == path[1:] + suffix.title().replace("/", "")
    spec = paths[path + "/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert spec["schema"]["properties"]["spec"]["$ref"].endswith("Spec")
    assert spec["encoding"] == {"spec": {"contentType": "application/json"}}


def test_convolve_examples_cover_the_lesson_filters() -> None:
    examples = openapi_document()["paths"]["/convolve"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    kernels = [example["value"].get("kernel") for example in examples.values()]
    for lesson_kernel in (
        [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
        [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    ):
        assert lesson_kernel in kernels


def test_request_body_refs_resolve() -> None:
    document = openapi_document()
    text = json.dumps(document)
    schemas = document["components"]["schemas"]
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in schemas, ref


def test_every_field_of_convolve_spec_is_described() -> None:
    schema = openapi_document()["components"]["schemas"]["ConvolveRequest"]
    for name, field in schema["properties"].items():
        assert field.get("description") or name == "image" or "$ref" in field, name
