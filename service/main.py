"""The ASGI app: ``app = create_app(get_settings())`` (``uvicorn service.main:app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from . import __version__, balancing, imaging, observability
from .api import convolve, docs, health, messages, meta, metrics, pipeline, playground, pool
from .api.body import SpecValidationError
from .api.security import SecurityHeadersMiddleware, require_api_key
from .concurrency import WorkLimiter
from .config import Settings, get_settings
from .core.errors import CoreError
from .errors import ServiceError
from .schemas import SPEC_MODELS, ArrayResult

DESCRIPTION = """
Convolutions and max pooling on images: the classic *ascent* lesson as a REST API.

* `POST /convolve`: a kernel (JSON matrix or preset) and a weight on ascent or an upload.
* `POST /pool`: max, avg or min pooling with a window size and stride.
* `POST /pipeline`: convolve then pool (any steps) in one call.

Each processing endpoint takes its spec as `application/json` (with `"image"`: `"ascent"`,
`{"data": base64}` or `{"pixels": [[...]]}`) or as `multipart/form-data` (an `image` file part
and a `spec` part with the same JSON, without `image`). Answers are PNG or JSON.
"""


def _validation_issues(
    error: ValidationError, prefix: tuple[str | int, ...] = ("body",)
) -> list[dict[str, Any]]:
    return messages.humanize(error.errors(include_url=False, include_input=False), prefix)


def _register_error_handlers(app: FastAPI) -> None:
    # Handlers sit on base classes; Starlette finds them by walking each exception's MRO.
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(CoreError)
    async def core_error(_: Request, exc: CoreError) -> JSONResponse:
        issue = {"type": "value_error", "loc": ["body", exc.param], "msg": exc.message}
        return JSONResponse({"detail": [issue]}, status_code=422)

    @app.exception_handler(ValidationError)
    async def spec_invalid(_: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_issues(exc)}, status_code=422)

    @app.exception_handler(SpecValidationError)
    async def multipart_spec_invalid(_: Request, exc: SpecValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_issues(exc.error, exc.prefix)}, status_code=422)


def _openapi_factory(app: FastAPI) -> Any:
    """``app.openapi`` that also publishes the spec models the request bodies refer to."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        models: list[type[BaseModel]] = [*SPEC_MODELS, ArrayResult]
        _, definitions = models_json_schema(
            [(model, "validation") for model in models],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in definitions.get("$defs", {}).items():
            components.setdefault(name, definition)
        app.openapi_schema = schema
        return schema

    return openapi


TAGS = [
    {"name": "convolve", "description": "Kernels over images (standard or the lesson's loop)."},
    {"name": "pool", "description": "Max, average and min pooling."},
    {"name": "pipeline", "description": "Steps of convolve and pool, in one call."},
    {"name": "meta", "description": "Preset kernels, the ascent picture, metrics."},
    {"name": "health", "description": "Liveness and readiness."},
]


def _lifespan(settings: Settings, limiter: WorkLimiter) -> Any:
    """Startup: join the workers' load board (``serve`` with several workers); shutdown: leave."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        board = balancing.join_from_environment() if settings.rebalance_connections else None
        limiter.board = board
        try:
            yield
        finally:
            limiter.board = None
            if board is not None:
                board.leave()

    return lifespan


def create_app(settings: Settings) -> FastAPI:
    """Build the app for ``settings`` (routers, error handlers, middleware, docs)."""
    imaging.configure_pillow(settings.max_pixels)
    limiter = WorkLimiter(settings)
    app = FastAPI(
        title="Image filter service",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan(settings, limiter),
    )
    app.state.settings = settings
    app.state.work_limiter = limiter

    guarded = [Depends(require_api_key)]
    for module in (convolve, pool, pipeline):
        app.include_router(module.router, dependencies=guarded)
    for module in (meta, health, metrics, docs, playground):
        app.include_router(module.router)
    docs.mount_assets(app)
    playground.mount_assets(app)
    _register_error_handlers(app)
    app.openapi = _openapi_factory(app)  # type: ignore[method-assign]

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(SecurityHeadersMiddleware)
    observability.install(app, settings)
    return app


app = create_app(get_settings())
