"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..runtime import lifecycle
from ..schemas import Health
from .responses import ok

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness", operation_id="getHealth", responses=ok("Alive."))
async def healthz() -> Health:
    """The process answers: 200 while it runs."""
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness",
    operation_id="getReadiness",
    response_model=Health,
    responses={
        **ok("Ready: takes work."),
        503: {"model": Health, "description": "Shutting down: send no new work."},
    },
)
async def readyz() -> JSONResponse:
    """200 when the worker takes work; 503 once it is shutting down."""
    if lifecycle.is_ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready"}, status_code=503)
