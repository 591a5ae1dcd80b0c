"""``GET /kernels``, ``GET /kernels/{name}``, ``GET /images/ascent``: what the service offers."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from .. import imaging
from ..core.kernels import PRESETS, Preset
from ..schemas import ErrorMessage, KernelInfo
from .responses import UNPROCESSABLE, ok

router = APIRouter(tags=["meta"])


def _info(preset: Preset) -> KernelInfo:
    return KernelInfo(
        name=preset.name,
        kernel=[list(row) for row in preset.kernel],
        weight=preset.weight,
        description=preset.description,
    )


@router.get(
    "/kernels",
    summary="List the preset kernels",
    operation_id="listKernels",
    responses=ok("Every preset kernel."),
)
def list_kernels() -> list[KernelInfo]:
    """Every preset: name, kernel, weight and a one-line description."""
    return [_info(preset) for preset in PRESETS.values()]


@router.get(
    "/kernels/{name}",
    summary="One preset kernel",
    operation_id="getKernel",
    responses={
        **ok("The preset."),
        404: {
            "model": ErrorMessage,
            "description": "No preset has that name.",
            "content": {
                "application/json": {
                    "example": {"detail": "no preset named 'sobel'; see GET /kernels"}
                }
            },
        },
        **UNPROCESSABLE,
    },
)
def get_kernel(name: str) -> KernelInfo:
    """The preset called `name`."""
    preset = PRESETS.get(name)
    if preset is None:
        raise HTTPException(404, f"no preset named {name!r}; see GET /kernels")
    return _info(preset)


@router.get(
    "/images/ascent",
    summary="The built-in ascent picture",
    operation_id="getAscentImage",
    response_class=Response,
    responses={
        200: {
            **ok("The picture as PNG.")[200],
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def ascent_image() -> Response:
    """The 512x512 8-bit grayscale ascent picture (scipy.misc.ascent) as PNG."""
    return Response(
        imaging.ascent_png(),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )
