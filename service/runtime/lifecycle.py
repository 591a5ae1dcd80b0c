"""Readiness and graceful shutdown of one worker process.

What uvicorn does on SIGTERM (read in uvicorn 0.54's ``server.py``; unchanged since 0.29):
``Server.capture_signals`` installs ``Server.handle_exit`` with ``signal.signal`` for SIGINT
and SIGTERM; the handler only sets ``should_exit``. Within 0.1 s the main loop notices and
``Server.shutdown`` runs: it closes the listening socket (new connections are refused), asks
every open connection to close after its current response (idle keep-alive connections close
at once), waits up to ``timeout_graceful_shutdown`` for in-flight requests, cancels what is
left, and only then sends the ASGI ``lifespan.shutdown`` event. With ``--workers N`` the
supervisor process receives the signal and forwards SIGTERM to every worker, which then does
the above.

So a readiness flag flipped in the lifespan shutdown phase is useless (nothing can ask any
more), and even one flipped by the signal is visible only briefly, because the listener closes
within 0.1 s. What a load balancer or Kubernetes needs is a window in which the process still
serves but ``/readyz`` answers 503, so it stops routing new traffic before the socket closes.
:func:`install_signal_hooks` provides it: it wraps the server's own SIGTERM/SIGINT handlers
(after uvicorn installed them, at ASGI lifespan startup) so that the first signal

1. marks the process not ready at once (``is_ready()`` is False, ``/readyz`` answers 503),
2. waits ``shutdown_delay_s`` while serving normally (0 by default; set it to a few seconds
   under Kubernetes, where endpoint removal races with SIGTERM), then
3. calls uvicorn's handler, which drains in-flight requests as described above.

A second signal during the delay skips the rest of the delay; uvicorn force-quits on a
further SIGINT as usual. Under Kubernetes the delay plus ``graceful_timeout_s`` must stay below
``terminationGracePeriodSeconds``.

The worker's one ASGI lifespan is :func:`worker_lifespan` (``create_app`` passes it to
``FastAPI(lifespan=...)``). At startup it marks the process ready, installs the signal hooks
(uvicorn installs its handlers before it runs the lifespan) and, when the supervisor made a
load board, joins it and subscribes it to the limiter's load hooks; at shutdown it detaches
the board and frees its record. :func:`work_limiter` builds the limiter with the idle heap
trimmer subscribed to its "fell idle" hook.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import FrameType
from typing import Any

from ..config import Settings
from . import balancing
from .limiter import WorkLimiter
from .memory import IdleTrimmer

__all__ = [
    "STATE",
    "Lifespan",
    "ReadinessState",
    "install_signal_hooks",
    "is_ready",
    "work_limiter",
    "worker_lifespan",
]

logger = logging.getLogger("imgfilter.lifecycle")

SignalHandler = Callable[[int, FrameType | None], Any]
_HOOKED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ReadinessState:
    """Whether this process should receive new traffic.

    The process starts ready; a shutdown signal makes it *draining* (not ready) for good,
    except that a new lifespan startup (a test re-entering ``TestClient``) resets it.
    """

    __slots__ = ("_draining",)

    def __init__(self) -> None:
        self._draining = False

    @property
    def draining(self) -> bool:
        """True once a shutdown signal arrived."""
        return self._draining

    def is_ready(self) -> bool:
        """True while the process accepts new work (no shutdown signal yet)."""
        return not self._draining

    def mark_draining(self) -> None:
        """Stop advertising readiness; in-flight and new requests are still served."""
        self._draining = True

    def mark_ready(self) -> None:
        """Advertise readiness again (called at lifespan startup)."""
        self._draining = False


STATE = ReadinessState()


def is_ready() -> bool:
    """Readiness of this worker process, for ``GET /readyz``."""
    return STATE.is_ready()


def _hooked(handler: object) -> bool:
    return bool(getattr(handler, "_imgfilter_hook", False))


def _make_hook(
    previous: SignalHandler, shutdown_delay_s: float, state: ReadinessState
) -> SignalHandler:
    timer: threading.Timer | None = None
    # Calling Python's default SIGINT handler from the timer thread would raise
    # KeyboardInterrupt in that thread, not in the server: no delay for it.
    delay = shutdown_delay_s if previous is not signal.default_int_handler else 0.0

    def hook(signum: int, frame: FrameType | None) -> None:
        nonlocal timer
        first = not state.draining
        state.mark_draining()
        if first and delay > 0:
            logger.info(
                "shutdown signal: not ready, serving for the shutdown delay",
                extra={"signal": signal.Signals(signum).name, "shutdown_delay_s": delay},
            )
            timer = threading.Timer(delay, previous, args=(signum, None))
            timer.daemon = True
            timer.start()
            return
        if timer is not None:
            timer.cancel()
            timer = None
        previous(signum, frame)

    hook._imgfilter_hook = True  # type: ignore[attr-defined]
    return hook


def install_signal_hooks(shutdown_delay_s: float = 0.0, state: ReadinessState = STATE) -> bool:
    """Wrap the current SIGTERM/SIGINT handlers so a shutdown first flips readiness.

    Call it after the server installed its handlers (uvicorn: at ASGI lifespan startup;
    :func:`worker_lifespan` does). Handlers that are not Python callables (``SIG_DFL``,
    ``SIG_IGN``) and already-wrapped ones are left alone.

    Parameters
    ----------
    shutdown_delay_s : float
        Seconds to keep serving, not ready, before the wrapped handler runs; >= 0.
    state : ReadinessState
        The flag to flip (the process-wide one by default).

    Returns
    -------
    bool
        False when not on the main thread (signals cannot be handled there, e.g. under
        ``TestClient``), True otherwise.
    """
    if shutdown_delay_s < 0:
        raise ValueError("`shutdown_delay_s` must be >= 0")
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in _HOOKED_SIGNALS:
        previous = signal.getsignal(signum)
        if not callable(previous) or _hooked(previous):
            continue
        signal.signal(signum, _make_hook(previous, shutdown_delay_s, state))
    return True


Lifespan = Callable[[Any], AbstractAsyncContextManager[None]]
"""What ``FastAPI(lifespan=...)`` takes: the app in, an async context manager out."""


def work_limiter(settings: Settings) -> WorkLimiter:
    """The worker's :class:`WorkLimiter`, its "fell idle" hook trimming the heap.

    The trimmer returns freed heap memory to the OS once RSS grew by ``idle_trim_mib`` since
    the last trim (:class:`~service.runtime.memory.IdleTrimmer`; 0 turns it off).
    """
    trimmer = IdleTrimmer(settings.idle_trim_mib * 2**20)
    return WorkLimiter(settings, on_idle=trimmer.idle)


def worker_lifespan(settings: Settings, limiter: WorkLimiter | None = None) -> Lifespan:
    """The lifespan of a worker's app: readiness and shutdown hooks, the load board.

    Startup marks the process ready and wraps the shutdown signal handlers
    (:func:`install_signal_hooks`, ``settings.shutdown_delay_s``). With ``limiter`` and
    ``settings.rebalance_connections``, it joins the load board named in
    ``IMGFILTER_LOAD_BOARD`` (``serve`` with several workers;
    :func:`~service.runtime.balancing.join_from_environment`) and subscribes it to the
    limiter: the board records each change of the load, and its
    :meth:`~service.runtime.balancing.LoadBoard.busier_than_a_sibling` answers
    :meth:`~service.runtime.limiter.WorkLimiter.should_release_connection`. The board is
    also on ``app.state.load_board`` (None without one). Shutdown detaches and leaves it.
    """

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        STATE.mark_ready()
        install_signal_hooks(settings.shutdown_delay_s)
        board = None
        if limiter is not None and settings.rebalance_connections:
            board = balancing.join_from_environment()
            if board is not None:
                limiter.watch_load(board.publish, board.busier_than_a_sibling)
        app.state.load_board = board
        try:
            yield
        finally:
            app.state.load_board = None
            if board is not None:
                if limiter is not None:
                    limiter.watch_load(None)
                board.leave()

    return lifespan
