"""The playground at ``GET /``: a static page (HTML, vanilla JS, CSS) that calls the public API.

The files live in ``service/static/playground`` (package data, no build step, no CDN) and are
served at ``/static/playground`` by ``mount_assets``. The page uses relative URLs only, so it
also works behind a path prefix (``root_path``).
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/playground"

router = APIRouter(include_in_schema=False)


def _assets() -> Traversable:
    return resources.files("service").joinpath("static/playground")


def mount_assets(app: FastAPI) -> None:
    """Serve the playground's script and style sheet at ``ASSETS_URL``."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(_assets())), name="playground-assets")


@router.get("/")
async def playground() -> HTMLResponse:
    """The playground page: pick an image and a kernel, see the result next to the input."""
    page = _assets().joinpath("index.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})
