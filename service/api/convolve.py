"""``POST /convolve``: a kernel and a weight applied to an image."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from .. import processing
from ..schemas import ConvolveRequest, ConvolveSpec
from .body import request_body_openapi
from .deps import SettingsDep, WorkLimiterDep
from .processing import handle
from .responses import PROCESSING

router = APIRouter(prefix="/convolve", tags=["convolve"])

EXAMPLES = {
    "sobel-y": {
        "summary": "Ascent, the lesson's default [-1,-2,-1; 0,0,0; 1,2,1] (horizontal lines)",
        "value": {"image": "ascent", "kernel": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "weight": 1},
    },
    "sobel-x": {
        "summary": "Ascent, the lesson's [-1,0,1; -2,0,2; -1,0,1] (vertical lines)",
        "value": {"image": "ascent", "kernel": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "weight": 1},
    },
    "laplacian": {
        "summary": "Ascent, the lesson's edge filter [0,1,0; 1,-4,1; 0,1,0]",
        "value": {"image": "ascent", "kernel": [[0, 1, 0], [1, -4, 1], [0, 1, 0]], "weight": 1},
    },
    "codelab": {
        "summary": "The lesson's loop bit for bit (codelab mode), weight 0.1 blur",
        "value": {
            "image": "ascent",
            "kernel": [[1, 1, 1], [1, 2, 1], [1, 1, 1]],
            "weight": 0.1,
            "mode": "codelab",
        },
    },
    "preset-json": {
        "summary": "A preset, answered as JSON",
        "value": {"image": "ascent", "preset": "gaussian-5", "format": "json"},
    },
}


@router.post(
    "",
    summary="Convolve an image with a kernel",
    response_class=Response,
    responses=PROCESSING,
    openapi_extra=request_body_openapi(ConvolveRequest, ConvolveSpec, EXAMPLES),
)
async def convolve(request: Request, settings: SettingsDep, limiter: WorkLimiterDep) -> Response:
    """Apply a kernel (a matrix or a preset) times a weight to ascent or an uploaded image.

    Standard mode is the cross-correlation `out[r, c] = weight * sum k[m, n] *
    img[r + m - rows//2, c + n - cols//2]` with a border mode (`flip` for true convolution);
    codelab mode is the lesson's loop bit for bit. The spec comes as JSON or as multipart
    (`image` file + `spec` JSON text).
    """
    return await handle(
        request, settings, limiter, (ConvolveRequest, ConvolveSpec), processing.convolve
    )
