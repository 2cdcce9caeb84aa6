# syntax=docker/dockerfile:1
# rentan-recon: one image for both services and the CLI.
#   docker build -t rentan-recon:0.1.0 .
#   docker run rentan-recon:0.1.0 ingest          # or: reconcile, db upgrade, status, alerts...
# Settings come from RECON_* environment variables (docs/operations.md); secrets from the orchestrator.

# --- build: the locked dependencies and the project, as wheels --------------------------------------
# requirements.lock (scripts/lock.sh) pins every runtime dependency and the build backend with their
# sha256 hashes: pip refuses any file that differs, and nothing unpinned is downloaded.
FROM python:3.11-slim AS build
WORKDIR /src
COPY requirements.lock ./
RUN pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements.lock \
    && pip install --no-cache-dir --no-index --find-links /wheels --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

# --- run ------------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RECON_HTTP_HOST=0.0.0.0 \
    RECON_SCHEMAS_DIR=/app/schemas \
    HEALTH_PORT=9464
RUN groupadd --system --gid 10001 recon \
    && useradd --system --uid 10001 --gid recon --home-dir /app --no-create-home --shell /usr/sbin/nologin recon \
    && mkdir -p /app/data \
    && chown recon:recon /app/data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels
COPY schemas /app/schemas
# The default SQLite ledger (sqlite:///recon.db) lands in /app/data; mount a volume there, or set
# RECON_DATABASE_URL to PostgreSQL as production does.
WORKDIR /app/data
USER 10001:10001
# 9464: ingest's /metrics, /healthz, /readyz; 9465: reconcile's, plus the status page at /.
EXPOSE 9464 9465
# Liveness of whichever service runs (HEALTH_PORT=9465 for reconcile). Orchestrators use /readyz too.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HEALTH_PORT', '9464'), timeout=3)"]
ENTRYPOINT ["recon"]
CMD ["--help"]
