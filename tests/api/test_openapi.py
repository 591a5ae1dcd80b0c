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
def test_processing_endpoints_document_both_encodings(path: str) -> None:
    operation = openapi_document()["paths"][path]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    assert content["application/json"]["examples"], "worked examples are shown in /docs"
    assert "spec" in content["multipart/form-data"]["schema"]["properties"]
    responses = operation["responses"]
    assert set(responses["200"]["content"]) == {"image/png", "application/json"}
    assert {"400", "413", "415", "422", "503"} <= set(responses)


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
