"""Request IDs, JSON logs and Prometheus metrics: what an operator sees of the service.

``install(app, settings)`` adds :class:`ObservabilityMiddleware`, a pure-ASGI middleware
(``BaseHTTPMiddleware`` costs a task and a stream per request). For every HTTP request it

* takes ``X-Request-ID`` from the request if it is 1-128 characters of ``[A-Za-z0-9._-]``,
  otherwise makes a new one (32 hex digits), sets it on :data:`request_id_var` and echoes it
  in the response;
* writes one JSON line to the ``imgfilter.access`` logger: ``method``, ``path``, ``route``
  (the template, e.g. ``/convolve``), ``status``, ``duration_ms``, ``request_id``, ``client``,
  ``bytes_in``, ``bytes_out``, plus whatever the handler added with :func:`annotate`
  (image size, operation, ...);
* records the Prometheus metrics below.

Other code calls :func:`observe_stage` (time of decode/convolve/pool/encode) and
:func:`count_rejection` (requests refused by a limit).

Metrics (``imgfilter_`` prefix; ``route`` is the route template, ``unmatched`` for a 404):

====================================================  ==========  ==========================
name                                                  type        labels
====================================================  ==========  ==========================
``imgfilter_http_requests_total``                     counter     method, route, status
``imgfilter_http_request_duration_seconds``           histogram   method, route, status
``imgfilter_http_request_body_bytes_total``           counter     route
``imgfilter_http_response_body_bytes_total``          counter     route
``imgfilter_http_requests_in_flight``                 gauge       (sum over live workers)
``imgfilter_stage_seconds``                           histogram   stage
``imgfilter_rejections_total``                        counter     reason
``imgfilter_connection_releases_total``               counter     (none)
====================================================  ==========  ==========================

Several worker processes: ``service.runtime.server.serve`` gives each start a fresh, empty directory
in ``PROMETHEUS_MULTIPROC_DIR`` before the workers start; prometheus-client then keeps every
value in a per-process memory-mapped file there, and :func:`render_metrics` merges the files of
all workers (``MultiProcessCollector``), so ``GET /metrics`` answers the same totals whichever
worker it reaches. Without the variable (one process, tests) the default registry is used.
Running ``uvicorn --workers N`` directly, without ``serve``, would give per-worker figures.

Logging: :func:`logging_config` is the ``dictConfig`` that ``serve`` hands to uvicorn (its own
logs become JSON too); :func:`configure_logging` sets up the ``imgfilter`` loggers when nothing
did. Every line is one JSON object with ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``,
``request_id`` (when inside a request) and the record's extra fields.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import values as _prom_values
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..config import Settings

__all__ = [
    "ACCESS_LOGGER",
    "JsonFormatter",
    "ObservabilityMiddleware",
    "annotate",
    "configure_logging",
    "count_connection_release",
    "count_rejection",
    "current_request_id",
    "install",
    "logging_config",
    "multiprocess_mode",
    "observe_stage",
    "render_metrics",
    "request_id_var",
]

REQUEST_ID_HEADER: Final = b"x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
UNMATCHED_ROUTE: Final = "unmatched"

request_id_var: ContextVar[str | None] = ContextVar("imgfilter_request_id", default=None)
_fields_var: ContextVar[dict[str, Any] | None] = ContextVar("imgfilter_log_fields", default=None)

ACCESS_LOGGER = logging.getLogger("imgfilter.access")

# --- metrics -------------------------------------------------------------------------------
_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_STAGE_BUCKETS = (
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
STAGES: Final = ("decode", "convolve", "pool", "encode")
REJECTION_REASONS: Final = ("too_many_bytes", "too_many_pixels", "overload", "slow_body")

HTTP_REQUESTS = Counter(
    "imgfilter_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "imgfilter_http_request_duration_seconds",
    "Time from request start to the last response byte, by method, route and status.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_BYTES_IN = Counter(
    "imgfilter_http_request_body_bytes",
    "Request body bytes received, by route template.",
    ["route"],
)
HTTP_BYTES_OUT = Counter(
    "imgfilter_http_response_body_bytes",
    "Response body bytes sent, by route template.",
    ["route"],
)
HTTP_IN_FLIGHT = Gauge(
    "imgfilter_http_requests_in_flight",
    "HTTP requests being processed now (summed over live worker processes).",
    multiprocess_mode="livesum",
)
STAGE_SECONDS = Histogram(
    "imgfilter_stage_seconds",
    "Processing time of one stage of a request: decode, convolve, pool or encode.",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
REJECTIONS = Counter(
    "imgfilter_rejections",
    "Requests refused by a limit: too_many_bytes, too_many_pixels, overload, ...",
    ["reason"],
)
CONNECTION_RELEASES = Counter(
    "imgfilter_connection_releases",
    "Responses that closed their keep-alive connection because this worker was busier than "
    "a sibling (the client reconnects and may land on another worker).",
)
# Label children by (method, route, status): ``labels()`` validates and locks on every call.
# Routes are templates and methods/statuses few, so this stays small.
_HTTP_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any, Any, Any]] = {}
# Children for the known label values exist from the start, so /metrics lists them at 0.
_STAGE_CHILDREN = {stage: STAGE_SECONDS.labels(stage) for stage in STAGES}
for _reason in REJECTION_REASONS:
    REJECTIONS.labels(_reason)


def multiprocess_mode() -> bool:
    """True when prometheus-client stores values in files (``PROMETHEUS_MULTIPROC_DIR``)."""
    mutex_value = getattr(_prom_values, "MutexValue", None)
    value_class = getattr(_prom_values, "ValueClass", mutex_value)
    return value_class is not mutex_value


def render_metrics() -> tuple[bytes, str]:
    """The Prometheus text exposition of every worker's metrics, and its content type.

    In multiprocess mode a fresh registry with a ``MultiProcessCollector`` reads all worker
    files on each call (the documented prometheus-client pattern); otherwise the default
    registry of this process is rendered.
    """
    if multiprocess_mode():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


@contextlib.contextmanager
def observe_stage(stage: str) -> Iterator[None]:
    """Time the ``with`` block into ``imgfilter_stage_seconds{stage=...}``.

    The time is recorded also when the block raises (a failed decode still took time).
    """
    child = _STAGE_CHILDREN.get(stage) or STAGE_SECONDS.labels(stage)
    start = time.perf_counter()
    try:
        yield
    finally:
        child.observe(time.perf_counter() - start)


def count_rejection(reason: str) -> None:
    """Count one request refused by a limit in ``imgfilter_rejections_total{reason}``."""
    REJECTIONS.labels(reason).inc()
    annotate(rejected=reason)


def count_connection_release() -> None:
    """Count a response sent with ``Connection: close`` to rebalance workers."""
    CONNECTION_RELEASES.inc()


# --- request context -----------------------------------------------------------------------
def current_request_id() -> str | None:
    """The ``X-Request-ID`` of the request being handled, or None outside a request."""
    return request_id_var.get()


def annotate(**fields: Any) -> None:
    """Add fields to the current request's log line (no-op outside a request).

    Works from worker threads too: the request's field dict travels with the copied context.
    Core fields (``status``, ``path``, ...) cannot be overwritten.
    """
    current = _fields_var.get()
    if current is not None:
        current.update(fields)


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return os.urandom(16).hex()


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:
        return UNMATCHED_ROUTE
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED_ROUTE


# --- logging -------------------------------------------------------------------------------
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_SKIPPED_EXTRAS = frozenset({"color_message", "fields"})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``msg``, extras.

    Extras are the record's non-standard attributes (``logger.info(..., extra={...})``) and
    the items of a ``fields`` dict attribute; ``request_id`` comes from the record or, inside
    a request, from :data:`request_id_var`. Values JSON cannot hold are written with ``str``.
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in _SKIPPED_EXTRAS:
                out[key] = value
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if "request_id" not in out:
            request_id = request_id_var.get()
            if request_id is not None:
                out["request_id"] = request_id
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def logging_config(level: str) -> dict[str, Any]:
    """``logging.config.dictConfig`` for the server: JSON lines on stdout for every logger.

    uvicorn's access log is off (the middleware logs each request); ``uvicorn.error`` (start,
    stop, tracebacks) and ``imgfilter.*`` use :class:`JsonFormatter` at ``level``.
    """
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "imgfilter": {"handlers": ["stdout"], "level": upper, "propagate": False},
        },
    }


def configure_logging(level: str) -> None:
    """Give the ``imgfilter`` logger a JSON stdout handler unless it has one; set ``level``.

    Propagation is left alone (``serve``'s :func:`logging_config` turns it off), so test
    tools that listen on the root logger, such as pytest's ``caplog``, still see the records.
    """
    logger = logging.getLogger("imgfilter")
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)


# --- middleware ----------------------------------------------------------------------------
class ObservabilityMiddleware:
    """Pure-ASGI middleware: request ID, one JSON log line and metrics per HTTP request.

    Other scopes (``lifespan``, ``websocket``) pass through untouched; the worker's lifespan
    is :func:`service.runtime.lifecycle.worker_lifespan`.
    """

    def __init__(self, app: ASGIApp, *, metrics: bool = True) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        request_id = _request_id(scope["headers"])
        request_id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        fields: dict[str, Any] = {}
        id_token = request_id_var.set(request_id)
        fields_token = _fields_var.set(fields)
        status = 500
        started = False
        bytes_in = 0
        bytes_out = 0

        async def receive_wrapper() -> Message:
            nonlocal bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started, bytes_out
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                headers = [h for h in message.get("headers", ()) if h[0] != REQUEST_ID_HEADER]
                headers.append(request_id_header)
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
            await send(message)

        if self.metrics:
            HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except BaseException as exc:
            if not started:
                status = 500
            fields["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            duration = time.perf_counter() - start
            route = _route_template(scope)
            if self.metrics:
                HTTP_IN_FLIGHT.dec()
                self._record(scope["method"], route, status, duration, bytes_in, bytes_out)
            level = logging.ERROR if status >= 500 else logging.INFO
            if ACCESS_LOGGER.isEnabledFor(level):
                client = scope.get("client")
                line = {
                    **fields,
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000.0, 3),
                    "request_id": request_id,
                    "client": client[0] if client else None,
                    "bytes_in": bytes_in,
                    "bytes_out": bytes_out,
                }
                ACCESS_LOGGER.log(level, "request", extra={"fields": line})
            _fields_var.reset(fields_token)
            request_id_var.reset(id_token)

    @staticmethod
    def _record(
        method: str, route: str, status: int, duration: float, bytes_in: int, bytes_out: int
    ) -> None:
        key = (method, route, status)
        children = _HTTP_CHILDREN.get(key)
        if children is None:
            code = str(status)
            children = _HTTP_CHILDREN[key] = (
                HTTP_REQUESTS.labels(method, route, code),
                HTTP_DURATION.labels(method, route, code),
                HTTP_BYTES_IN.labels(route),
                HTTP_BYTES_OUT.labels(route),
            )
        requests, durations, received, sent = children
        requests.inc()
        durations.observe(duration)
        if bytes_in:
            received.inc(bytes_in)
        if bytes_out:
            sent.inc(bytes_out)


def install(app: FastAPI, settings: Settings) -> None:
    """Configure JSON logging and add :class:`ObservabilityMiddleware` (outermost so far).

    Call it last in ``create_app`` so the middleware wraps the others and every response,
    CORS and error ones included, carries ``X-Request-ID``. (A response Starlette's
    ``ServerErrorMiddleware`` makes for an unhandled exception is outside every user
    middleware and has no ``X-Request-ID``; its log line still has the ID, status 500.)
    """
    configure_logging(settings.log_level)
    app.add_middleware(ObservabilityMiddleware, metrics=settings.metrics_enabled)
