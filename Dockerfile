# rollback-bot: built from the hash-checked runtime lock, multi-stage, runs as a non-root user (uid 10001).
#
#   docker build -t rollback-bot .                                                  # no charts (smaller)
#   docker build --build-arg LOCK=requirements-charts.lock -t rollback-bot:charts .  # PNG charts in threads
#
# Configuration: the environment (see the docs) and the policy file, read from /etc/rollback-bot/rollback.toml
# (ROLLBACK_POLICY): mount it there, read-only; deploy/kubernetes mounts a ConfigMap at that path.
# Probes: GET /healthz (liveness) and GET /readyz (readiness: database, schema, Slack) on port 3000.
# Database: SQLite under /var/lib/rollback-bot (mount a volume) by default; for PostgreSQL set DATABASE_URL
# and run `docker run … rollback-bot db upgrade` once per release before starting the new version.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG LOCK=requirements.lock
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.lock requirements-charts.lock requirements-build.lock ./
# The runtime venv gets only the lock (pip and venv's setuptools are removed at the end); the build backend,
# pinned and hashed, lives in a throwaway venv.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes -r "${LOCK}" \
 && python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes -r requirements-build.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY migrations ./migrations
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps /wheels/rollback_bot-*.whl \
 && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 rollback \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/rollback-bot --create-home \
      --shell /usr/sbin/nologin rollback \
 && mkdir -p /etc/rollback-bot
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    ROLLBACK_POLICY=/etc/rollback-bot/rollback.toml \
    DATABASE_URL=sqlite:////var/lib/rollback-bot/rollback-bot.db
USER 10001:10001
WORKDIR /var/lib/rollback-bot
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["rollback-bot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "3000"]
