"""422 wording (service.api.messages): what a person reads, never Pydantic's internals."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.messages import describe, humanize

# Union branch labels, Pydantic's type names and its message prefixes.
INTERNALS = re.compile(
    r"constrained-|tuple\[|list\[|literal\[|function-|Value error|Input should|"
    r"EncodedImage|PixelImage|ConvolveStep|PoolStep|Assertion failed"
)

BAD = [
    ("/pool", {"size": 0}),
    ("/pool", {"size": "x"}),
    ("/pool", {"size": [1, 2, 3]}),
    ("/pool", {"size": 2.5}),
    ("/pool", {"size": 2, "stride": -1}),
    ("/pool", {"size": 100}),
    ("/pool", {"method": "median"}),
    ("/convolve", {"kernel": [["abc", 1, 1], [1, 1, 1], [1, 1, 1]]}),
    ("/convolve", {"kernel": [[1, 2], [3]]}),
    ("/convolve", {"preset": "nope"}),
    ("/convolve", {}),
    ("/convolve", {"preset": "box-3", "image": "foo"}),
    ("/convolve", {"preset": "box-3", "image": {"data": 1}}),
    ("/convolve", {"preset": "box-3", "image": {"pixels": "x"}}),
    ("/convolve", {"preset": "box-3", "colour": "gray"}),
    ("/pipeline", {"steps": [{"op": "convolve", "preset": "x"}, {"op": "pool", "size": "x"}]}),
    ("/pipeline", {"steps": [{"op": "blur"}]}),
]


def _issues(client: TestClient, path: str, body: Any, multipart: bool) -> list[dict[str, Any]]:
    if multipart:
        spec = {k: v for k, v in body.items() if k != "image"}
        response = client.post(path, files={"spec": (None, json.dumps(spec))})
    else:
        response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    issues: list[dict[str, Any]] = response.json()["detail"]
    return issues


@pytest.mark.parametrize("multipart", [False, True])
@pytest.mark.parametrize(("path", "body"), BAD)
def test_422_messages_have_no_pydantic_internals(
    client: TestClient, path: str, body: Any, multipart: bool
) -> None:
    if multipart and "image" in body:
        pytest.skip("the image is a file part in multipart")
    for issue in _issues(client, path, body, multipart):
        text = " ".join(map(str, issue["loc"])) + " " + issue["msg"]
        assert not INTERNALS.search(text), issue


def test_pool_size_union_is_one_issue_naming_both_shapes(client: TestClient) -> None:
    issues = _issues(client, "/pool", {"size": "x"}, multipart=False)
    assert issues == [
        {
            "type": issues[0]["type"],
            "loc": ["body", "size"],
            "msg": "must be an integer or a list of 2 integers, not a string",
        }
    ]
    (bound,) = _issues(client, "/pool", {"size": 0}, multipart=False)
    assert bound["loc"] == ["body", "size"]
    assert bound["msg"] == "must be ≥ 1 (an integer or a list of 2 integers)"


def test_kernel_cell_is_named_one_based(client: TestClient) -> None:
    kernel = [[1, 1, 1], [1, 1, "abc"], [1, 1, 1]]
    (issue,) = _issues(client, "/convolve", {"kernel": kernel}, multipart=False)
    assert issue["loc"] == ["body", "kernel", 1, 2]  # the JSON location stays 0-based
    assert issue["msg"] == "must be a number, not a string (row 2, column 3)"


def test_tagged_union_step_keeps_index_drops_tag(client: TestClient) -> None:
    steps = [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": "x"}]
    (issue,) = _issues(client, "/pipeline", {"steps": steps}, multipart=False)
    assert issue["loc"] == ["body", "steps", 1, "size"]


def test_image_union_picks_the_branch_the_client_meant(client: TestClient) -> None:
    body = {"preset": "box-3", "image": {"pixels": "x"}}
    (issue,) = _issues(client, "/convolve", body, multipart=False)
    assert (issue["loc"], issue["msg"]) == (["body", "image", "pixels"], "must be a list")


def test_value_error_keeps_the_validators_words(client: TestClient) -> None:
    (issue,) = _issues(client, "/convolve", {"kernel": [[1, 2], [3]]}, multipart=False)
    assert issue["msg"].startswith("kernel rows must all have the same length")


def test_unknown_field_keeps_its_name(client: TestClient) -> None:
    (issue,) = _issues(client, "/convolve", {"preset": "box-3", "colour": 1}, multipart=False)
    assert issue["loc"] == ["body", "colour"]


@pytest.mark.parametrize(
    ("label", "words"),
    [
        ("constrained-int", "an integer"),
        ("tuple[constrained-int, constrained-int]", "a list of 2 integers"),
        ("literal['ascent']", "'ascent'"),
        ("PixelImage", "an object"),
        ("list[float]", "a list of numbers"),
        ("function-after[_check(), str]", "a string"),
    ],
)
def test_describe_branch_labels(label: str, words: str) -> None:
    assert describe(label) == words


def test_humanize_never_raises_on_odd_errors() -> None:
    odd = [{"type": "weird", "loc": ("x", "Y", 0), "msg": "Value error, odd"}, {"loc": ()}]
    issues = humanize(odd)
    assert [issue["loc"][0] for issue in issues] == ["body", "body"]
