"""``GET /metrics``: Prometheus text exposition of every worker's metrics.

Left out of the OpenAPI schema (``include_in_schema=False``): it is an operator endpoint in
Prometheus' own text format, not part of the REST contract. Answers 404 when
``Settings.metrics_enabled`` is false. A plain ``def``: in multiprocess mode rendering reads
one file per worker, so it runs in the threadpool, off the event loop.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from ..runtime.observability import render_metrics
from .deps import SettingsDep

router = APIRouter(tags=["meta"])


@router.get("/metrics", include_in_schema=False)
def metrics(settings: SettingsDep) -> Response:
    """Prometheus metrics (text format 0.0.4) summed over all worker processes."""
    if not settings.metrics_enabled:
        raise HTTPException(status_code=404, detail="metrics are disabled")
    body, content_type = render_metrics()
    return Response(content=body, media_type=content_type)
