"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..concurrency import WorkLimiter
from ..config import Settings


def get_app_settings(request: Request) -> Settings:
    """The ``Settings`` the app was built with (``create_app(settings)``)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_work_limiter(request: Request) -> WorkLimiter:
    """The per-process ``WorkLimiter`` that ``create_app`` stored on ``app.state``."""
    limiter: WorkLimiter = request.app.state.work_limiter
    return limiter


WorkLimiterDep = Annotated[WorkLimiter, Depends(get_work_limiter)]
