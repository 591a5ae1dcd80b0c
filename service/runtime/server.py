"""``serve(settings)``: run the app under uvicorn the way production does (``make run``, Docker).

What it sets up, and why:

* **Its own listening sockets, with ``TCP_NODELAY``**
  (:func:`~service.runtime.worker.bind_socket`): uvicorn's own socket has ``proto == 0``, on
  which asyncio does not set ``TCP_NODELAY`` (see :mod:`service.runtime.worker`). One worker
  runs in this process on one such socket.
* **A listening socket per worker** (``SO_REUSEPORT``), not one shared socket: with a shared
  socket the first worker to wake accepts a whole burst of connections and keep-alive clients
  (load balancers, proxies, benchmarks) stay on it, one worker busy and the other idle; the
  kernel spreads connections over per-worker sockets by their hash. Each worker binds its own
  in its entry point (:func:`~service.runtime.worker.worker_main`); this process keeps an
  anchor on the address (:func:`~service.runtime.supervisor.bind_anchor`).
* **Load-aware spreading of keep-alive connections** (:mod:`service.runtime.balancing`): the
  hash places connections blind to load, so with several workers ``serve`` creates a shared
  load board (``IMGFILTER_LOAD_BOARD``, a small file in the temp dir, removed at exit) on which
  each worker publishes its admitted requests; a worker 2 or more requests busier than a
  sibling answers ``Connection: close`` so the client reconnects and is hashed afresh.
  ``IMGFILTER_REBALANCE_CONNECTIONS=false`` turns it off.
* **Worker supervision** (:class:`~service.runtime.supervisor.Supervisor`, uvicorn's
  ``Multiprocess`` loop): it restarts a worker that dies or hangs and forwards SIGTERM/SIGINT;
  a worker gets SIGTERM from the kernel if the supervisor itself dies, so none outlives it; it
  tells prometheus-client about dead workers and stops when workers die right after starting
  (an app that raises at import), so the command exits 3 instead of restarting them forever.
* **Prometheus multiprocess directory.** With several workers each start gets a fresh, empty
  directory (under ``$PROMETHEUS_MULTIPROC_DIR`` if that names a directory, else the system
  temp dir, which honours ``TMPDIR``), exported as ``PROMETHEUS_MULTIPROC_DIR`` before any
  worker starts and removed at exit. One worker keeps metrics in memory.
* **Memory**: at most 2 glibc malloc arenas per process (:func:`cap_malloc_arenas`), so RSS
  stays flat as worker threads come and go.
* **HTTP**: httptools + uvloop when installed (``"auto"``), keep-alive ``keep_alive_s``, no
  ``server`` header, no uvicorn access log (the observability middleware logs each request as
  JSON; uvicorn's own logs become JSON through
  :func:`service.runtime.observability.logging_config`).
* **Graceful shutdown**: on SIGTERM uvicorn stops accepting, lets in-flight requests finish for
  up to ``graceful_timeout_s``, then cancels them; ``shutdown_delay_s`` first keeps serving with
  ``/readyz`` at 503 (see :mod:`service.runtime.lifecycle`). The process exits 0 after a
  graceful stop.

The workers import the app as ``service.main:app``, which reads its settings from the
environment (``IMGFILTER_*``); only host, port, worker count and the trusted proxies
(``forwarded_allow_ips``, which replaces uvicorn's ``FORWARDED_ALLOW_IPS``) come from
``settings`` here.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Final

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from ..config import Settings
from .balancing import BOARD_ENV, LoadBoard
from .supervisor import MULTIPROC_ENV, Supervisor, bind_anchor
from .worker import bind_socket

__all__ = [
    "APP",
    "cap_malloc_arenas",
    "check_temp_dir",
    "serve",
    "start_line",
]

APP: Final = "service.main:app"

logger = logging.getLogger("imgfilter.server")


MALLOC_ARENA_ENV: Final = "MALLOC_ARENA_MAX"
_M_ARENA_MAX: Final = -8  # glibc's mallopt parameter number


def cap_malloc_arenas(default: int = 2) -> None:
    """At most ``MALLOC_ARENA_MAX`` (default 2) glibc malloc arenas here and in the workers.

    glibc gives threads up to 8 arenas per CPU, and each keeps the memory freed into it; as
    worker threads come and go (anyio retires idle ones after 10 s) new arenas fill up and a
    worker's RSS climbs with no leak. ``MALLOC_MMAP_THRESHOLD_`` is left to the operator (the
    measurements of both: docs/decisions/0003-idle-heap-trimming.md). The environment variable
    reaches the
    spawned workers; ``mallopt`` applies it to this process (one worker). An operator's own
    ``MALLOC_ARENA_MAX`` wins; other C libraries ignore it.
    """
    value = os.environ.setdefault(MALLOC_ARENA_ENV, str(default))
    with contextlib.suppress(OSError, AttributeError, ValueError):
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, int(value))


@contextlib.contextmanager
def _scratch_dir(prefix: str, parent: str | None = None) -> Iterator[Path]:
    """A new private directory in ``parent`` (default: the system temp dir), removed at exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _exported(name: str, value: str) -> Iterator[None]:
    """Environment variable ``name`` set to ``value`` (seen by workers spawned meanwhile)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def _metrics_dir(settings: Settings) -> Iterator[Path | None]:
    """A fresh multiprocess metrics directory for this start when several workers run."""
    if not settings.metrics_enabled or settings.workers == 1:
        yield None
        return
    parent = os.environ.get(MULTIPROC_ENV)
    base = parent if parent and Path(parent).is_dir() else None
    with _scratch_dir("imgfilter-metrics-", base) as path, _exported(MULTIPROC_ENV, str(path)):
        yield path


@contextlib.contextmanager
def _load_board(settings: Settings) -> Iterator[Path | None]:
    """A fresh load board for this start, named in ``IMGFILTER_LOAD_BOARD``, when balancing.

    Twice as many records as workers, so a replacement worker finds one even before its
    predecessor's record is seen as dead. Without a writable temp dir the server runs without
    balancing (logged).
    """
    if settings.workers == 1 or not settings.rebalance_connections:
        yield None
        return
    with contextlib.ExitStack() as stack:
        path: Path | None
        try:
            path = stack.enter_context(_scratch_dir("imgfilter-board-")) / "load"
            LoadBoard.create(path, slots=2 * settings.workers)
        except OSError as exc:  # no writable temp dir: serve without balancing
            logger.warning("connection balancing off: cannot create the load board: %s", exc)
            path = None
        else:
            stack.enter_context(_exported(BOARD_ENV, str(path)))
        yield path


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler outside uvicorn: uvicorn re-raises the signal it handled on exit."""


def _run_single(config: uvicorn.Config, sock: socket.socket) -> None:
    server = uvicorn.Server(config)
    # After a graceful stop uvicorn restores the previous handlers and re-raises the signal it
    # caught; a no-op SIGTERM handler lets ``serve`` return (exit 0, cleanup done) instead of
    # the process dying of SIGTERM. A re-raised SIGINT becomes KeyboardInterrupt, caught here.
    previous = signal.signal(signal.SIGTERM, _ignore_signal)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def start_line(host: str, port: int) -> str:
    """The human line ``serve`` prints on a terminal: the playground's and the docs' URLs.

    A wildcard bind (``0.0.0.0``, ``::``) is shown as ``127.0.0.1``: the address a browser on
    this machine opens.
    """
    try:
        wildcard = ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name
        wildcard = False
    shown = "127.0.0.1" if wildcard or not host else host
    base = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
    return f"Image filter service: open {base}/ (playground), {base}/docs (API docs); Ctrl+C stops"


def check_temp_dir() -> None:
    """Exit 3 with a clear error unless a temporary file can be made (``TMPDIR``, ``/tmp``...).

    The metrics directory, the load board and uploads spooled by the multipart parser live
    there; on a read-only root filesystem without a writable ``/tmp`` the start would
    otherwise end in a traceback from deep inside ``tempfile``.
    """
    try:
        with tempfile.TemporaryFile():
            pass
    except OSError as exc:
        message = (
            f"no writable temporary directory ({exc}); with a read-only root filesystem mount "
            "one on /tmp (docker run --tmpfs /tmp, compose `tmpfs: [/tmp]`, a Kubernetes "
            "emptyDir) or point TMPDIR at a writable directory"
        )
        if logger.hasHandlers():
            logger.error(message)
        else:  # logging is not configured yet: one plain line on stderr
            print(f"imgfilter serve: {message}", file=sys.stderr)
        raise SystemExit(STARTUP_FAILURE) from None


def serve(settings: Settings, *, app: str = APP) -> None:
    """Serve ``app`` (an import string) with ``settings.workers`` processes until stopped.

    Parameters
    ----------
    settings : Settings
        Host, port, workers, log level, keep-alive and shutdown timings are read from it.
    app : str
        ``"module:attribute"`` of the ASGI app; each worker imports it.

    Raises
    ------
    SystemExit
        With code 3 when the socket cannot be bound or a worker fails to start.
    """
    cap_malloc_arenas()
    check_temp_dir()
    with _metrics_dir(settings) as metrics_dir, _load_board(settings) as load_board:
        # Imported only now: prometheus-client picks its storage when first imported.
        from .observability import logging_config

        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="auto",
            http="auto",
            lifespan="on",
            log_config=logging_config(settings.log_level),
            log_level=settings.log_level,
            access_log=False,
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            timeout_keep_alive=settings.keep_alive_s,
            timeout_graceful_shutdown=settings.graceful_timeout_s,
        )
        try:
            if settings.workers > 1:
                sock = bind_anchor(settings.host, settings.port)
            else:
                sock = bind_socket(settings.host, settings.port)
        except OSError as exc:
            logger.error("cannot bind %s:%d: %s", settings.host, settings.port, exc)
            raise SystemExit(STARTUP_FAILURE) from exc
        with sock:
            host, port = sock.getsockname()[:2]
            logger.info(
                "listening on http://%s:%d",
                f"[{host}]" if ":" in host else host,
                port,
                extra={
                    "workers": settings.workers,
                    "pid": os.getpid(),
                    "python": sys.version.split()[0],
                    "metrics_dir": str(metrics_dir) if metrics_dir else None,
                    "load_board": str(load_board) if load_board else None,
                },
            )
            if sys.stdout.isatty():  # a person at a terminal: where to point the browser
                print(start_line(host, port), flush=True)
            if settings.workers > 1:
                supervisor = Supervisor(config, (host, port))
                supervisor.run()
                if supervisor.startup_failed:
                    raise SystemExit(STARTUP_FAILURE)
            else:
                _run_single(config, sock)
