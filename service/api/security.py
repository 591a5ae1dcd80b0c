"""Access control and response hardening: optional API keys, security headers.

API keys are off by default (local use). When ``Settings.api_keys`` is set, the processing
routers require ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; keys are compared in
constant time (``hmac.compare_digest``) against every configured key. Health, readiness, docs,
kernels and metrics stay open.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .deps import SettingsDep
from .errors import AuthenticationError

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def _presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("x-api-key")


async def require_api_key(request: Request, settings: SettingsDep) -> None:
    """Dependency: 401 unless API keys are off or the request carries a configured one.

    ``async`` so FastAPI calls it on the event loop, not through its threadpool.
    """
    keys = settings.api_keys
    if not keys:
        return
    presented = _presented_key(request)
    if presented is None:
        raise AuthenticationError(
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
        )
    # Compare against every key (no early exit) so timing does not reveal which one matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented.encode(), key.encode())
    if not matched:
        raise AuthenticationError("the API key is not valid")


class SecurityHeadersMiddleware:
    """Pure-ASGI middleware adding ``SECURITY_HEADERS`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in SECURITY_HEADERS if item[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
