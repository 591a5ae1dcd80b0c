"""OpenAPI ``responses`` shared by the routers: the result media types and every error.

Response headers are declared once under ``components/headers`` (``HEADERS``, published by
``service.main``) and referenced here.
"""

from __future__ import annotations

from typing import Any

from ..schemas import ErrorMessage, ValidationErrorMessage

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: the caller's `X-Request-ID` if it sent a valid one, "
        "else a new one. Logged with the request.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before sending more work.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with: `Bearer`.",
        "schema": {"type": "string"},
    },
    "Vary": {
        "description": "`Accept`: the answer's media type depends on it.",
        "schema": {"type": "string"},
    },
}


def _headers(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in ("X-Request-ID", *names)}


_BINARY = {"type": "string", "format": "binary"}
_RESULT_CONTENT: dict[str, dict[str, Any]] = {
    "image/png": {"schema": _BINARY},
    "application/x-npy": {"schema": _BINARY},
    "application/json": {"schema": {"$ref": "#/components/schemas/ArrayResult"}},
}
_RESULT_DESCRIPTIONS = {
    "image/png": "a PNG (8-bit L, LA, RGB or RGBA as the input was)",
    "application/x-npy": "a NumPy .npy file (`np.load`): uint8, or float32 after `scale: raw`",
    "application/json": "the array and its statistics",
}


def _error(description: str, example: str, *headers: str) -> dict[str, Any]:
    return {
        "model": ErrorMessage,
        "description": description,
        "headers": _headers(*headers),
        "content": {"application/json": {"example": {"detail": example}}},
    }


UNPROCESSABLE: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ValidationErrorMessage,
        "description": "The request is invalid; `loc` says where, `msg` what.",
        "headers": _headers(),
        "content": {
            "application/json": {
                "example": {
                    "detail": [
                        {
                            "type": "value_error",
                            "loc": ["body"],
                            "msg": "give exactly one of `kernel` and `preset`",
                        }
                    ]
                }
            }
        },
    }
}

ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error(
        "The bytes are not a decodable image.",
        "the bytes are not an image in a supported format (BMP, GIF, JPEG, PNG, TIFF, WEBP)",
    ),
    401: _error(
        "API keys are configured: none or a wrong one was sent.",
        "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
        "WWW-Authenticate",
    ),
    406: _error(
        "The `Accept` header allows none of the media types this operation answers.",
        "the Accept header ('image/gif') allows none of the media types this operation "
        "answers: image/png, application/x-npy",
    ),
    408: _error(
        "The body did not arrive within the body timeout (`Connection: close`).",
        "the request body did not arrive within 30 s (1024 bytes received)",
    ),
    413: _error(
        "Body over the byte limit, or image over the pixel limit.",
        "the request body exceeds the limit of 26214400 bytes",
    ),
    415: _error(
        "Content type or image format not accepted.",
        "content type 'text/plain' is not accepted here; send application/json",
    ),
    **UNPROCESSABLE,
    503: _error(
        "Too much work in flight; retry after `Retry-After` seconds.",
        "the service is at its limit of concurrent work; retry shortly",
        "Retry-After",
    ),
    504: _error(
        "Processing took longer than the timeout.",
        "processing took longer than 30 s and was abandoned",
    ),
}


def processing_responses(answers: tuple[str, ...]) -> dict[int | str, dict[str, Any]]:
    """The responses of a processing operation that answers the media types ``answers``."""
    described = " or ".join(_RESULT_DESCRIPTIONS[media] for media in answers)
    choice = " (`Accept` picks; else the spec's `format`)" if len(answers) > 1 else ""
    return {
        200: {
            "description": f"The result: {described}{choice}.",
            "headers": _headers("Vary"),
            "content": {media: _RESULT_CONTENT[media] for media in answers},
        },
        **ERRORS,
    }


def ok(description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 with the ``X-Request-ID`` header, for the small GET operations."""
    return {200: {"description": description, "headers": _headers()}}
