# syntax=docker/dockerfile:1
# Image filter service: a wheel built in one stage, installed into a slim runtime in another.
#   docker build -t imgfilter-service .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp imgfilter-service
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
    TMPDIR=/tmp
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
# Settings are IMGFILTER_* variables (README). IMGFILTER_WORKERS unset = one worker per CPU
# (set it to the container's CPU limit). /tmp must be writable (tmpfs): the per-start
# Prometheus multiprocess directory lives there.
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "service", "serve", "--host", "0.0.0.0", "--port", "8000"]
