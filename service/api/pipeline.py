"""``POST /pipeline``: the lesson's whole flow (convolve, then pool) in one call."""

from __future__ import annotations

from fastapi import APIRouter

from .. import processing
from ..config import Settings
from ..imaging import Decoded
from ..schemas import PipelineRequest, PipelineSpec
from .processing import OperationDocs, add_operations

router = APIRouter(prefix="/pipeline", tags=["pipeline"])

EXAMPLES = {
    "lesson": {
        "summary": "The lesson: sobel-x on ascent, then 2x2 max pooling (256x256 out)",
        "value": {
            "image": "ascent",
            "steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}],
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

SMALL = [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90, 100, 110], [120, 130, 140, 150]]
ARRAY_EXAMPLES = {
    "lesson": {
        "summary": "sobel-x then 2x2 max on a small `pixels` image",
        "value": {
            "image": {"pixels": SMALL},
            "steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}],
        },
    },
    "raw": {
        "summary": "Laplacian as float32 (raw) into a 2x2 max, kept raw",
        "value": {
            "image": {"pixels": SMALL},
            "steps": [
                {"op": "convolve", "preset": "laplacian", "scale": "raw"},
                {"op": "pool", "size": 2, "scale": "raw"},
            ],
        },
    },
}


def _run(image: Decoded, spec: PipelineSpec, settings: Settings) -> Decoded:
    return processing.run_steps(image, spec.steps, settings)


add_operations(
    router,
    "pipeline",
    (PipelineRequest, PipelineSpec),
    _run,
    OperationDocs(
        summary="Run convolve/pool steps in order",
        description="Run the steps in order, each on the previous one's 8-bit output "
        "(float32 after `raw`).",
        examples=EXAMPLES,
        array_examples=ARRAY_EXAMPLES,
    ),
)
