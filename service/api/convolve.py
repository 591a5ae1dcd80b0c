"""``POST /convolve``: a kernel and a weight applied to an image."""

from __future__ import annotations

from fastapi import APIRouter

from .. import processing
from ..schemas import ConvolveRequest, ConvolveSpec
from .processing import OperationDocs, add_operations

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
}

SMALL = [[0, 0, 0, 0, 0], [0, 50, 100, 150, 0], [0, 100, 200, 250, 0], [0, 0, 0, 0, 0]]
ARRAY_EXAMPLES = {
    "preset": {
        "summary": "sobel-x on a small `pixels` image",
        "value": {"image": {"pixels": SMALL}, "preset": "sobel-x"},
    },
    "raw": {
        "summary": "The lesson's Laplacian kept as float32 (`scale: raw`)",
        "value": {
            "image": {"pixels": SMALL},
            "kernel": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
            "scale": "raw",
        },
    },
    "codelab": {
        "summary": "The lesson's loop (codelab mode) on a small image",
        "value": {
            "image": {"pixels": SMALL},
            "kernel": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
            "mode": "codelab",
        },
    },
}


add_operations(
    router,
    "convolve",
    (ConvolveRequest, ConvolveSpec),
    processing.convolve,
    OperationDocs(
        summary="Convolve an image with a kernel",
        description="Apply a kernel (a matrix or a preset) times a weight to an image.\n\n"
        "Standard mode is the cross-correlation `out[r, c] = weight * sum k[m, n] * "
        "img[r + m - rows//2, c + n - cols//2]` with a border mode (`flip` for true "
        "convolution); codelab mode is the lesson's loop bit for bit.",
        examples=EXAMPLES,
        array_examples=ARRAY_EXAMPLES,
    ),
)
