"""Flowdesk settings: one module, read from the environment once.

The defaults make ``make run`` work on a fresh clone (SQLite, a file-system Celery broker, the
embedded Flows engine). ``FLOWDESK_MODE=production`` refuses to start without its secrets.
"""

import os
import zoneinfo
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from config.env import env_bool, env_choice, env_float, env_int, env_list, env_str
from config.logs import configure_structlog, logging_config

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
# The demo's signing secret (README: "a demo whsec_ secret"): anyone can read it here.
_DEMO_WEBHOOK_SECRET = "whsec_Zmxvd2Rlc2stZGVtby13ZWJob29rLXNlY3JldA=="
FLOWS_WEBHOOK_SECRET = env_str("FLOWS_WEBHOOK_SECRET") or _DEMO_WEBHOOK_SECRET
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
    # Values anyone can read in this repository or its README, or guess, protect nothing.
    refused = []
    if SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        refused.append("SECRET_KEY must be at least 50 random characters, not a demo key")
    if FLOWS_WEBHOOK_SECRET == _DEMO_WEBHOOK_SECRET:
        refused.append("FLOWS_WEBHOOK_SECRET is the README's demo secret")
    if urlsplit(FLOWS_API_URL).scheme.lower() != "https":
        # Client secret, bearer tokens and patients' data would cross the network in clear.
        refused.append(f"FLOWS_API_URL must be https://, not {FLOWS_API_URL!r}")
    if urlsplit(env_str("OIDC_ISSUER") or "https://").scheme.lower() != "https":
        # The provider's keys, and who signed in, would come over the network in clear.
        refused.append("OIDC_ISSUER must be https://")
    if (env_str("DATABASE_URL") or "").lower().startswith("sqlite"):
        # SQLite cannot keep the audit trail from the application that writes it (docs/security.md).
        refused.append("DATABASE_URL must be PostgreSQL, not SQLite")
    if refused:
        raise ImproperlyConfigured(f"FLOWDESK_MODE=production refuses: {'; '.join(refused)}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "audit",
    "flows_integration",
    "reviewqueue",
    "intake",
]
if FLOWS_ENGINE_ENABLED:
    INSTALLED_APPS.append("flows_engine")

MIDDLEWARE = [
    # First: every response, a redirect or an error page too, carries the request id.
    "config.middleware.request_id",
    # Probes and metrics are answered before host validation, sessions and sign-in: a probe
    # asks by the container's address, and /healthz depends on nothing (config/views.py).
    "config.middleware.probes",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Says whether this session gave its two-factor code (request.user.is_verified()).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "audit.context.acting_request",
    "config.middleware.no_store_when_signed_in",
    "config.middleware.session_limits",
    "config.middleware.time_zone",
    # After session_limits (an ended session is anonymous): no page before the code.
    "reviewqueue.two_factor.verification_required",
    # Last, as django-axes asks: it turns a locked-out sign-in into its page.
    "axes.middleware.AxesMiddleware",
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
                # The nonce of Django admin's own inline <style> (SECURE_CSP below).
                "django.template.context_processors.csp",
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
    # A server that cannot be reached, or stops answering on an open connection (a network
    # partition), fails a request and /readyz in seconds, not after the system's TCP timeouts
    # of minutes with a thread held: libpq's connect timeout, TCP keepalives on idle
    # connections, and a limit on data left unacknowledged. The URL's own parameters win.
    _database_options = DATABASES["default"].setdefault("OPTIONS", {})
    for _option, _default in {
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 5),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 30_000,  # ms
    }.items():
        _database_options.setdefault(_option, _default)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Limits on what one request may bring (docs/security.md, "Limits on input"): 1 MiB of body
# outside file uploads (the engine's API answers 413 past it) and 1,000 form fields.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1_000

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Password reset links go out by e-mail: to the console (the terminal of `make run`) unless an
# SMTP server is named. A link works once, for PASSWORD_RESET_TIMEOUT (1 hour).
MAILERS = {
    "default": (
        {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": env_str("EMAIL_HOST"),
                "port": env_int("EMAIL_PORT", 587),
                "username": env_str("EMAIL_HOST_USER") or "",
                "password": env_str("EMAIL_HOST_PASSWORD") or "",
                "use_tls": env_bool("EMAIL_USE_TLS", default=True),
            },
        }
        if env_str("EMAIL_HOST")
        else {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    )
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "Flowdesk <flowdesk@localhost>"
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 60 * 60)
# Where this site is, for links that leave it (notification e-mails are sent by Celery, with no
# request to build a URL from). In production it defaults to https:// and the first of
# ALLOWED_HOSTS, when that names one host; `make run` sets it to its own address.
_first_host = ALLOWED_HOSTS[0].lstrip(".") if ALLOWED_HOSTS else ""
FLOWDESK_BASE_URL = (
    env_str("FLOWDESK_BASE_URL")
    or (f"https://{_first_host}" if PRODUCTION and "*" not in _first_host else "")
    or ("" if PRODUCTION else "http://127.0.0.1:8000")
).rstrip("/")
_base_url = urlsplit(FLOWDESK_BASE_URL)
if _base_url.scheme not in ("http", "https") or not _base_url.netloc:
    raise ImproperlyConfigured(
        f"FLOWDESK_BASE_URL must be this site's address, such as https://flowdesk.example.org, "
        f"not {FLOWDESK_BASE_URL!r}"
    )
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Two-factor sign-in (reviewqueue/two_factor.py): a code from an authenticator app ---
# Superusers, staff (Django admin), supervisors and flow admins set it up at their first sign-in
# and give a code at every one after; reviewers too when TWO_FACTOR_FOR_REVIEWERS is on, and
# anyone who turned it on for themselves. TWO_FACTOR_ENABLED=false asks no one: for development
# only (the tests turn it off in tests/conftest.py and on where they test it). Wrong codes have
# their own limit, django-otp's doubling wait per device (1, 2, 4 ... seconds).
TWO_FACTOR_ENABLED = env_bool("TWO_FACTOR_ENABLED", default=True)
TWO_FACTOR_FOR_REVIEWERS = env_bool("TWO_FACTOR_FOR_REVIEWERS", default=False)
# The name authenticator apps show next to the person's codes.
OTP_TOTP_ISSUER = env_str("TWO_FACTOR_ISSUER") or "Flowdesk"

# --- Sign-in throttle (django-axes): wrong passwords lock out the name and the address ---
# Counted apart: 10 failures for one username, or from one address, lock that username or
# address until 15 minutes after the last one, or until a supervisor unlocks it (Sign-in locks).
# Staff behind one NAT share an address: SIGNIN_LOCKOUT_BY=username locks names only. The Flows
# engine's /oauth/token counts its client ids the same way.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("SIGNIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SIGNIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = {
    "username and address": ["username", "ip_address"],
    "username": ["username"],
}[env_choice("SIGNIN_LOCKOUT_BY", "username and address", ("username and address", "username"))]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
# The audit trail records sign-ins; axes keeps its attempts for the lockout only.
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# Sessions end after 30 idle minutes and 12 hours at most (config/middleware.py): the stored
# session lives for the maximum, and background polling does not count as activity.
SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_MAX_SECONDS = env_int("SESSION_MAX_SECONDS", 12 * 60 * 60)
SESSION_COOKIE_AGE = SESSION_MAX_SECONDS
# A session cookie (no Expires): closing the browser ends the sign-in; the server still ends the
# session at the limits above, whichever comes first.
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=True)
# One session per person: signing in ends that person's other sessions (at their next request,
# with a message saying why; config/middleware.py). Off by default: staff often keep two browsers.
SESSION_ONE_PER_USER = env_bool("SESSION_ONE_PER_USER", default=False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Single sign-on through OpenID Connect (reviewqueue/oidc.py): off unless OIDC_ISSUER is set ---
# The provider's issuer URL (`https://login.hospital.example/realms/staff`): its endpoints and
# keys are read from `<issuer>/.well-known/openid-configuration` at the first sign-in. The client
# is registered there as confidential, authorization code, redirect URI
# `https://<flowdesk>/accounts/oidc/callback/`. Read per request (tests switch it on).
OIDC_ISSUER = (env_str("OIDC_ISSUER") or "").rstrip("/")
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID") or ""
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET") or ""
if OIDC_ISSUER and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured("OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
if OIDC_ISSUER and urlsplit(OIDC_ISSUER).scheme not in ("http", "https"):
    raise ImproperlyConfigured(f"OIDC_ISSUER must be an https:// URL, not {OIDC_ISSUER!r}")
# The button reads "Sign in with <name>".
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME") or "your hospital account"
# No password form: passwords then work for superusers only (/admin/login/, the way in when the
# provider is down).
OIDC_ONLY = env_bool("OIDC_ONLY", default=False)
# A person the provider knows and Flowdesk does not gets a user with no role (else a plain page).
OIDC_CREATE_USERS = env_bool("OIDC_CREATE_USERS", default=False)
# The provider asks for a second factor itself: no Flowdesk code after signing in there.
OIDC_PROVIDER_DOES_MFA = env_bool("OIDC_PROVIDER_DOES_MFA", default=False)
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10.0)
# mozilla-django-oidc's own settings: our views and backend, PKCE, no token kept in the session.
OIDC_AUTHENTICATE_CLASS = "reviewqueue.oidc.SignIn"
OIDC_CALLBACK_CLASS = "reviewqueue.oidc.Callback"
OIDC_RP_SCOPES = "openid email profile"
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_USE_PKCE = True
OIDC_STORE_ACCESS_TOKEN = False
OIDC_STORE_ID_TOKEN = False
# Always there, idle while OIDC_ISSUER is unset: sessions signed in through it keep their user.
AUTHENTICATION_BACKENDS.append("reviewqueue.oidc.Backend")
MIDDLEWARE.insert(
    MIDDLEWARE.index("django_otp.middleware.OTPMiddleware") + 1,
    "reviewqueue.oidc.provider_verified",
)
# axes keeps a failed sign-in's query string: the callback's one-time code and state are not its.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code", "state"]

# --- Transport: HTTPS only in production, also behind a proxy that terminates TLS ---
# The header by which the proxy says the request reached it over HTTPS: `X-Forwarded-Proto`
# (meaning `X-Forwarded-Proto: https`) or `Name=value`. Without it Django takes every proxied
# request for plain HTTP: the sign-in form's https:// Origin fails the CSRF check, and the HTTPS
# redirect below would loop. Set it only if the proxy always sets or strips that header.
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header:
    _name, _, _value = _proxy_ssl_header.partition("=")
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _name.strip().upper().replace("-", "_"),
        _value.strip() or "https",
    )
# Origins (`https://flowdesk.example.org`) whose forms may post here when the proxy hands Django
# another host name than the browser used.
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# The container's HEALTHCHECK asks over plain HTTP from inside: a redirect to https fails it.
# (config.middleware.probes answers /healthz, /readyz and /metrics before any redirect; listed
# here all the same, should the middleware order ever change.)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
# Django's own Content-Security-Policy: scripts and styles from this origin only. No template
# has inline script or an event handler attribute (tests/config/test_headers.py keeps it so).
# The nonce serves the inline <style> Django's admin writes on some pages with its own nonce
# attribute (`{% csp_nonce_attr %}`); it is in the header only on a page that used it.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.NONCE],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- The client's address in audit rows (config/client_ip.py) ---
# Unset: REMOTE_ADDR. Behind proxies: the header they append the address they saw to
# (`X-Forwarded-For`), and how many of them stand in a row in front of Flowdesk.
FLOWDESK_CLIENT_IP_HEADER = env_str("FLOWDESK_CLIENT_IP_HEADER") or None
FLOWDESK_TRUSTED_PROXIES = env_int("FLOWDESK_TRUSTED_PROXIES", 1)
if FLOWDESK_TRUSTED_PROXIES < 1:
    raise ImproperlyConfigured(
        f"FLOWDESK_TRUSTED_PROXIES must be 1 or more, not {FLOWDESK_TRUSTED_PROXIES}"
    )

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
    # Items near their due time, then overdue: priority up, supervisors told (once each).
    "review-escalate": {"task": "reviewqueue.tasks.escalate_items", "schedule": 60.0},
    # Notification e-mails whose on-commit task never reached the broker.
    "review-notification-emails": {
        "task": "reviewqueue.tasks.sweep_notification_emails",
        "schedule": 5 * 60.0,
    },
    "sessions-clear-expired": {
        "task": "reviewqueue.tasks.clear_expired_sessions",
        "schedule": 60 * 60.0,
    },
    # An ERROR log line when the audit trail's hash chain is broken: alert on it.
    "audit-verify": {"task": "audit.tasks.verify_trail", "schedule": 24 * 60 * 60.0},
}
if FLOWS_ENGINE_ENABLED:
    CELERY_BEAT_SCHEDULE["engine-sweep"] = {
        "task": "flows_engine.tasks.sweep",
        "schedule": env_float("FLOWS_ENGINE_SWEEP_SECONDS", 15.0),
    }

# --- Logs (config/logs.py): JSON lines in production, text for a person otherwise ---
# Every line, structlog's and the standard library's, carries the request id of the request (or
# of the request that sent the task) it was written for. docs/operations.md describes the format.
LOG_FORMAT = env_choice("LOG_FORMAT", "json" if PRODUCTION else "console", ("json", "console"))
LOG_LEVEL = (env_str("LOG_LEVEL") or "INFO").upper()
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
configure_structlog()
# One line per request (method, path without its query string, status, duration, request id),
# as JSON like the rest: gunicorn's own access log can then be left off in production.
LOG_REQUESTS = env_bool("LOG_REQUESTS", default=PRODUCTION)
# The proxy's request id header, taken when it looks like one (hex digits and dashes, 16-64 of
# them); empty: always make our own. Either way the response carries it as X-Request-ID.
REQUEST_ID_HEADER = env_str("REQUEST_ID_HEADER", "X-Request-ID") or ""

# --- Probes and metrics (config/health.py, config/metrics.py, docs/operations.md) ---
# /readyz answers 503 when one of these fails (the others are reported, not counted): of
# database, migrations, broker and flows, by default the first two. Staff keep working while
# Sohar or the broker is down (drafts, the outbox): such an outage must not take every web
# process out of the load balancer at once.
READYZ_REQUIRED = env_list("READYZ_REQUIRED", ["database", "migrations"])
if unknown_checks := set(READYZ_REQUIRED) - {"database", "migrations", "broker", "flows"}:
    raise ImproperlyConfigured(
        f"READYZ_REQUIRED names unknown checks: {', '.join(sorted(unknown_checks))}"
    )
# The broker and the Flows API are asked at most this often per process; a probe in between is
# answered from the last outcome, so a probe every second does not call Sohar every second.
READYZ_CACHE_SECONDS = env_float("READYZ_CACHE_SECONDS", 10.0)
# How long the broker and the Flows API may take to answer the check.
READYZ_TIMEOUT = env_float("READYZ_TIMEOUT", 2.0)
# /metrics answers only a scraper that sends `Authorization: Bearer <token>`; unset, it answers
# 404 (development: to this machine only). METRICS_TOKEN_FILE works too.
METRICS_TOKEN = env_str("METRICS_TOKEN") or ""
# A Celery worker serves its own counters (Flows API calls, reconcile, deliveries) on this port
# when set (0: off), under the same token: for a worker in its own container (docs/operations.md).
METRICS_WORKER_PORT = env_int("METRICS_WORKER_PORT", 0)
METRICS_WORKER_ADDRESS = env_str("METRICS_WORKER_ADDRESS") or "0.0.0.0"
# prometheus-client's multiprocess mode: a folder all processes of one host (or container)
# share and that is emptied before they start. Read by prometheus-client itself at import.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR") or ""
if PROMETHEUS_MULTIPROC_DIR:
    # prometheus-client fails every metric's creation when it is missing (a volume mounted over
    # /app/var, an emptyDir under a read-only root file system).
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
if METRICS_WORKER_PORT and not METRICS_TOKEN:
    raise ImproperlyConfigured("METRICS_WORKER_PORT needs METRICS_TOKEN")
