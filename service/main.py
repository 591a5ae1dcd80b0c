"""The ASGI app: ``app = create_app(get_settings())`` (``uvicorn service.main:app``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from . import __version__, imaging
from .api import docs, health, meta, metrics, operations, playground
from .api.errors import add_error_handlers
from .api.responses import HEADERS
from .api.security import SecurityHeadersMiddleware
from .config import Settings, get_settings
from .ops import OPERATIONS, spec_models
from .runtime import lifecycle, observability
from .schemas import ENUMS, ArrayResult, EncodedImage, PixelImage

DESCRIPTION = """
Convolutions and max pooling on images: the classic *ascent* lesson as a REST API.

* `POST /convolve`: a kernel (JSON matrix or preset) and a weight on ascent or an upload.
* `POST /pool`: max, avg or min pooling with a window size and stride.
* `POST /pipeline`: convolve then pool (any steps) in one call.

Each endpoint has three operations, one request and answer encoding each, so that generated
clients get a typed method for each: `POST /convolve` (JSON spec with `"image"`: `"ascent"`,
`{"data": base64}` or `{"pixels": [[...]]}`; PNG or .npy answer), `POST /convolve/array` (JSON
spec; JSON array answer) and `POST /convolve/upload` (multipart: an `image` file part and a
`spec` part holding the JSON spec without `image`; PNG or .npy answer). `POST /convolve` itself
also takes the multipart body and answers JSON, as it always has.

`Accept` picks the answer's media type among those an operation offers (`image/png` or
`application/x-npy`; `application/json` on `/array`); when it leaves the choice open (absent,
`*/*` or a tie), the spec's `format` does. An `Accept` that allows none of them, nor JSON (the
errors' type), is answered 406.

API keys are off unless the server sets `IMGFILTER_API_KEYS`; then the processing operations
need `Authorization: Bearer <key>` or `X-API-Key: <key>` (the empty requirement `{}` in their
`security` is the keys-off case).
"""

CONTACT = {"name": "imgfilter-service maintainers"}
LICENSE = {"name": "MIT", "identifier": "MIT"}
SERVERS = [{"url": "/", "description": "The server that serves this document"}]
SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <key>`, a key from `IMGFILTER_API_KEYS`.",
    },
    "apiKeyAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "`X-API-Key: <key>`, a key from `IMGFILTER_API_KEYS`.",
    },
}
PROCESSING_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyAuth": []}, {}]
"""Either key header, or none when the server has no keys configured."""


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
            servers=SERVERS,
            contact=CONTACT,
            license_info=LICENSE,
        )
        models: list[type[BaseModel]] = [*spec_models(), ArrayResult]
        _, definitions = models_json_schema(
            [(model, "validation") for model in models],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for name, definition in definitions.get("$defs", {}).items():
            schemas.setdefault(name, definition)
        enums = {}
        for name, (literal, description) in ENUMS.items():
            enum = TypeAdapter(literal).json_schema()
            enums[tuple(enum["enum"])] = name
            schemas[name] = {"title": name, "description": description, **enum}
        _refer_to_enums(schema["paths"], enums)
        _refer_to_enums([v for k, v in schemas.items() if k not in ENUMS], enums)
        published: list[type[BaseModel]] = [*spec_models(), EncodedImage, PixelImage]
        for model in published:
            _defaults_to_descriptions(schemas, model.__name__)
        components["headers"] = HEADERS
        components["securitySchemes"] = SECURITY_SCHEMES
        for path in schema["paths"].values():
            for operation in path.values():
                # An empty list: open to all, whatever keys the server has.
                guarded = "401" in operation["responses"]
                operation["security"] = PROCESSING_SECURITY if guarded else []
        app.openapi_schema = schema
        return schema

    return openapi


def _refer_to_enums(node: Any, enums: dict[tuple[Any, ...], str]) -> None:
    """Replace each inline string enum that ``ENUMS`` names by a ``$ref`` to its component."""
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        if isinstance(child, dict) and tuple(child.get("enum", ())) in enums:
            name = enums[tuple(child["enum"])]
            for key in ("enum", "type", "title"):
                child.pop(key, None)
            child["$ref"] = f"#/components/schemas/{name}"
            continue
        _refer_to_enums(child, enums)


def _defaults_to_descriptions(schemas: dict[str, Any], name: str) -> None:
    """Move each request property's ``default`` into its description.

    A generated client sends (openapi-python-client) or requires (openapi-typescript) every
    field with a ``default``; without it, a field the caller leaves out stays out, and the
    server applies the default (codelab refuses an explicit ``border: reflect``).
    """
    for field in schemas.get(name, {}).get("properties", {}).values():
        if "default" not in field:
            continue
        default = field.pop("default")
        description = field.get("description", "")
        if default is not None and "Default" not in description:
            text = json.dumps(default)
            field["description"] = f"{description} Default: `{text}`.".strip()


TAGS = [
    *({"name": op.name, "description": op.help} for op in OPERATIONS.values()),
    {"name": "meta", "description": "Preset kernels, the ascent picture, metrics."},
    {"name": "health", "description": "Liveness and readiness."},
]


def create_app(settings: Settings) -> FastAPI:
    """Build the app for ``settings`` (routers, error handlers, middleware, docs)."""
    imaging.configure_pillow(settings.max_pixels)
    limiter = lifecycle.work_limiter(settings)
    app = FastAPI(
        title="Image filter service",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
        separate_input_output_schemas=False,
        lifespan=lifecycle.worker_lifespan(settings, limiter),
    )
    app.state.settings = settings
    app.state.work_limiter = limiter

    for router in operations.routers():
        app.include_router(router)
    for module in (meta, health, metrics, docs, playground):
        app.include_router(module.router)
    docs.mount_assets(app)
    playground.mount_assets(app)
    add_error_handlers(app)
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
