"""``POST /pool``: max, average or min pooling."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from .. import processing
from ..schemas import PoolRequest, PoolSpec
from .body import request_body_openapi
from .deps import SettingsDep, WorkLimiterDep
from .processing import handle
from .responses import PROCESSING

router = APIRouter(prefix="/pool", tags=["pool"])

EXAMPLES = {
    "max-2x2": {
        "summary": "The lesson's 2x2 max pooling of ascent (512x512 -> 256x256)",
        "value": {"image": "ascent", "method": "max", "size": 2},
    },
    "avg-3x3-partial": {
        "summary": "3x3 average every 2 pixels, partial windows kept, as JSON",
        "value": {
            "image": {"pixels": [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90, 100, 110]]},
            "method": "avg",
            "size": 3,
            "stride": 2,
            "edge": "partial",
            "format": "json",
        },
    },
}


@router.post(
    "",
    summary="Pool an image (max, avg or min)",
    response_class=Response,
    responses=PROCESSING,
    openapi_extra=request_body_openapi(PoolRequest, PoolSpec, EXAMPLES),
)
async def pool(request: Request, settings: SettingsDep, limiter: WorkLimiterDep) -> Response:
    """Reduce each `size` window, every `stride` pixels, to its max, mean or min.

    `edge: drop` keeps only the windows that fit; `partial` also reduces the windows that run
    off the bottom/right edge over the pixels they cover.
    """
    return await handle(request, settings, limiter, (PoolRequest, PoolSpec), processing.pool_image)
