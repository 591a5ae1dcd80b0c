"""One error hierarchy per layer, answered in one place (``service.api.errors.ANSWERS``)."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel, ValidationError

import service
from service import errors as domain
from service.api import errors as http
from service.core import errors as core

LAYERS = (core, domain, http)
SERVICE = Path(service.__file__).parent


def _error_classes(module: ModuleType) -> list[type[Exception]]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == module.__name__
    ]


ERROR_CLASSES = [cls for module in LAYERS for cls in _error_classes(module)]


def test_error_modules_define_the_expected_classes() -> None:
    """Guards the test below against finding no class at all."""
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert {"CoreError", "InvalidSpecError", "OverloadedError", "MalformedBodyError"} <= names
    assert len(ERROR_CLASSES) >= 20


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_has_an_answer(cls: type[Exception]) -> None:
    if cls in http.BASES:
        assert cls not in http.ANSWERS  # a base is never answered itself ...
        subclasses = [
            other for other in ERROR_CLASSES if other is not cls and issubclass(other, cls)
        ]
        assert subclasses  # ... and exists only to group its subclasses
    else:
        assert http.answer_for(cls) is not None, f"add {cls.__name__} to ANSWERS"


def test_a_new_class_under_a_base_has_no_answer_until_listed() -> None:
    for base in http.BASES:
        assert http.answer_for(type("NewError", (base,), {})) is None
    with pytest.raises(LookupError, match="NewError"):
        http.answer(type("NewError", (domain.InputError,), {})("message"))


def test_the_table_lists_only_exceptions_and_no_bare_value_error() -> None:
    assert ValueError not in http.ANSWERS
    assert Exception not in http.ANSWERS
    assert http.answer_for(ValueError) is None


def _answer(error: Exception) -> tuple[int, dict[str, str], object]:
    response = http.answer(error)
    headers = {
        k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")
    }
    return response.status_code, headers, json.loads(response.body)


def _issue(loc: list[str | int], msg: str) -> dict[str, object]:
    return {"detail": [{"type": "value_error", "loc": loc, "msg": msg}]}


class _Spec(BaseModel):
    size: int


def _validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Spec.model_validate({"size": "x"})
    return caught.value


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (core.KernelError("kernel", "bad"), (422, {}, _issue(["body", "kernel"], "bad"))),
        (domain.UndecodableImageError("m"), (400, {}, {"detail": "m"})),
        (domain.UnsupportedImageFormatError("m"), (415, {}, {"detail": "m"})),
        (domain.ImageTooLargeError("m"), (413, {}, {"detail": "m"})),
        (
            domain.InvalidSpecError(("steps", 1, "size"), "m"),
            (422, {}, _issue(["body", "steps", 1, "size"], "m")),
        ),
        (domain.InvalidSpecError((), "m"), (422, {}, _issue(["body"], "m"))),
        (
            domain.ResultTooLargeError(5, 4),
            (422, {}, _issue(["body", "format"], domain.ResultTooLargeError(5, 4).message)),
        ),
        (domain.OverloadedError("m", retry_after=3), (503, {"retry-after": "3"}, {"detail": "m"})),
        (
            domain.StorageFullError(),
            (
                503,
                {"retry-after": "1"},
                {"detail": "no room to receive the upload right now; retry later"},
            ),
        ),
        (domain.ProcessingTimeoutError("m"), (504, {}, {"detail": "m"})),
        (
            http.AuthenticationError("m"),
            (401, {"www-authenticate": "Bearer"}, {"detail": "m"}),
        ),
        (http.NotAcceptableError("m"), (406, {}, {"detail": "m"})),
        (http.BodyTimeoutError("m"), (408, {"connection": "close"}, {"detail": "m"})),
        (http.BodyTooLargeError("m"), (413, {}, {"detail": "m"})),
        (http.UnsupportedContentTypeError("m"), (415, {}, {"detail": "m"})),
        (http.MalformedBodyError(("spec",), "m"), (422, {}, _issue(["body", "spec"], "m"))),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_answer_status_headers_and_body(
    error: Exception, expected: tuple[int, dict[str, str], object]
) -> None:
    assert _answer(error) == expected


def test_validation_errors_are_located_under_body_or_the_spec_part() -> None:
    error = _validation_error()
    status, headers, body = _answer(error)
    assert (status, headers) == (422, {})
    assert isinstance(body, dict)
    assert [issue["loc"] for issue in body["detail"]] == [["body", "size"]]
    status, _, body = _answer(http.SpecValidationError(error))
    assert status == 422
    assert isinstance(body, dict)
    assert [issue["loc"] for issue in body["detail"]] == [["body", "spec", "size"]]


# --- no HTTP outside service/api ----------------------------------------------------------

_HTTP_NAMES = frozenset({"HTTPException", "HTTPStatus", "status"})
_HTTP_MODULES = ("fastapi", "starlette", "http")


def _http_imports(path: Path) -> list[str]:
    """``HTTPException``, ``HTTPStatus`` or a ``status`` module imported by ``path``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in _HTTP_MODULES:
                if node.module.endswith(".status") or node.module.endswith(".exceptions"):
                    found.append(node.module)
                found += [f"{node.module}.{a.name}" for a in node.names if a.name in _HTTP_NAMES]
        elif isinstance(node, ast.Import):
            found += [
                a.name
                for a in node.names
                if a.name.split(".")[0] in _HTTP_MODULES
                and a.name.endswith((".status", ".exceptions"))
            ]
    return found


def _outside_api() -> list[Path]:
    api = SERVICE / "api"
    return sorted(p for p in SERVICE.rglob("*.py") if api not in p.parents)


def test_no_module_outside_api_imports_http_status_or_exceptions() -> None:
    modules = _outside_api()
    assert SERVICE / "errors.py" in modules
    assert SERVICE / "main.py" in modules
    offenders = {str(p.relative_to(SERVICE)): found for p in modules if (found := _http_imports(p))}
    assert offenders == {}


def test_the_http_import_check_sees_what_it_bans(tmp_path: Path) -> None:
    source = tmp_path / "bad.py"
    for line in (
        "from fastapi import HTTPException",
        "from starlette.exceptions import HTTPException",
        "from fastapi import status",
        "import starlette.status",
        "from http import HTTPStatus",
    ):
        source.write_text(line + "\n")
        assert _http_imports(source), line
    source.write_text("from fastapi import FastAPI\nimport http.client\n")
    assert _http_imports(source) == []


def test_domain_and_core_errors_import_no_web_framework() -> None:
    for module in (core, domain):
        tree = ast.parse(Path(module.__file__ or "").read_text())
        imported = {
            (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert not {name for name in imported if name.split(".")[0] in _HTTP_MODULES}
