"""``python -m service.runtime.healthcheck``: exit 0 if this host's server answers ``GET /healthz``.

The container healthcheck (Dockerfile ``HEALTHCHECK``, compose ``healthcheck``). It reads the
address the server binds from ``IMGFILTER_HOST`` and ``IMGFILTER_PORT`` (defaults
``127.0.0.1`` and ``8000``, as :class:`service.config.Settings`), so it follows the server
to another port. A wildcard host (``0.0.0.0``, ``::`` or empty) is checked on the loopback
address of its family. Standard library only, so a check starts quickly: exit 0 on a 2xx
answer within ``timeout`` seconds (2), else 1 with the reason on stderr.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import sys
from collections.abc import Mapping


def address(env: Mapping[str, str]) -> tuple[str, int]:
    """``(host, port)`` to check for the server configured by ``env``."""
    host = env.get("IMGFILTER_HOST", "").strip() or "127.0.0.1"
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(host)
        if ip.is_unspecified:  # a wildcard: ask on the loopback address of its family
            host = "::1" if ip.version == 6 else "127.0.0.1"
    return host, int(env.get("IMGFILTER_PORT", "").strip() or "8000")


def healthz_url(env: Mapping[str, str]) -> str:
    """The ``/healthz`` URL of the server configured by ``env`` (``IMGFILTER_HOST``/``PORT``)."""
    host, port = address(env)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"


def main(env: Mapping[str, str] = os.environ, timeout: float = 2.0) -> int:
    """Check once; 0 if healthy, 1 if not (the reason goes to stderr)."""
    host, port = address(env)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        status = connection.getresponse().status
    except OSError as exc:  # refused, unreachable, timed out
        print(f"unhealthy: {healthz_url(env)}: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if 200 <= status < 300:
        return 0
    print(f"unhealthy: {healthz_url(env)}: HTTP {status}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
