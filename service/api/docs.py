"""Swagger UI at ``/docs`` and ReDoc at ``/redoc``, served from the app itself (no CDN).

FastAPI's self-hosting recipe (``how-to/custom-docs-ui-assets``): the JS/CSS come from the
``fastapi-offline`` package, mounted at ``/static/docs``, so the pages work on offline hosts.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/docs"

router = APIRouter(include_in_schema=False)


def _with_lang(
    page: Callable[[Request], Awaitable[HTMLResponse]],
) -> Callable[[Request], Awaitable[HTMLResponse]]:
    """FastAPI's docs pages open with a bare ``<html>``; screen readers need the language."""

    @functools.wraps(page)
    async def with_lang(request: Request) -> HTMLResponse:
        html = await page(request)
        body = bytes(html.body).replace(b"<html>", b'<html lang="en">', 1)
        return HTMLResponse(body, status_code=html.status_code)

    return with_lang


def mount_assets(app: FastAPI) -> None:
    """Serve the Swagger UI and ReDoc files shipped by ``fastapi-offline``."""
    directory = resources.files("fastapi_offline").joinpath("static")
    app.mount(ASSETS_URL, StaticFiles(directory=str(directory)), name="docs-assets")


@router.get("/docs")
@_with_lang
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        swagger_ui_parameters={"tryItOutEnabled": True, "displayRequestDuration": True},
    )


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
@_with_lang
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
