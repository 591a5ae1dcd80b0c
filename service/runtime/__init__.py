"""The runtime: how the service runs as processes, apart from what it computes.

============================  ===============================================================
module                        what it holds
============================  ===============================================================
:mod:`.server`                ``serve(settings)``: uvicorn's configuration, the listening
                              socket, one worker or the supervisor (``imgfilter serve``)
:mod:`.supervisor`            the supervisor of several workers (uvicorn's loop, our workers)
:mod:`.worker`                one worker: its socket and its entry point, ``worker_main``
:mod:`.lifecycle`             the worker's one ASGI lifespan: readiness, SIGTERM draining,
                              the limiter wired to the load board and the heap trimmer
:mod:`.limiter`               ``WorkLimiter``: admission, slots, queue, timeouts, and hooks
:mod:`.balancing`             the load board shared by the workers
:mod:`.memory`                ``IdleTrimmer``: ``malloc_trim`` when a worker falls idle
:mod:`.observability`         request IDs, JSON logs, Prometheus metrics
:mod:`.healthcheck`           ``python -m service.runtime.healthcheck`` (the container's)
============================  ===============================================================

Nothing here imports the domain (``service.schemas``, ``service.core``, ``service.imaging``,
``service.processing``, ``service.api``); the domain and the app (``service.main``) import
from here. Shared with the domain: ``service.config`` and ``service.errors``.
"""
