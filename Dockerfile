# Image filter service: a wheel built in one stage, installed into a slim runtime in another.
#   docker build -t imgfilter-service:0.1.0 .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp imgfilter-service:0.1.0
# No `# syntax=` line: the engine's built-in frontend builds this file, so a build needs no
# registry beyond the base image's (deploy/README.md). Engine 20.10 or later.
# tests/test_deploy.py runs this file's wheel build and CMD, so keep them in this form.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: the project wheel only (dependencies come as wheels from PyPI at install) ----
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- runtime: no compilers, no sources, non-root ----
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TMPDIR=/tmp \
    IMGFILTER_HOST=0.0.0.0 \
    IMGFILTER_PORT=8000
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /wheels /wheels
COPY deploy/requirements.lock /wheels/requirements.lock
# Dependencies exactly as locked (`make lock`), each wheel checked against its hash, wheels only
# (there is no compiler to build one); then the project's wheel, resolving nothing again.
RUN python -m pip install --no-cache-dir --only-binary=:all: --require-hashes \
        -r /wheels/requirements.lock \
    && python -m pip install --no-cache-dir --no-deps /wheels/*.whl \
    && rm -rf /wheels
WORKDIR /tmp
USER 10001:10001
# Settings are IMGFILTER_* variables (README), IMGFILTER_HOST/IMGFILTER_PORT included (the CMD
# takes them from the environment, and so does the healthcheck). IMGFILTER_WORKERS unset = one
# worker per CPU the container may use. /tmp must be writable (tmpfs): the per-start Prometheus
# multiprocess directory lives there. The first check runs one interval after the start (no
# --start-interval before Engine 25), so the interval is short; a check costs ~20 ms of CPU.
EXPOSE 8000
HEALTHCHECK --interval=3s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-m", "service.runtime.healthcheck"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "service", "serve"]
