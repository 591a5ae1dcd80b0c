"""OpenAPI ``responses`` shared by the routers: the result media types and every error."""

from __future__ import annotations

from typing import Any

from ..schemas import ArrayResult, ErrorMessage, ValidationErrorMessage

RESULT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The result: a PNG (8-bit L, LA, RGB or RGBA as the input was) or, with "
        '`"format": "json"`, the array and its statistics.',
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/ArrayResult"}},
        },
    }
}

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "The bytes are not a decodable image."},
    401: {"model": ErrorMessage, "description": "API keys are configured: none or a wrong one."},
    408: {
        "model": ErrorMessage,
        "description": "The body did not arrive within the body timeout (`Connection: close`).",
    },
    413: {
        "model": ErrorMessage,
        "description": "Body over the byte limit, or image over the pixel limit.",
    },
    415: {"model": ErrorMessage, "description": "Content type or image format not accepted."},
    422: {"model": ValidationErrorMessage, "description": "The spec is invalid; `loc` says where."},
    503: {
        "model": ErrorMessage,
        "description": "Too much work in flight; retry after `Retry-After`.",
    },
    504: {"model": ErrorMessage, "description": "Processing took longer than the timeout."},
}

PROCESSING: dict[int | str, dict[str, Any]] = {**RESULT, **ERRORS}

__all__ = ["ERRORS", "PROCESSING", "RESULT", "ArrayResult"]
