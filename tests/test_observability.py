"""Request IDs, the JSON request log and the Prometheus metrics (in process, TestClient)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from service.api import metrics
from service.runtime import lifecycle, observability
from service.runtime.observability import JsonFormatter
from tests.conftest import ROOT, make_settings

METRIC_NAMES = (
    "imgfilter_http_requests_total",
    "imgfilter_http_request_duration_seconds_bucket",
    "imgfilter_http_request_body_bytes_total",
    "imgfilter_http_response_body_bytes_total",
    "imgfilter_http_requests_in_flight",
    "imgfilter_stage_seconds_bucket",
    "imgfilter_rejections_total",
    "imgfilter_connection_releases_total",
)


def build_app(**overrides: Any) -> FastAPI:
    """A tiny app with the service's observability and metrics router."""
    settings = make_settings(**overrides)
    app = FastAPI()
    app.state.settings = settings

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        observability.annotate(operation="item", image="3x4")
        return {"item_id": item_id}

    @app.post("/echo")
    def echo(payload: dict[str, Any]) -> dict[str, Any]:
        # A plain ``def`` runs in the threadpool: annotate must still reach the log line.
        observability.annotate(operation="echo", status=999, path="/forged")
        with observability.observe_stage("encode"):
            pass
        return payload

    @app.get("/teapot")
    async def teapot() -> None:
        observability.count_rejection("too_many_pixels")
        raise HTTPException(status_code=418, detail="short and stout")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    app.include_router(metrics.router)
    observability.install(app, settings)
    return app


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access_log() -> Iterator[list[dict[str, Any]]]:
    """The JSON request-log lines written while the test runs, parsed."""
    handler = _Collect()
    logger = logging.getLogger("imgfilter")
    level = logger.level
    observability.ACCESS_LOGGER.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        observability.ACCESS_LOGGER.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- X-Request-ID ----------------------------------------------------------------------------
def test_request_id_generated_when_absent(client: TestClient) -> None:
    first = client.get("/items/1")
    second = client.get("/items/1")
    assert first.status_code == 200
    assert len(first.headers["x-request-id"]) == 32
    int(first.headers["x-request-id"], 16)
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("request_id", ["abc-123", "A.b_C-9", "x" * 128])
def test_request_id_echoed_when_valid(client: TestClient, request_id: str) -> None:
    response = client.get("/items/1", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize("request_id", ["has space", "x" * 129, "a/b", "<script>", "id;drop"])
def test_request_id_replaced_when_invalid(client: TestClient, request_id: str) -> None:
    response = client.get("/items/1", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    echoed = response.headers["x-request-id"]
    assert echoed != request_id
    assert len(echoed) == 32


def test_request_id_on_error_responses(client: TestClient) -> None:
    for path in ("/teapot", "/nowhere"):
        response = client.get(path, headers={"X-Request-ID": "err-1"})
        assert response.status_code in (418, 404)
        assert response.headers["x-request-id"] == "err-1"


def test_request_id_visible_to_handler_and_reset_after() -> None:
    app = FastAPI()
    seen: list[str | None] = []

    @app.get("/")
    def handler() -> None:
        seen.append(observability.current_request_id())

    observability.install(app, make_settings())
    with TestClient(app) as test_client:
        test_client.get("/", headers={"X-Request-ID": "ctx-7"})
    assert seen == ["ctx-7"]
    assert observability.current_request_id() is None


# --- JSON log line ---------------------------------------------------------------------------
def test_access_log_line_has_request_fields(
    client: TestClient, access_log: list[dict[str, Any]]
) -> None:
    response = client.get("/items/42", headers={"X-Request-ID": "log-1"})
    assert response.status_code == 200
    (line,) = [item for item in access_log if item.get("request_id") == "log-1"]
    assert line["logger"] == "imgfilter.access"
    assert line["level"] == "info"
    assert line["msg"] == "request"
    assert line["method"] == "GET"
    assert line["path"] == "/items/42"
    assert line["route"] == "/items/{item_id}"
    assert line["status"] == 200
    assert 0 < line["duration_ms"] < 10_000
    assert line["client"] == "testclient"
    assert line["bytes_in"] == 0
    assert line["bytes_out"] == len(response.content)
    assert line["operation"] == "item"
    assert line["image"] == "3x4"
    assert line["ts"].endswith("+00:00")


def test_access_log_annotate_from_threadpool_cannot_forge_core_fields(
    client: TestClient, access_log: list[dict[str, Any]]
) -> None:
    body = b'{"a": [1, 2, 3]}'
    response = client.post(
        "/echo", content=body, headers={"X-Request-ID": "log-2", "content-type": "application/json"}
    )
    assert response.status_code == 200
    (line,) = [item for item in access_log if item.get("request_id") == "log-2"]
    assert line["operation"] == "echo"
    assert line["status"] == 200
    assert line["path"] == "/echo"
    assert line["bytes_in"] == len(body)


def test_access_log_unmatched_route_for_404(
    client: TestClient, access_log: list[dict[str, Any]]
) -> None:
    assert client.get("/no/such/page", headers={"X-Request-ID": "log-3"}).status_code == 404
    (line,) = [item for item in access_log if item.get("request_id") == "log-3"]
    assert line["route"] == "unmatched"
    assert line["status"] == 404


def test_access_log_unhandled_error_logged_as_500(
    client: TestClient, access_log: list[dict[str, Any]]
) -> None:
    response = client.get("/boom", headers={"X-Request-ID": "log-4"})
    assert response.status_code == 500
    (line,) = [item for item in access_log if item.get("request_id") == "log-4"]
    assert line["status"] == 500
    assert line["level"] == "error"
    assert line["error"] == "RuntimeError: kaboom"


def test_access_log_silent_below_level(access_log: list[dict[str, Any]]) -> None:
    with TestClient(build_app(log_level="warning")) as quiet:
        assert quiet.get("/items/1", headers={"X-Request-ID": "log-5"}).status_code == 200
    assert not [item for item in access_log if item.get("request_id") == "log-5"]


def test_annotate_outside_request_is_noop() -> None:
    observability.annotate(operation="nothing")  # must not raise


def test_json_formatter_extras_exceptions_and_odd_values() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "n=%d", (5,), sys.exc_info())
    record.path = Path("/tmp/p")  # not JSON: written with str()
    record.fields = {"width": 3}
    out = json.loads(JsonFormatter().format(record))
    assert out["msg"] == "n=5"
    assert out["level"] == "error"
    assert out["path"] == "/tmp/p"
    assert out["width"] == 3
    assert "ValueError: bad" in out["exc"]
    assert "fields" not in out
    assert "args" not in out


def test_logging_config_formats_uvicorn_records_as_json() -> None:
    config = observability.logging_config("debug")
    assert config["loggers"]["uvicorn.access"]["handlers"] == []
    formatter_factory = config["formatters"]["json"]["()"]
    module, _, name = formatter_factory.rpartition(".")
    assert getattr(sys.modules[module], name) is JsonFormatter


# --- metrics -----------------------------------------------------------------------------------
def test_metrics_count_requests_by_route_template_and_status(client: TestClient) -> None:
    labels = {"method": "GET", "route": "/items/{item_id}", "status": "200"}
    before = sample("imgfilter_http_requests_total", **labels)
    before_hist = sample("imgfilter_http_request_duration_seconds_count", **labels)
    for item_id in (1, 2, 3):
        assert client.get(f"/items/{item_id}").status_code == 200
    assert sample("imgfilter_http_requests_total", **labels) == before + 3
    assert sample("imgfilter_http_request_duration_seconds_count", **labels) == before_hist + 3


def test_metrics_count_bytes_in_and_out(client: TestClient) -> None:
    body = b'{"k": "' + b"v" * 1000 + b'"}'
    before_in = sample("imgfilter_http_request_body_bytes_total", route="/echo")
    before_out = sample("imgfilter_http_response_body_bytes_total", route="/echo")
    response = client.post("/echo", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert sample("imgfilter_http_request_body_bytes_total", route="/echo") == before_in + len(body)
    out = sample("imgfilter_http_response_body_bytes_total", route="/echo")
    assert out == before_out + len(response.content)


def test_metrics_count_rejections_and_stages(client: TestClient) -> None:
    before_rejected = sample("imgfilter_rejections_total", reason="too_many_pixels")
    before_stage = sample("imgfilter_stage_seconds_count", stage="encode")
    assert client.get("/teapot").status_code == 418
    assert client.post("/echo", json={}).status_code == 200
    assert sample("imgfilter_rejections_total", reason="too_many_pixels") == before_rejected + 1
    assert sample("imgfilter_stage_seconds_count", stage="encode") == before_stage + 1


def test_observe_stage_records_time_when_block_raises() -> None:
    before_count = sample("imgfilter_stage_seconds_count", stage="decode")
    before_sum = sample("imgfilter_stage_seconds_sum", stage="decode")

    def failing_stage() -> None:
        with observability.observe_stage("decode"):
            threading.Event().wait(0.01)
            raise KeyError("x")

    with pytest.raises(KeyError):
        failing_stage()
    assert sample("imgfilter_stage_seconds_count", stage="decode") == before_count + 1
    assert sample("imgfilter_stage_seconds_sum", stage="decode") >= before_sum + 0.009


def test_metrics_in_flight_back_to_previous_after_requests(client: TestClient) -> None:
    before = sample("imgfilter_http_requests_in_flight")
    assert client.get("/items/1").status_code == 200
    assert client.get("/boom").status_code == 500
    assert sample("imgfilter_http_requests_in_flight") == before


def test_metrics_endpoint_exposes_every_metric(client: TestClient) -> None:
    client.get("/items/1")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for name in METRIC_NAMES:
        assert f"\n{name}" in response.text, name
    for stage in observability.STAGES:
        assert f'imgfilter_stage_seconds_count{{stage="{stage}"}}' in response.text


def test_metrics_endpoint_404_when_disabled() -> None:
    with TestClient(build_app(metrics_enabled=False)) as test_client:
        assert test_client.get("/metrics").status_code == 404
        before = sample(
            "imgfilter_http_requests_total", method="GET", route="/items/{item_id}", status="200"
        )
        assert test_client.get("/items/5").status_code == 200
        after = sample(
            "imgfilter_http_requests_total", method="GET", route="/items/{item_id}", status="200"
        )
    assert after == before


def test_metrics_merge_across_processes_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two worker-like processes write files; a third renders the sum of both."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    record = (
        "from service.runtime import observability as o\n"
        "assert o.multiprocess_mode()\n"
        "o.count_rejection('overload')\n"
        "with o.observe_stage('pool'): pass\n"
        "o.HTTP_REQUESTS.labels('GET', '/healthz', '200').inc()\n"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", record], env=env, cwd=ROOT, check=True)
    render = (
        "from service.runtime import observability as o\nprint(o.render_metrics()[0].decode())\n"
    )
    text = subprocess.run(
        [sys.executable, "-c", render], env=env, cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    assert 'imgfilter_rejections_total{reason="overload"} 2.0' in text
    assert 'imgfilter_stage_seconds_count{stage="pool"} 2.0' in text
    assert 'imgfilter_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text


def test_multiprocess_mode_off_in_this_process() -> None:
    assert observability.multiprocess_mode() is ("PROMETHEUS_MULTIPROC_DIR" in os.environ)


# --- lifespan --------------------------------------------------------------------------------
def test_middleware_leaves_the_lifespan_to_the_app() -> None:
    """One lifespan: readiness is the app's lifespan's (tests/test_lifecycle.py), not ours."""
    lifecycle.STATE.mark_draining()
    try:
        with TestClient(build_app()):  # no lifespan of its own: nothing marks it ready
            assert not lifecycle.is_ready()
    finally:
        lifecycle.STATE.mark_ready()


def test_real_app_sets_request_id_and_serves_metrics() -> None:
    from service.main import create_app

    with TestClient(create_app(make_settings())) as test_client:
        health = test_client.get("/healthz", headers={"X-Request-ID": "real-1"})
        assert health.status_code == 200
        assert health.headers["x-request-id"] == "real-1"
        text = test_client.get("/metrics").text
    assert 'route="/healthz",status="200"' in text
