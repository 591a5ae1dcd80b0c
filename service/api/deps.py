"""Dependencies shared by the routers, as ``Annotated`` aliases.

They are ``async def`` although they never wait: FastAPI runs a plain ``def`` dependency in
its threadpool, a thread round trip per dependency and request (docs/performance.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..config import Settings
from ..runtime.limiter import WorkLimiter


async def get_app_settings(request: Request) -> Settings:
    """The ``Settings`` the app was built with (``create_app(settings)``)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_work_limiter(request: Request) -> WorkLimiter:
    """The per-process ``WorkLimiter`` that ``create_app`` stored on ``app.state``."""
    limiter: WorkLimiter = request.app.state.work_limiter
    return limiter


WorkLimiterDep = Annotated[WorkLimiter, Depends(get_work_limiter)]
