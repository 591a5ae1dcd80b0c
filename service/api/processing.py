"""The one request path every processing endpoint shares.

router -> ``read_request`` (event loop: bytes, limits, content type) -> worker thread:
``parse_spec`` -> ``resolve_image`` (decode, limits first) -> the operation (core) ->
``render`` (encode) -> ``Response``; ``Connection: close`` on it when this worker is busier than
a sibling (:mod:`service.balancing`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request, Response

from .. import processing
from ..concurrency import WorkLimiter
from ..config import Settings
from ..imaging import Decoded
from ..observability import annotate, count_connection_release
from ..schemas import OutputSpec
from .body import RawRequest, parse_spec, read_request

S = TypeVar("S", bound=OutputSpec)
CLOSE_CONNECTION = {"Connection": "close"}
Operation = Callable[[Decoded, S, Settings], Decoded]


async def handle(
    request: Request,
    settings: Settings,
    limiter: WorkLimiter,
    models: tuple[type[S], type[S]],
    operation: Operation[S],
) -> Response:
    """Read the request, run ``operation`` in a bounded worker thread, answer its encoding."""
    with limiter.admit():
        raw = await read_request(request, settings)
        body, media_type = await limiter.run(_work, raw, settings, models, operation)
        release = limiter.should_release_connection()
    if release:
        count_connection_release()
        annotate(connection="close")
    return Response(body, media_type=media_type, headers=CLOSE_CONNECTION if release else None)


def _work(
    raw: RawRequest,
    settings: Settings,
    models: tuple[type[S], type[S]],
    operation: Operation[S],
) -> tuple[bytes, str]:
    spec, ref, upload = parse_spec(raw, models[0], models[1], settings)
    image = processing.resolve_image(ref, upload, settings)
    annotate(image=f"{image.width}x{image.height}x{image.channels}")
    result = operation(image, spec, settings)
    del image  # the decoded input is not needed for the encode: its memory can go first
    return processing.render(result, spec.format, settings)
