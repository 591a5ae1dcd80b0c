"""Reading a processing request: one spec, two encodings (JSON or multipart), limits first.

``read_request`` runs on the event loop and only moves bytes: it refuses a body over
``max_upload_bytes`` while it streams in (before reading it all when ``Content-Length`` says
so) or one that takes longer than ``body_timeout_s`` to arrive (408: a slow sender would
otherwise hold one of the worker's admissions indefinitely), checks the content type and, for
multipart, separates the ``image`` file part from the ``spec`` text part. Validating the spec
(CPU work for large ``pixels`` arrays) happens later in the worker thread via ``parse_spec``.
``request_body_openapi`` documents both encodings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from ..config import Settings
from ..errors import StorageFullError
from ..runtime.observability import count_rejection
from ..schemas import ImageRef, OutputSpec, validation_context
from .errors import (
    BodyTimeoutError,
    BodyTooLargeError,
    MalformedBodyError,
    SpecValidationError,
    UnsupportedContentTypeError,
)

S = TypeVar("S", bound=OutputSpec)

JSON = "application/json"
MULTIPART = "multipart/form-data"


@dataclass(frozen=True, slots=True)
class RawRequest:
    """The request's bytes, sorted: a JSON body, or a multipart ``spec`` text and ``image``."""

    json_body: bytes | None = None
    spec_text: str | None = None
    upload: bytes | None = None


async def _read_limited(request: Request, limit: int, timeout: float) -> bytes:
    declared = request.headers.get("content-length")
    # isascii: str.isdigit() is also true for "²" or "٣", which int() refuses (a 500).
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        _reject_size(limit)
    chunks: list[bytes] = []
    total = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    _reject_size(limit)
                chunks.append(chunk)
    except TimeoutError:
        count_rejection("slow_body")
        raise BodyTimeoutError(
            f"the request body did not arrive within {timeout:g} s ({total} bytes received)"
        ) from None
    return b"".join(chunks)


def _reject_size(limit: int) -> None:
    count_rejection("too_many_bytes")
    raise BodyTooLargeError(f"the request body exceeds the limit of {limit} bytes")


async def read_request(
    request: Request, settings: Settings, encodings: tuple[str, ...] = (JSON, MULTIPART)
) -> RawRequest:
    """Read and sort the body; 413 over the byte limit, 415 for another content type.

    ``encodings`` are the request content types the operation takes (``JSON`` also covers
    ``*/*+json``).
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = media_type == JSON or media_type.endswith("+json")
    is_multipart = media_type == MULTIPART
    if not ((is_json and JSON in encodings) or (is_multipart and MULTIPART in encodings)):
        wanted = " or ".join(encodings)
        if not media_type:
            raise UnsupportedContentTypeError(f"no Content-Type: send the spec as {wanted}")
        raise UnsupportedContentTypeError(
            f"content type {media_type!r} is not accepted here; send {wanted}"
        )
    body = await _read_limited(request, settings.max_upload_bytes, settings.body_timeout_s)
    if media_type != MULTIPART:
        if not body.strip():
            raise MalformedBodyError((), "the request body is empty; send a JSON spec")
        return RawRequest(json_body=body)
    return await _read_multipart(request, body)


async def _read_multipart(request: Request, body: bytes) -> RawRequest:
    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    replayed = Request(request.scope, receive=replay)
    try:
        form = await replayed.form(max_files=2, max_fields=4)
    except OSError as exc:  # spooling the parts to the temporary directory failed: ours
        raise StorageFullError from exc
    except Exception as exc:  # python-multipart and Starlette raise several types
        raise MalformedBodyError((), f"the multipart body cannot be parsed: {exc}") from exc
    try:
        unexpected = sorted(set(form.keys()) - {"image", "spec"})
        if unexpected:
            raise MalformedBodyError(
                (unexpected[0],),
                f"unexpected form field {unexpected[0]!r}; the parts are `image` (file) and "
                "`spec` (JSON text)",
            )
        spec = form.get("spec")
        if spec is None:
            raise MalformedBodyError(
                ("spec",), "the multipart body needs a `spec` part (JSON text)"
            )
        if isinstance(spec, UploadFile):
            spec = await _json_part(spec)
        image = form.get("image")
        upload: bytes | None = None
        # An empty part without a file name (Swagger UI's "Send empty value") means no image.
        if isinstance(image, UploadFile):
            upload = await image.read()
            if not upload and not image.filename:
                upload = None
        elif isinstance(image, str) and image:
            raise MalformedBodyError(("image",), "`image` must be a file part")
        return RawRequest(spec_text=spec, upload=upload)
    finally:
        await form.close()


async def _json_part(part: UploadFile) -> str:
    """A ``spec`` part sent with a file name (Swagger UI sends a JSON Blob): JSON text only."""
    media_type = (part.content_type or "").split(";")[0].strip().lower()
    if media_type != JSON and not media_type.endswith("+json"):
        raise MalformedBodyError(
            ("spec",), "`spec` must be a text part or an application/json part, not a file"
        )
    try:
        return (await part.read()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBodyError(("spec",), "the `spec` part is not UTF-8 text") from exc


def parse_spec(
    raw: RawRequest, request_model: type[S], spec_model: type[S], settings: Settings
) -> tuple[S, ImageRef, bytes | None]:
    """Validate the spec (in a worker thread); returns (spec, image reference, uploaded bytes).

    A JSON body is a ``request_model`` (the spec plus ``image``); a multipart ``spec`` part is a
    ``spec_model`` (no ``image``), and the ``image`` file part's bytes, if any, are the image.
    """
    context = validation_context(settings)
    if raw.json_body is not None:
        request = request_model.model_validate_json(raw.json_body, context=context)
        return request, getattr(request, "image", "ascent"), None
    try:
        spec = spec_model.model_validate_json(raw.spec_text or "", context=context)
    except ValidationError as exc:
        raise SpecValidationError(exc) from exc
    return spec, "ascent", raw.upload


# --- OpenAPI -------------------------------------------------------------------------------


def request_body_openapi(
    model: type[BaseModel],
    encoding: str,
    examples: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """``openapi_extra`` documenting one encoding of a spec, with worked examples.

    ``JSON``: the body is a ``model`` (the spec plus ``image``). ``MULTIPART``: an ``image``
    file part (omitted: ascent) and a ``spec`` part holding a ``model`` (the spec without
    ``image``) as JSON text.
    """
    reference = {"$ref": f"#/components/schemas/{model.__name__}"}
    if encoding == JSON:
        return {
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": reference, "examples": examples}},
            }
        }
    multipart_examples = {
        name: {
            "summary": example["summary"],
            "value": {"spec": {k: v for k, v in example["value"].items() if k != "image"}},
        }
        for name, example in examples.items()
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                MULTIPART: {
                    "schema": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "image": {
                                "type": "string",
                                "format": "binary",
                                "description": "The image file (PNG, JPEG, WebP, BMP, TIFF, GIF)."
                                " Omitted or empty: ascent.",
                            },
                            "spec": {
                                **reference,
                                "description": f"The `{model.__name__}` as JSON text "
                                "(the JSON spec without `image`).",
                            },
                        },
                    },
                    "encoding": {"spec": {"contentType": JSON}},
                    "examples": multipart_examples,
                },
            },
        }
    }
