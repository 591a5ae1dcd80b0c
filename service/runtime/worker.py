"""One worker process: its listening socket and its entry point, :func:`worker_main`.

* **The socket** (:func:`bind_socket`): created with ``IPPROTO_TCP`` and with ``TCP_NODELAY``
  set on the listener. uvicorn's own socket (``Config.bind_socket``) is
  ``socket.socket(AF_INET)``, i.e. ``proto == 0``, and asyncio's transports enable
  ``TCP_NODELAY`` only on sockets whose ``proto`` is ``IPPROTO_TCP``
  (``asyncio.base_events._set_nodelay``), so accepted connections would keep Nagle's algorithm
  on; uvicorn writes a response's head and body in two ``send`` calls, and the body would then
  wait for the client's delayed ACK (docs/decisions/0001-own-supervisor-reuseport.md). uvloop
  sets ``TCP_NODELAY`` on every accepted connection itself; the asyncio loop, or a platform
  without uvloop, needs ours. Linux copies the listener's ``TCP_NODELAY`` to accepted sockets.
* **The entry point** (:func:`worker_main`), the target the supervisor
  (:mod:`service.runtime.supervisor`) spawns each worker with. In order, it asks the kernel
  for SIGTERM when the supervisor dies (:func:`die_with_parent`), so no worker outlives it;
  configures logging; binds the worker's own ``SO_REUSEPORT`` socket on the server's address
  (so a replacement worker binds its own, and a dead worker's socket closes with it); answers
  the supervisor's health pings from a thread; and runs uvicorn's server until stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import threading
from multiprocessing.connection import Connection
from typing import Final

import uvicorn

__all__ = ["bind_socket", "die_with_parent", "worker_main"]

_PR_SET_PDEATHSIG: Final = 1  # linux/prctl.h


def bind_socket(
    host: str, port: int, *, reuse_port: bool = False, reuse_addr: bool = True
) -> socket.socket:
    """A TCP socket bound to ``(host, port)``: ``IPPROTO_TCP``, ``TCP_NODELAY``, inheritable.

    ``SO_REUSEADDR`` is set unless ``reuse_addr`` is false (restart without waiting for
    ``TIME_WAIT``), and ``SO_REUSEPORT`` when ``reuse_port`` (one socket per worker on the
    same address); the socket is not yet listening (uvicorn's ``create_server`` calls
    ``listen``). A host with ``:`` is IPv6.

    Raises
    ------
    OSError
        The address cannot be bound (in use, not local, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if reuse_addr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def die_with_parent(parent: int, signum: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``signum`` to this process when its parent ``parent`` dies.

    A worker outliving a SIGKILLed supervisor (the OOM killer, ``kill -9``) would keep its
    ``SO_REUSEPORT`` socket and serve on with nobody to restart or stop it.
    ``prctl(PR_SET_PDEATHSIG)`` makes the kernel signal the worker instead (SIGTERM: uvicorn
    drains and exits). If the parent is already gone when this runs (reparented), the signal
    is sent at once. Linux only; returns False where ``prctl`` is missing.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    if prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)
    return True


def _answer_pings(health: Connection, server: uvicorn.Server) -> None:
    """uvicorn's worker health check: answer each ping with whether the server has started."""
    with contextlib.suppress(EOFError, OSError):  # the supervisor closed its end
        while True:
            health.recv()
            health.send(server.started)


def worker_main(
    config: uvicorn.Config, host: str, port: int, supervisor: int, health: Connection
) -> None:
    """Run one worker: the process target the supervisor spawns.

    Parameters
    ----------
    config : uvicorn.Config
        The server's configuration (pickled from the supervisor; the app is imported here).
    host, port : str, int
        The address; this worker binds its own ``SO_REUSEPORT`` socket on it.
    supervisor : int
        The supervisor's pid: the kernel sends SIGTERM when it dies, from the first line on.
    health : Connection
        This worker's end of the supervisor's health-check pipe.
    """
    die_with_parent(supervisor)
    config.configure_logging()  # the config came pickled; logging is per process
    sock = bind_socket(host, port, reuse_port=True)
    server = uvicorn.Server(config)
    threading.Thread(target=_answer_pings, args=(health, server), daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT: the supervisor stops us anyway
        server.run(sockets=[sock])
