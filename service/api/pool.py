"""``POST /pool``: max, average or min pooling."""

from __future__ import annotations

from fastapi import APIRouter

from .. import processing
from ..schemas import PoolRequest, PoolSpec
from .processing import OperationDocs, add_operations

router = APIRouter(prefix="/pool", tags=["pool"])

EXAMPLES = {
    "max-2x2": {
        "summary": "The lesson's 2x2 max pooling of ascent (512x512 -> 256x256)",
        "value": {"image": "ascent", "method": "max", "size": 2},
    },
}

ARRAY_EXAMPLES = {
    "avg-3x3-partial": {
        "summary": "3x3 average every 2 pixels, partial windows kept, as JSON",
        "value": {
            "image": {"pixels": [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90, 100, 110]]},
            "method": "avg",
            "size": 3,
            "stride": 2,
            "edge": "partial",
        },
    },
}


add_operations(
    router,
    "pool",
    (PoolRequest, PoolSpec),
    processing.pool_image,
    OperationDocs(
        summary="Pool an image (max, avg or min)",
        description="Reduce each `size` window, every `stride` pixels, to its max, mean or "
        "min.\n\n`edge: drop` keeps only the windows that fit; `partial` also reduces the "
        "windows that run off the bottom/right edge over the pixels they cover.",
        examples=EXAMPLES,
        array_examples=ARRAY_EXAMPLES,
    ),
)
