"""The process supervisor of ``serve`` with several workers.

It is uvicorn's ``Multiprocess`` loop (signals, health pings, SIGHUP restart, SIGTTIN/SIGTTOU)
with our own worker processes: each is spawned with :func:`~service.runtime.worker.worker_main`
as its target, which arms ``PR_SET_PDEATHSIG`` and binds the worker's own ``SO_REUSEPORT``
socket before it runs the server. The supervisor itself keeps only an *anchor*
(:func:`bind_anchor`): a socket bound to the address with ``SO_REUSEPORT``, not listening (so
it gets no connections), which keeps the port reserved between worker restarts.

Its own duties beyond uvicorn's:

* prometheus-client bookkeeping: a worker that died or was replaced is reported with
  ``mark_process_dead`` (its live-gauge files go; its counters stay, as they should);
* crash-loop stop: uvicorn replaces a dead worker forever, so a worker whose app raises at
  import (say a bad setting) would be restarted every half second. After
  ``_MAX_BOOT_FAILURES`` deaths in a row within ``_BOOT_GRACE_S`` of their start the
  supervisor stops and ``serve`` exits 3, like gunicorn's "worker failed to boot".
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import time
from typing import Final

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from .worker import bind_socket, worker_main

__all__ = ["MULTIPROC_ENV", "Supervisor", "bind_anchor"]

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_BOOT_GRACE_S: Final = 10.0
_MAX_BOOT_FAILURES: Final = 3
_SPAWN: Final = multiprocessing.get_context("spawn")

logger = logging.getLogger("imgfilter.server")
uvicorn_logger = logging.getLogger("uvicorn.error")


def bind_anchor(host: str, port: int) -> socket.socket:
    """Reserve ``(host, port)`` for the workers' sockets; ``OSError`` if it is in use.

    A plain bind (:func:`~service.runtime.worker.bind_socket`) probes the address first, since
    ``SO_REUSEPORT`` alone would let a second server of the same user join the port instead
    of failing. The anchor has ``SO_REUSEPORT`` but not ``SO_REUSEADDR``, so while it is held
    such a probe fails even before any worker listens, and the workers' sockets can still
    join it.
    """
    with bind_socket(host, port) as probe:
        host, port = probe.getsockname()[:2]
    return bind_socket(host, port, reuse_port=True, reuse_addr=False)


class _Worker(Process):
    """uvicorn's handle on a worker (pings, terminate, kill, join), spawning :func:`worker_main`.

    uvicorn's own handle spawns its ``Process.target``; this one's process is replaced, before
    it starts, by one whose target is our entry point, handed the worker's end of the
    health-check pipe.
    """

    def __init__(self, config: uvicorn.Config, address: tuple[str, int]) -> None:
        super().__init__(config, sockets=[])
        self.process = _SPAWN.Process(
            target=worker_main, args=(config, *address, os.getpid(), self.child_conn)
        )


class Supervisor(Multiprocess):
    """Start ``config.workers`` workers serving on ``address``; replace dead or hung ones."""

    def __init__(self, config: uvicorn.Config, address: tuple[str, int]) -> None:
        super().__init__(config, sockets=[])
        self.address = address
        self._first_seen: dict[int, float] = {}
        self._boot_failures = 0
        self.crash_looped = False

    def _start_worker(self) -> Process:
        worker = _Worker(self.config, self.address)
        worker.start()
        return worker

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self._start_worker())

    def handle_ttin(self) -> None:
        uvicorn_logger.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.processes.append(self._start_worker())

    def restart_all(self) -> None:
        """SIGHUP: replace each worker, its replacement serving before the old one stops."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start_worker()
            timeout = self.config.timeout_worker_healthcheck
            if not new.wait_until_ready(timeout, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    uvicorn_logger.error(
                        "New child process [%s] was not ready in time; keeping worker [%s] "
                        "and aborting the restart.",
                        new.pid,
                        old.pid,
                    )
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def keep_subprocess_alive(self) -> None:
        """Replace dead or hung workers (uvicorn's rule, not while stopping); bookkeeping."""
        if not self.should_exit.is_set():
            self._replace_dead_workers()
        self._track_workers()

    def _replace_dead_workers(self) -> None:
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung: no answer to the ping
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                uvicorn_logger.error(
                    "Child process [%s] failed to start, stopping the parent process.",
                    process.pid,
                )
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            uvicorn_logger.info("Child process [%s] died", process.pid)
            self.processes[index] = self._start_worker()

    def _track_workers(self) -> None:
        now = time.monotonic()
        live = {
            process.pid
            for process in self.processes
            if process.pid is not None and process.exitcode is None
        }
        dead = set(self._first_seen) - live
        for pid in dead:
            early = now - self._first_seen.pop(pid) < _BOOT_GRACE_S
            self._boot_failures = self._boot_failures + 1 if early else 0
        for pid in live - set(self._first_seen):
            self._first_seen[pid] = now
        if dead and os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            for pid in dead:
                multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        if self._boot_failures >= _MAX_BOOT_FAILURES and not self.should_exit.is_set():
            logger.error(
                "workers keep dying right after start; stopping",
                extra={"failures": self._boot_failures},
            )
            self.crash_looped = True
            self.should_exit.set()

    @property
    def startup_failed(self) -> bool:
        """True if workers crash-looped or one exited with uvicorn's start-up failure code."""
        return self.crash_looped or any(
            process.exitcode == STARTUP_FAILURE for process in self.processes
        )
