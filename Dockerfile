# syntax=docker/dockerfile:1
# pyaichat: one container, one process, port 8000. Data (SQLite, sessions) lives in the /app/data volume.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY services ./services
COPY pages ./pages
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir ".[postgres]" \
    && XDG_CACHE_HOME=/opt/cache /opt/venv/bin/python -m app.static_assets \
    && find /opt/venv -depth -type d -name __pycache__ -exec rm -rf {} +

FROM python:3.11-slim
LABEL org.opencontainers.image.title="pyaichat" \
      org.opencontainers.image.description="Self-hosted AI chat gateway and chat UI" \
      org.opencontainers.image.licenses="MIT"
ENV PATH="/opt/venv/bin:${PATH}" \
    XDG_CACHE_HOME=/opt/cache \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYAICHAT_ENV=production \
    DATABASE_PATH=/app/data/chat.db \
    NICEGUI_STORAGE_PATH=/app/data/.nicegui \
    APP_HOST=0.0.0.0 \
    APP_PORT=8000
RUN groupadd --system --gid 10001 pyaichat \
    && useradd --system --uid 10001 --gid pyaichat --home-dir /app --no-create-home --shell /usr/sbin/nologin pyaichat \
    && mkdir -p /app/data \
    && chown pyaichat:pyaichat /app/data
COPY --from=build /opt/venv /opt/venv
# NiceGUI's scripts and styles, Brotli-compressed while the image was built (app/static_assets.py)
COPY --from=build /opt/cache /opt/cache
WORKDIR /app
USER 10001:10001
VOLUME ["/app/data"]
EXPOSE 8000
# The open-files limit is the runtime's to set (docker-compose.yml: ulimits nofile 65536; docker run:
# --ulimit nofile=65536:65536); the process raises its soft limit to the hard one at start.
# the signal `docker stop` sends: pyaichat refuses new requests, lets open calls finish for
# SHUTDOWN_GRACE_SECONDS, cuts the rest, writes the call log out and exits (see docker-compose.yml)
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status != 200)"]
CMD ["python", "-m", "app"]
