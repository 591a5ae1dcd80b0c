"""``POST /pipeline``: the lesson's whole flow (convolve, then pool) in one call."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from .. import processing
from ..config import Settings
from ..imaging import Decoded
from ..schemas import PipelineRequest, PipelineSpec
from .body import request_body_openapi
from .deps import SettingsDep, WorkLimiterDep
from .processing import handle
from .responses import PROCESSING

router = APIRouter(prefix="/pipeline", tags=["pipeline"])

EXAMPLES = {
    "lesson": {
        "summary": "The lesson: sobel-x on ascent, then 2x2 max pooling (256x256 out)",
        "value": {
            "image": "ascent",
            "steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}],
            "format": "png",
        },
    },
    "codelab": {
        "summary": "The lesson's loop (codelab mode, its default filter) then 2x2 max",
        "value": {
            "image": "ascent",
            "steps": [
                {
                    "op": "convolve",
                    "kernel": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
                    "mode": "codelab",
                },
                {"op": "pool", "size": 2},
            ],
        },
    },
    "laplacian-raw": {
        "summary": "Laplacian kept as float32 (raw) into a 2x2 max, mapped to 0..255",
        "value": {
            "image": "ascent",
            "steps": [
                {"op": "convolve", "preset": "laplacian", "scale": "raw"},
                {"op": "pool", "size": 2, "scale": "normalize"},
            ],
        },
    },
}


def _run(image: Decoded, spec: PipelineSpec, settings: Settings) -> Decoded:
    return processing.run_steps(image, spec.steps, settings)


@router.post(
    "",
    summary="Run convolve/pool steps in order",
    response_class=Response,
    responses=PROCESSING,
    openapi_extra=request_body_openapi(PipelineRequest, PipelineSpec, EXAMPLES),
)
async def pipeline(request: Request, settings: SettingsDep, limiter: WorkLimiterDep) -> Response:
    """Run the steps in order, each on the previous one's 8-bit output (float32 after `raw`)."""
    return await handle(request, settings, limiter, (PipelineRequest, PipelineSpec), _run)
