# rollback-bot: a slim, non-root image. Build: docker build -t rollback-bot .
FROM python:3.11-slim AS build
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY bot ./bot
COPY adapters ./adapters
COPY migrations ./migrations
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 rollback
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ROLLBACK_POLICY=/etc/rollback-bot/rollback.toml
USER rollback
WORKDIR /home/rollback
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"
# Run `rollback-bot db upgrade` once per release against PostgreSQL (SQLite upgrades itself on start).
CMD ["rollback-bot", "serve", "--host", "0.0.0.0", "--port", "3000"]
