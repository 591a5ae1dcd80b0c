"""A small app for real-process tests: the service's observability, health and metrics, plus
``GET /slow?seconds=`` (an in-flight request that outlives a SIGTERM).

Served as ``tests.lifecycle_app:app`` by ``service.runtime.server.serve``; settings come from the
environment (``IMGFILTER_*``), as in the real app.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from service.api import health, metrics
from service.config import Settings
from service.runtime import lifecycle, observability


def create_app(settings: Settings) -> FastAPI:
    """The service's lifespan, middleware and meta routers around one slow endpoint."""
    app = FastAPI(lifespan=lifecycle.worker_lifespan(settings))
    app.state.settings = settings

    @app.get("/slow")
    async def slow(seconds: float = 1.0) -> dict[str, float]:
        await asyncio.sleep(seconds)
        observability.annotate(operation="slow")
        return {"slept": seconds}

    app.include_router(health.router)
    app.include_router(metrics.router)
    observability.install(app, settings)
    return app


app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
