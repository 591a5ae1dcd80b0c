"""Real server processes for tests: the helpers live in ``testkit`` (shared with ``bench/``)."""

from testkit.procfs import (
    children,
    cpu_seconds,
    dead_pid,
    established_connections,
    rss_kib,
    running,
    worker_pids,
)
from testkit.servers import ROOT, Server, free_port, running_server, uvicorn_args, wait_healthy

__all__ = [
    "ROOT",
    "Server",
    "children",
    "cpu_seconds",
    "dead_pid",
    "established_connections",
    "free_port",
    "rss_kib",
    "running",
    "running_server",
    "uvicorn_args",
    "wait_healthy",
    "worker_pids",
]
