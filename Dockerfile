# lmsauth: one image for every instance of a deployment (see docs/operations.md).
#   docker build -t lmsauth .
#   docker run -p 8000:8000 -e LMSAUTH_SECRET_KEY=... -e LMSAUTH_DATABASE_URL=postgresql+asyncpg://... lmsauth
# `lmsauth serve` applies the database migrations before it listens (a no-op at head), so a
# single container needs nothing else; compose.yaml runs `lmsauth db upgrade` once, first,
# so that two instances starting together never race to create the tables.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LMSAUTH_DATA_DIR=/var/lib/lmsauth \
    LMSAUTH_LOG_FORMAT=json
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/lmsauth --create-home lmsauth
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER lmsauth
WORKDIR /var/lib/lmsauth
EXPOSE 8000
# Liveness only: /readyz (database and Redis answer) is for the load balancer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["lmsauth"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
