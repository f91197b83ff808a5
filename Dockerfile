# One image for web, worker and beat:
#   web:    docker run IMAGE
#   worker: docker run IMAGE celery -A config worker --loglevel=INFO
#   beat:   docker run IMAGE celery -A config beat --loglevel=INFO
FROM python:3.13-slim AS build
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
COPY pyproject.toml constraints.txt ./
COPY config config
COPY flowspec flowspec
COPY flows_engine flows_engine
COPY flows_integration flows_integration
COPY reviewqueue reviewqueue
COPY intake intake
COPY audit audit
COPY bench bench
RUN /venv/bin/pip install -c constraints.txt .

FROM python:3.13-slim
RUN useradd --create-home --uid 10001 flowdesk
WORKDIR /app
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    FLOWDESK_MODE=production FLOWS_ENGINE_ENABLED=false FLOWDESK_VAR_DIR=/app/var
COPY --from=build /venv /venv
COPY --chown=flowdesk:flowdesk . .
# collectstatic needs settings that import cleanly (production mode refuses a short key and a
# plain-http Flows API); the real secrets come at run time.
RUN SECRET_KEY=build-only-never-used-to-sign-anything-0123456789abcdef \
    FLOWS_API_URL=https://build.invalid FLOWS_CLIENT_ID=build-only \
    FLOWS_CLIENT_SECRET=build-only FLOWS_WEBHOOK_SECRET=whsec_YnVpbGQ= \
    DATABASE_URL=postgres://build-only@localhost/never-connected ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown flowdesk:flowdesk /app/var
USER flowdesk
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
# The access log names the path without its query string (%(U)s, not the request line %(r)s): a
# query string can carry what someone typed, and no log line may carry patient data.
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "-k", "gthread", "--workers", "2", "--threads", "8", "--access-logfile", "-", "--access-logformat", "%(h)s %(t)s \"%(m)s %(U)s\" %(s)s %(B)s %(M)sms"]
