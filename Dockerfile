# syntax=docker/dockerfile:1
# callguard: build with `docker build -t callguard .`, run with e.g.
#   docker run -p 8000:8000 -v callguard-var:/srv/callguard/var \
#     -e CALLGUARD_PUBLIC_BASE_URL=https://callguard.example.org callguard
# The container migrates the database, then serves on 0.0.0.0:8000. Any other command
# runs after the migration too: `docker run --rm callguard callguard users add …`.

# ---- builder: a venv with callguard and its dependencies ---------------------------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
# Only what the package build needs (pyproject.toml and the app package).
COPY pyproject.toml ./
COPY app ./app
RUN pip install .

# ---- runtime ----------------------------------------------------------------------------
FROM python:3.11-slim

# Why /srv/callguard + PYTHONPATH: `pip install .` puts only the `app` package into
# site-packages, while alembic.ini and migrations/ live at the repository root, and
# app/storage/migrate.py finds them at ROOT = Path(__file__).parents[2]. Imported from
# site-packages, ROOT would be .../site-packages, where there is no alembic.ini. So the
# source tree (app/, migrations/, alembic.ini) is copied to /srv/callguard and
# PYTHONPATH=/srv/callguard puts it before site-packages: `app` is imported from
# /srv/callguard/app, ROOT is /srv/callguard, and `callguard migrate` finds
# /srv/callguard/alembic.ini. The venv supplies the dependencies and the `callguard`
# script. (migrations/env.py imports `app` the same way.)
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/srv/callguard \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CALLGUARD_HOST=0.0.0.0 \
    CALLGUARD_PORT=8000

# A fixed numeric id, so that orchestrators can verify it is not root (runAsNonRoot).
RUN groupadd --system --gid 10001 callguard \
    && useradd --system --uid 10001 --gid callguard --home-dir /srv/callguard \
       --no-create-home --shell /usr/sbin/nologin callguard

COPY --from=builder /opt/venv /opt/venv

WORKDIR /srv/callguard
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
# ./var holds the default SQLite database (sqlite:///var/callguard.db), the journal
# (./var/journal) and the simulator's dev token: the only place the service writes.
# Mount a volume here to keep them; the code itself stays root-owned and read-only.
RUN python -m compileall -q app migrations \
    && mkdir -p var/journal \
    && chown -R callguard:callguard var \
    && chmod 0750 var

USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:' + os.environ.get('CALLGUARD_PORT', '8000') + '/healthz'; sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]

# Migrate, then `exec` the command so that it replaces the shell: uvicorn runs as PID 1
# and receives SIGTERM from `docker stop` directly (graceful shutdown).
ENTRYPOINT ["/bin/sh", "-c", "callguard migrate && exec \"$@\"", "callguard-entrypoint"]
CMD ["callguard", "serve"]
