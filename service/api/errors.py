"""HTTP errors, and the one table that answers every error of every layer.

Errors only the HTTP layer raises (about the request itself, not its spec or image):

    HttpError                       base: ``message``
    ├── AuthenticationError         API keys are configured and the request has none or a wrong one
    ├── NotAcceptableError          ``Accept`` allows none of the operation's answers
    ├── BodyTimeoutError            the body did not arrive within ``body_timeout_s``
    ├── BodyTooLargeError           the body exceeds ``max_upload_bytes``
    ├── UnsupportedContentTypeError a request content type the operation does not take
    ├── MalformedBodyError          an empty body, or a multipart body not shaped as documented;
    │                               ``path`` is relative to the body (``("spec",)``)
    └── SpecValidationError         the multipart ``spec`` part failed validation (``error``)

``ANSWERS`` maps each class of each layer to its answer; ``add_error_handlers`` registers it.
Every answer is JSON: ``{"detail": "..."}``, or FastAPI's 422 shape
``{"detail": [{"type", "loc", "msg"}]}`` with ``loc`` under ``"body"`` (the multipart
``spec`` part's issues under ``"body", "spec"``):

    ====================================  ======  =====================================
    class (layer)                         status  headers; ``loc``
    ====================================  ======  =====================================
    CoreError (core)                      422     ``["body", param]``
    UndecodableImageError (domain)        400
    UnsupportedImageFormatError (domain)  415
    ImageTooLargeError (domain)           413
    InvalidSpecError (domain)             422     ``["body", *path]``
    OverloadedError (runtime)             503     ``Retry-After: retry_after``
    StorageFullError (runtime)            503     ``Retry-After: 1``
    ProcessingTimeoutError (runtime)      504
    AuthenticationError                   401     ``WWW-Authenticate: Bearer``
    NotAcceptableError                    406
    BodyTimeoutError                      408     ``Connection: close`` (the rest of the
                                                  body may still be on its way)
    BodyTooLargeError                     413
    UnsupportedContentTypeError           415
    MalformedBodyError                    422     ``["body", *path]``
    SpecValidationError                   422     ``["body", "spec", ...]``
    pydantic ValidationError (JSON body)  422     ``["body", ...]``
    RequestValidationError (FastAPI)      422     FastAPI's own ``loc``
    ====================================  ======  =====================================

Handlers sit on these classes; Starlette (and ``answer``) finds the entry by walking the
exception's MRO, so a subclass is answered as its nearest listed base. No entry for bare
``ValueError``: an unexpected one is a bug and must surface as a 500 in tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core.errors import CoreError
from ..errors import (
    ImageTooLargeError,
    InputError,
    InvalidSpecError,
    OverloadedError,
    ProcessingTimeoutError,
    RuntimeLimitError,
    ServiceError,
    StorageFullError,
    UndecodableImageError,
    UnsupportedImageFormatError,
)
from . import messages

Loc = tuple[str | int, ...]


class HttpError(Exception):
    """Base of the errors about the HTTP request itself; ``message`` is what the person is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationError(HttpError):
    """Raised when API keys are configured and the request carries none or a wrong one."""


class NotAcceptableError(HttpError):
    """Raised when ``Accept`` allows none of the media types an operation answers."""


class BodyTimeoutError(HttpError):
    """Raised when the request body does not arrive within ``body_timeout_s``."""


class BodyTooLargeError(HttpError):
    """Raised when the request body exceeds ``max_upload_bytes``."""


class UnsupportedContentTypeError(HttpError):
    """Raised for a request content type the operation does not accept (or none)."""


class MalformedBodyError(HttpError):
    """Raised for an empty body or a multipart body not shaped as documented.

    ``path`` is relative to the body: ``()`` for the whole body, ``("spec",)`` for a part.
    """

    def __init__(self, path: Loc, message: str) -> None:
        super().__init__(message)
        self.path = path


class SpecValidationError(HttpError):
    """A Pydantic ``ValidationError`` of the multipart ``spec`` part (answered under ``spec``)."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(str(error))
        self.error = error


# --- the answers -------------------------------------------------------------------------

BODY: Loc = ("body",)
SPEC_PART: Loc = ("body", "spec")


@dataclass(frozen=True, slots=True)
class Answer:
    """How one error class is answered: its status, its JSON body and its extra headers."""

    status: int
    body: Callable[[Any], dict[str, Any]]
    headers: Callable[[Any], dict[str, str]] | None = None


def _detail(exc: ServiceError | HttpError) -> dict[str, Any]:
    return {"detail": exc.message}


def _issue(loc: Loc, message: str) -> dict[str, Any]:
    return {"detail": [{"type": "value_error", "loc": list(loc), "msg": message}]}


def _core_issue(exc: CoreError) -> dict[str, Any]:
    return _issue((*BODY, exc.param), exc.message)


def _located_issue(exc: InvalidSpecError | MalformedBodyError) -> dict[str, Any]:
    return _issue((*BODY, *exc.path), exc.message)


def validation_issues(error: ValidationError, prefix: Loc = BODY) -> list[dict[str, Any]]:
    """A Pydantic error's issues as the API words them (``messages.humanize``), under ``prefix``."""
    return messages.humanize(error.errors(include_url=False, include_input=False), prefix)


def _body_issues(exc: ValidationError) -> dict[str, Any]:
    return {"detail": validation_issues(exc)}


def _spec_part_issues(exc: SpecValidationError) -> dict[str, Any]:
    return {"detail": validation_issues(exc.error, SPEC_PART)}


def _request_issues(exc: RequestValidationError) -> dict[str, Any]:
    issues = [
        {"type": issue["type"], "loc": list(issue["loc"]), "msg": issue["msg"]}
        for issue in exc.errors()
    ]
    return {"detail": issues}


def _retry_after(exc: OverloadedError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)}


def _retry_soon(_: StorageFullError) -> dict[str, str]:
    return {"Retry-After": "1"}


def _bearer(_: AuthenticationError) -> dict[str, str]:
    return {"WWW-Authenticate": "Bearer"}


def _close(_: BodyTimeoutError) -> dict[str, str]:
    return {"Connection": "close"}


ANSWERS: dict[type[Exception], Answer] = {
    # core
    CoreError: Answer(422, _core_issue),
    # domain
    UndecodableImageError: Answer(400, _detail),
    UnsupportedImageFormatError: Answer(415, _detail),
    ImageTooLargeError: Answer(413, _detail),
    InvalidSpecError: Answer(422, _located_issue),
    # runtime limits
    OverloadedError: Answer(503, _detail, _retry_after),
    StorageFullError: Answer(503, _detail, _retry_soon),
    ProcessingTimeoutError: Answer(504, _detail),
    # HTTP
    AuthenticationError: Answer(401, _detail, _bearer),
    NotAcceptableError: Answer(406, _detail),
    BodyTimeoutError: Answer(408, _detail, _close),
    BodyTooLargeError: Answer(413, _detail),
    UnsupportedContentTypeError: Answer(415, _detail),
    MalformedBodyError: Answer(422, _located_issue),
    SpecValidationError: Answer(422, _spec_part_issues),
    # libraries
    ValidationError: Answer(422, _body_issues),
    RequestValidationError: Answer(422, _request_issues),
}

BASES: frozenset[type[Exception]] = frozenset(
    {ServiceError, InputError, RuntimeLimitError, HttpError}
)
"""Classes never raised themselves: no entry, so a new subclass needs its own."""


def answer_for(kind: type[BaseException]) -> Answer | None:
    """The ``ANSWERS`` entry of ``kind``'s nearest listed class (its MRO), if any."""
    for cls in kind.__mro__:
        if cls in ANSWERS:
            return ANSWERS[cls]
    return None


def answer(exc: Exception) -> JSONResponse:
    """The JSON response for ``exc``; a ``LookupError`` if no ``ANSWERS`` entry covers it."""
    found = answer_for(type(exc))
    if found is None:
        raise LookupError(f"no answer for {type(exc).__name__}")
    headers = found.headers(exc) if found.headers else None
    return JSONResponse(found.body(exc), status_code=found.status, headers=headers)


async def _handle(_: Request, exc: Exception) -> Response:
    return answer(exc)


def add_error_handlers(app: FastAPI) -> None:
    """Answer every class in ``ANSWERS`` (and its subclasses) as the table says."""
    for kind in ANSWERS:
        app.add_exception_handler(kind, _handle)
