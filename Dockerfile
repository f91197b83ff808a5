# One image for web (gunicorn), worker and beat; compose.yaml runs them, docs/deploy.md explains.
#   web:     docker run IMAGE                            gunicorn on $PORT (8000)
#   worker:  docker run IMAGE python -m celery -A config worker --loglevel=INFO
#   beat:    docker run IMAGE python -m celery -A config beat --loglevel=INFO    (one, never more)
#   migrate: docker run IMAGE python manage.py migrate --noinput                 (before each release)
# No container engine runs where Flowdesk is tested: bin/image_check.py performs these same steps
# in a scratch folder, as the same user, and tests/deploy/test_image.py runs it.

# --- build: the dependencies alone, in a virtualenv that the runtime stage copies whole. The
# project itself is not installed (it runs from /app), so this layer is rebuilt only when
# pyproject.toml or constraints.txt change, not at every change of code.
FROM python:3.13-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml constraints.txt ./
RUN python -m venv /venv \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && /venv/bin/pip install -c constraints.txt -r requirements.txt

# --- runtime: no compiler, no pip cache, no build files.
FROM python:3.13-slim
# A fixed numeric id, named by USER below: Kubernetes' runAsNonRoot can only verify a number.
RUN useradd --create-home --uid 10001 --user-group flowdesk
WORKDIR /app
ENV PATH=/venv/bin:$PATH PYTHONPATH=/app PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    FLOWDESK_MODE=production FLOWS_ENGINE_ENABLED=false FLOWDESK_VAR_DIR=/app/var \
    PORT=8000 WEB_CONCURRENCY=2 PROMETHEUS_MULTIPROC_DIR=/app/var/metrics
COPY --from=build /venv /venv
# The code belongs to root and stays read-only to the user that runs it; only var/ is writable
# (beat's schedule file; var/metrics, where each gunicorn and Celery process of the container
# writes its Prometheus counters for /metrics to sum: docs/operations.md). .dockerignore keeps
# the tests, benchmarks, docs and local state out.
COPY . .
# collectstatic needs settings that import cleanly (production mode refuses a short key and a
# plain-http Flows API); the real secrets come at run time. The bytecode is compiled here, as the
# user cannot write it next to the code.
RUN SECRET_KEY=build-only-never-used-to-sign-anything-0123456789abcdef \
    FLOWS_API_URL=https://build.invalid FLOWS_CLIENT_ID=build-only \
    FLOWS_CLIENT_SECRET=build-only FLOWS_WEBHOOK_SECRET=whsec_YnVpbGQ= \
    DATABASE_URL=postgres://build-only@localhost/never-connected ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && python -m compileall -q -j 0 /app \
    && mkdir -p /app/var/metrics && chown -R 10001:10001 /app/var
USER 10001:10001
EXPOSE 8000
# GET /healthz on $PORT with a Host header from ALLOWED_HOSTS (bin/healthcheck.py says why).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "bin/healthcheck.py"]
# gunicorn's own environment: it binds 0.0.0.0:$PORT, starts $WEB_CONCURRENCY processes, and takes
# further options from GUNICORN_CMD_ARGS (`--timeout 60`). gthread: a slow call to the Flows API
# holds one thread, not a whole process, and the embedded engine (when on) can answer a request
# that this same server makes.
# No gunicorn access log: Flowdesk logs each request itself, as JSON with its request id and the
# URL pattern, never the path (a password-reset link carries its token there; LOG_REQUESTS).
CMD ["python", "-m", "gunicorn", "config.wsgi:application", "-k", "gthread", "--threads", "8"]
