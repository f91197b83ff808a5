"""Flowdesk settings: one module, read from the environment once.

The defaults make ``make run`` work on a fresh clone (SQLite, a file-system Celery broker, the
embedded Flows engine). ``FLOWDESK_MODE=production`` refuses to start without its secrets.
"""

import os
import zoneinfo
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FLOWDESK_VAR_DIR") or BASE_DIR / "var")

MODE = env_choice("FLOWDESK_MODE", "development", ("development", "production"))
PRODUCTION = MODE == "production"

_DEV_SECRET_KEY = "django-insecure-flowdesk-development-only"
SECRET_KEY = env_str("SECRET_KEY") or _DEV_SECRET_KEY
DEBUG = env_bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"])

# --- Flows: the API Flowdesk talks to, and the engine it can serve itself ---
FLOWS_ENGINE_ENABLED = env_bool("FLOWS_ENGINE_ENABLED", default=not PRODUCTION)
FLOWS_API_URL = (env_str("FLOWS_API_URL") or "http://127.0.0.1:8000/flows-api").rstrip("/")
FLOWS_CLIENT_ID = env_str("FLOWS_CLIENT_ID") or "demo-sandbox"
FLOWS_CLIENT_SECRET = env_str("FLOWS_CLIENT_SECRET") or "demo-sandbox-secret"
FLOWS_WEBHOOK_SECRET = (
    env_str("FLOWS_WEBHOOK_SECRET") or "whsec_Zmxvd2Rlc2stZGVtby13ZWJob29rLXNlY3JldA=="
)
FLOWS_CONNECT_TIMEOUT = env_float("FLOWS_CONNECT_TIMEOUT", 5.0)
FLOWS_READ_TIMEOUT = env_float("FLOWS_READ_TIMEOUT", 20.0)
FLOWS_WEBHOOK_EVENT_TYPES = env_list(
    "FLOWS_WEBHOOK_EVENT_TYPES", ["flow.updated", "sandbox.flow.updated"]
)
# Demo logins, queues and Runs (`make run`): only against the embedded engine, unless asked for;
# pointed at a real Flows API (Sohar), Flowdesk starts no Runs there and creates no logins.
FLOWDESK_DEMO = env_bool(
    "FLOWDESK_DEMO", default=FLOWS_ENGINE_ENABLED and not env_str("FLOWS_API_URL")
)
# The admin's Flows connection page warns when no webhook came in for this long.
FLOWS_WEBHOOK_QUIET_MINUTES = env_int("FLOWS_WEBHOOK_QUIET_MINUTES", 60)
FLOWS_SYNC_CONCURRENCY = env_int("FLOWS_SYNC_CONCURRENCY", 4)
FLOWS_SYNC_SECONDS = env_float("FLOWS_SYNC_SECONDS", 60.0)

# The review queue: claims are leases; a submission is retried with back-off, then needs attention.
REVIEW_LEASE_MINUTES = env_int("REVIEW_LEASE_MINUTES", 30)
REVIEW_SUBMIT_ATTEMPTS = env_int("REVIEW_SUBMIT_ATTEMPTS", 8)
REVIEW_SUBMIT_BACKOFF = env_float("REVIEW_SUBMIT_BACKOFF", 2.0)
REVIEW_SUBMIT_BACKOFF_MAX = env_float("REVIEW_SUBMIT_BACKOFF_MAX", 300.0)
REVIEW_REFRESH_SECONDS = env_int("REVIEW_REFRESH_SECONDS", 15)

# The engine's knobs. Scale < 1 compresses the Svix retry schedule for tests and demos.
FLOWS_ENGINE_WEBHOOK_RETRY_SCALE = env_float("FLOWS_ENGINE_WEBHOOK_RETRY_SCALE", 1.0)
FLOWS_ENGINE_WEBHOOK_TIMEOUT = env_float("FLOWS_ENGINE_WEBHOOK_TIMEOUT", 15.0)
FLOWS_ENGINE_PRODUCT_LATENCY_MS = env_int("FLOWS_ENGINE_PRODUCT_LATENCY_MS", 0)
FLOWS_ENGINE_TOKEN_TTL = env_int("FLOWS_ENGINE_TOKEN_TTL", 3600)
FLOWS_ENGINE_STALE_AFTER = env_int("FLOWS_ENGINE_STALE_AFTER", 60)

if PRODUCTION:
    missing = [
        name
        for name, value, dev_value in (
            ("SECRET_KEY", SECRET_KEY, _DEV_SECRET_KEY),
            # Never the embedded engine and its demo client by default.
            ("FLOWS_API_URL", FLOWS_API_URL, None),
            ("FLOWS_CLIENT_ID", FLOWS_CLIENT_ID, "demo-sandbox"),
            ("FLOWS_CLIENT_SECRET", FLOWS_CLIENT_SECRET, "demo-sandbox-secret"),
            ("FLOWS_WEBHOOK_SECRET", FLOWS_WEBHOOK_SECRET, None),
        )
        if not env_str(name) or value == dev_value
    ]
    if not env_str("DATABASE_URL"):
        missing.append("DATABASE_URL")
    if not ALLOWED_HOSTS:
        missing.append("ALLOWED_HOSTS")
    if missing:
        raise ImproperlyConfigured(
            f"FLOWDESK_MODE=production needs these settings: {', '.join(missing)}"
        )
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be false when FLOWDESK_MODE=production")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "flows_integration",
    "reviewqueue",
    "intake",
]
if FLOWS_ENGINE_ENABLED:
    INSTALLED_APPS.append("flows_engine")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.middleware.session_limits",
    "config.middleware.time_zone",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "reviewqueue.context_processors.flows_health",
            ],
        },
    },
]

# --- Database: PostgreSQL through DATABASE_URL, SQLite otherwise ---
_database_url = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'flowdesk.sqlite3'}"
DATABASES = {"default": environ.Env.db_url_config(_database_url)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server, worker and beat share one file under `make run`: WAL and IMMEDIATE
    # transactions keep them from tripping over "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so that live servers, worker threads and worker processes started
    # by the tests all see the same test database; one per test process, so that two test
    # runs side by side never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env_int("DATABASE_CONN_MAX_AGE", 60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
# Sessions end after 30 idle minutes and 12 hours at most (config/middleware.py): the cookie
# lives for the maximum, and background polling does not count as activity.
SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_MAX_SECONDS = env_int("SESSION_MAX_SECONDS", 12 * 60 * 60)
SESSION_COOKIE_AGE = SESSION_MAX_SECONDS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
# The site's time zone: pages show times in it unless a person chose their own (Preferences).
# Times are stored in UTC whatever it says.
TIME_ZONE = env_str("TIME_ZONE") or "UTC"
if TIME_ZONE != "UTC":
    try:
        zoneinfo.ZoneInfo(TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"TIME_ZONE={TIME_ZONE!r} is not a time zone this server knows; "
            "use an IANA name such as America/New_York"
        ) from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic's target in production; elsewhere whitenoise serves straight from the finders.
STATIC_ROOT = (BASE_DIR / "staticfiles") if PRODUCTION else None
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Celery: Redis or RabbitMQ in production, a broker that needs no server by default ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
# A publisher (a web request, a webhook answer) gives up on a broker that is down within a
# fraction of a second instead of kombu's default of several seconds of retries: the database
# is the outbox and the sweepers re-send what could not be queued.
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2.0
if CELERY_BROKER_URL == "filesystem://":
    # kombu's own file-system transport lets a worker read a message half written (and die of
    # it) on a busy machine; ours writes each message whole before it can be seen.
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    _broker_dir = VAR_DIR / "celery-broker"
    # kombu's file-system transport expects its folder to exist; web, worker and beat all
    # read these settings, so whichever starts first makes it.
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        # Remote control's broadcast files; kombu puts them in ./control otherwise.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "flows-reconcile": {
        "task": "flows_integration.tasks.reconcile",
        "schedule": FLOWS_SYNC_SECONDS,
    },
    "flows-inbox-sweep": {"task": "flows_integration.tasks.sweep_inbox", "schedule": 30.0},
    "review-expire-leases": {"task": "reviewqueue.tasks.expire_leases", "schedule": 60.0},
    "review-outbox-sweep": {"task": "reviewqueue.tasks.sweep_outbox", "schedule": 30.0},
}
if FLOWS_ENGINE_ENABLED:
    CELERY_BEAT_SCHEDULE["engine-sweep"] = {
        "task": "flows_engine.tasks.sweep",
        "schedule": env_float("FLOWS_ENGINE_SWEEP_SECONDS", 15.0),
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    # httpx logs every URL at INFO; the URLs carry run ids, which are noise in production logs.
    "loggers": {"django.db.backends": {"level": "INFO"}, "httpx": {"level": "WARNING"}},
}
