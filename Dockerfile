# syntax=docker/dockerfile:1
# stemtrace server image: Node builds the UI, a Python stage builds the wheel (which then
# contains the UI), and a slim runtime installs that wheel and runs as a non-root user.
#
#   docker build -t stemtrace .
#   docker run -p 7373:7373 -e STEMTRACE_BROKER=redis://host:6379/0 \
#     -e STEMTRACE_AUTH_USER=admin -e STEMTRACE_AUTH_PASSWORD=change-me stemtrace

ARG PYTHON_VERSION=3.12
ARG NODE_VERSION=22

# --- 1. the web UI -------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS ui
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
# vite writes the bundle into ../src/stemtrace/server/static (see frontend/vite.config.ts)
RUN mkdir -p /src/src/stemtrace/server && npm run build

# --- 2. the wheel ---------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS wheel
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m pip install "build==1.2.2.post1"
COPY . .
COPY --from=ui /src/src/stemtrace/server/static/ src/stemtrace/server/static/
# No Node in this stage: the build hook packs the UI built above instead of rebuilding it.
RUN python -m build --wheel --outdir /dist

# --- 3. the runtime -------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="stemtrace" \
      org.opencontainers.image.description="See what your Celery workflows really did." \
      org.opencontainers.image.source="https://github.com/stemtrace/stemtrace" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STEMTRACE_HOST=0.0.0.0 \
    STEMTRACE_PORT=7373 \
    STEMTRACE_STORE=sqlite:////data/stemtrace.db
COPY --from=wheel /dist/ /tmp/dist/
# The same pins the test suite runs with (constraints.txt at the repository root).
COPY constraints.txt /tmp/dist/constraints.txt
SHELL ["/bin/sh", "-eu", "-c"]
RUN wheel="$(ls /tmp/dist/stemtrace-*.whl)" \
    && python -m pip install --constraint /tmp/dist/constraints.txt "${wheel}[server]" \
    && rm -rf /tmp/dist \
    && useradd --create-home --uid 10001 --user-group stemtrace \
    && mkdir -p /data \
    && chown stemtrace:stemtrace /data
USER 10001:10001
WORKDIR /home/stemtrace
VOLUME ["/data"]
EXPOSE 7373
# Healthy when /api/health (public, no credentials needed) answers and reports status "ok";
# "degraded" means the database or the ingest has a problem (docs/deployment.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import json, os, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('STEMTRACE_PORT', '7373'), timeout=4); raise SystemExit(json.load(r)['status'] != 'ok')"]
ENTRYPOINT ["stemtrace"]
CMD ["server"]
