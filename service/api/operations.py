"""The routes of every registry operation (``service.ops``) and the request path they share.

router -> ``acceptable`` (406 before the body is read) -> ``read_request`` (event loop: bytes,
limits, content type) -> worker thread: ``parse_spec`` -> the answer's media type (``Accept``,
then the spec's ``format``) -> ``resolve_image`` (decode, limits first) -> the operation (core)
-> ``render`` (encode) -> ``Response``; ``Connection: close`` on it when this worker is busier
than a sibling (:mod:`service.runtime.balancing`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response

from .. import processing
from ..config import Settings
from ..errors import InvalidSpecError
from ..imaging import Decoded
from ..ops import OPERATIONS, Operation
from ..runtime.limiter import WorkLimiter
from ..runtime.observability import annotate, count_connection_release
from ..schemas import MEDIA_TYPES, OperationInfo, OutputFormat, OutputSpec
from .body import JSON, MULTIPART, RawRequest, parse_spec, read_request, request_body_openapi
from .deps import SettingsDep, WorkLimiterDep
from .negotiation import acceptable, allows, choose
from .responses import ok, processing_responses
from .security import require_api_key

S = TypeVar("S", bound=OutputSpec)
CLOSE_CONNECTION = {"Connection": "close"}
Runner = Callable[[Decoded, S, Settings], Decoded]
FORMATS: dict[str, OutputFormat] = {media: fmt for fmt, media in MEDIA_TYPES.items()}


@dataclass(frozen=True, slots=True)
class Variant:
    """One documented operation of an endpoint: its path suffix, request and answer types."""

    suffix: str
    operation_suffix: str
    encodings: tuple[str, ...]
    answers: tuple[str, ...]
    legacy_json: bool = False
    """``format: json`` answers JSON (the endpoint's behaviour before the split)."""


BINARY_ANSWERS = (MEDIA_TYPES["png"], MEDIA_TYPES["npy"])
JSON_ANSWER = (MEDIA_TYPES["json"],)

VARIANTS = (
    # The endpoint itself also takes multipart and answers JSON for `format: json`, as it
    # always has; its document shows the JSON body and the binary answers, so that every
    # generator gets one request and one answer type per method.
    Variant("", "", (JSON, MULTIPART), BINARY_ANSWERS, legacy_json=True),
    Variant("/array", "Array", (JSON,), JSON_ANSWER),
    Variant("/upload", "Upload", (MULTIPART,), BINARY_ANSWERS),
)


async def handle(
    request: Request,
    settings: Settings,
    limiter: WorkLimiter,
    models: tuple[type[S], type[S]],
    operation: Runner[S],
    variant: Variant,
) -> Response:
    """Read the request, run ``operation`` in a bounded worker thread, answer its encoding."""
    accept = request.headers.get("accept")
    candidates = acceptable(accept, variant.answers)
    if variant.legacy_json and allows(accept, MEDIA_TYPES["json"]):
        candidates = (*candidates, MEDIA_TYPES["json"])
    with limiter.admit():
        raw = await read_request(request, settings, variant.encodings)
        body, media_type = await limiter.run(_work, raw, settings, models, operation, candidates)
        release = limiter.should_release_connection()
    if release:
        count_connection_release()
        annotate(connection="close")
    headers = {"Vary": "Accept", **(CLOSE_CONNECTION if release else {})}
    return Response(body, media_type=media_type, headers=headers)


def _work(
    raw: RawRequest,
    settings: Settings,
    models: tuple[type[S], type[S]],
    operation: Runner[S],
    candidates: tuple[str, ...],
) -> tuple[bytes, str]:
    spec, ref, upload = parse_spec(raw, models[0], models[1], settings)
    media_type = choose(candidates, MEDIA_TYPES[spec.format])
    scale, path = spec.output_scale()
    if scale == "raw" and media_type == MEDIA_TYPES["png"]:
        raise InvalidSpecError(
            path,
            "`scale: raw` gives float32 values, which a PNG cannot carry: ask for JSON "
            "(`format: json`, or the `/array` operation) or .npy (`format: npy` or "
            "`Accept: application/x-npy`)",
        )
    image = processing.resolve_image(ref, upload, settings)
    annotate(image=f"{image.width}x{image.height}x{image.channels}")
    result = operation(image, spec, settings)
    del image  # the decoded input is not needed for the encode: its memory can go first
    return processing.render(result, FORMATS[media_type], settings)


def operation_router(operation: Operation[Any]) -> APIRouter:
    """The operation's routes: one ``POST`` per ``VARIANTS`` entry, each with one encoding.

    Paths ``/<name>``, ``/<name>/array`` and ``/<name>/upload``; operationIds ``<name>``,
    ``<name>Array`` and ``<name>Upload``; tagged ``<name>``; API keys required when set.
    """
    router = APIRouter(
        prefix=operation.path, tags=[operation.name], dependencies=[Depends(require_api_key)]
    )
    models = (operation.request, operation.spec)
    for variant in VARIANTS:
        encoding = variant.encodings[0]
        model = models[0] if encoding == JSON else models[1]
        examples = dict(
            operation.array_examples if variant.answers == JSON_ANSWER else operation.examples
        )
        router.add_api_route(
            variant.suffix,
            _endpoint(models, operation.run, variant),
            methods=["POST"],
            name=f"{operation.name}{variant.operation_suffix}",
            operation_id=f"{operation.name}{variant.operation_suffix}",
            summary=operation.summary + _SUMMARIES[variant.operation_suffix],
            description=operation.description + _DESCRIPTIONS[variant.operation_suffix],
            response_class=Response,
            responses=processing_responses(variant.answers),
            openapi_extra=request_body_openapi(model, encoding, examples),
        )
    return router


def routers() -> list[APIRouter]:
    """Every registry operation's router, in the registry's order, then ``GET /operations``."""
    listing = APIRouter(tags=["meta"])
    listing.add_api_route(
        "/operations",
        list_operations,
        methods=["GET"],
        summary="List the operations",
        operation_id="listOperations",
        responses=ok("Every operation, in the order the documents list them."),
    )
    return [*(operation_router(operation) for operation in OPERATIONS.values()), listing]


@cache  # the registry is fixed once imported: the list (and its JSON Schemas) is built once
def list_operations() -> list[OperationInfo]:
    """Every operation: its name, path, summary, whether it is a pipeline step, its spec schema."""
    return [
        OperationInfo(
            name=operation.name,
            path=operation.path,
            summary=operation.summary,
            description=operation.description,
            step=operation.step,
            spec=operation.schema,
        )
        for operation in OPERATIONS.values()
    ]


_SUMMARIES = {"": "", "Array": " (JSON array answer)", "Upload": " (uploaded image file)"}
_DESCRIPTIONS = {
    "": "\n\nThe body is the JSON spec; the answer is PNG or, with `Accept: application/x-npy` "
    "(or `format: npy`), a NumPy .npy file. Kept for existing callers and not shown here: this "
    "path also takes the multipart body of `/upload`, and answers the JSON of `/array` for "
    "`format: json`.",
    "Array": "\n\nThe body is the JSON spec; the answer is the JSON array and its statistics.",
    "Upload": "\n\nThe body is multipart: an `image` file part (omitted: ascent) and a `spec` "
    "part (JSON text, the spec without `image`); the answer is PNG or, with "
    "`Accept: application/x-npy` (or `format: npy`), a NumPy .npy file.",
}


def _endpoint(
    models: tuple[type[S], type[S]], operation: Runner[S], variant: Variant
) -> Callable[..., Awaitable[Response]]:
    async def endpoint(
        request: Request, settings: SettingsDep, limiter: WorkLimiterDep
    ) -> Response:
        return await handle(request, settings, limiter, models, operation, variant)

    return endpoint
