"""``GET /kernels``, ``GET /kernels/{name}``, ``GET /images/ascent``: what the service offers."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from .. import imaging
from ..core.kernels import PRESETS, Preset
from ..schemas import ErrorMessage, KernelInfo

router = APIRouter(tags=["meta"])


def _info(preset: Preset) -> KernelInfo:
    return KernelInfo(
        name=preset.name,
        kernel=[list(row) for row in preset.kernel],
        weight=preset.weight,
        description=preset.description,
    )


@router.get("/kernels", summary="List the preset kernels")
def list_kernels() -> list[KernelInfo]:
    """Every preset: name, kernel, weight and a one-line description."""
    return [_info(preset) for preset in PRESETS.values()]


@router.get(
    "/kernels/{name}",
    summary="One preset kernel",
    responses={404: {"model": ErrorMessage, "description": "No preset has that name."}},
)
def read_kernel(name: str) -> KernelInfo:
    """The preset called `name`."""
    preset = PRESETS.get(name)
    if preset is None:
        raise HTTPException(404, f"no preset named {name!r}; see GET /kernels")
    return _info(preset)


@router.get(
    "/images/ascent",
    summary="The built-in ascent picture",
    response_class=Response,
    responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
)
def ascent_image() -> Response:
    """The 512x512 8-bit grayscale ascent picture (scipy.misc.ascent) as PNG."""
    return Response(
        imaging.ascent_png(),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )
