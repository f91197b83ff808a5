"""Settings come from the environment, strictly; production refuses to start without secrets."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parents[2]
# Settings of ours and Django's that a developer's shell might have set: none may leak in.
_SETTING_PREFIXES = (
    "FLOWS_",
    "FLOWDESK_",
    "SECURE_",
    "CSRF_",
    "EMAIL_",
    "OIDC_",
    "TWO_FACTOR_",
    "SESSION_",
    "SIGNIN_",
)
# DJANGO_ALLOW_ASYNC_UNSAFE: tests/conftest.py sets it for Playwright; no deployment has it.
_SETTING_NAMES = (
    "SECRET_KEY",
    "DEBUG",
    "DATABASE_URL",
    "ALLOWED_HOSTS",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def settings_environment(**env: str) -> dict[str, str]:
    """This process's environment without any Flowdesk setting, with exactly these set."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SETTING_PREFIXES) and k not in _SETTING_NAMES
    }
    return {**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env}


def run_with_settings(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh interpreter, from the project's root, with these settings."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=settings_environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_django(**env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with exactly these variables set."""
    return run_with_settings(["-c", "import django; django.setup(); print('started')"], **env)


def settings_of(*names: str, **env: str) -> dict[str, Any]:
    """The named settings as a fresh interpreter reads them from these variables (JSON: tuples
    come back as lists)."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))"
    )
    result = run_with_settings(["-c", code], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


PRODUCTION = {
    "FLOWDESK_MODE": "production",
    # Django's check --deploy wants 50 characters, 5 of them different; production refuses less.
    "SECRET_KEY": "tests-only-3Fq9xPz7Lm2Vn8Rb4Kc6Wd1Ys5Tg0Hj-never-deployed",
    "DATABASE_URL": "postgres://flowdesk@db.internal:5432/flowdesk",
    "ALLOWED_HOSTS": "flowdesk.example.org",
    "FLOWS_API_URL": "https://api.soharhealth.example/v1",
    "FLOWS_CLIENT_ID": "client-id",
    "FLOWS_CLIENT_SECRET": "client-secret",
    "FLOWS_WEBHOOK_SECRET": "whsec_c2VjcmV0",
    # Password reset e-mail over SMTP: check --deploy refuses the console backend.
    "EMAIL_HOST": "smtp.example.org",
}


def test_development_defaults_start():
    assert start_django().stdout.strip() == "started"


def test_production_with_its_secrets_starts():
    assert start_django(**PRODUCTION).stdout.strip() == "started"


@pytest.mark.parametrize(
    "missing",
    [
        "SECRET_KEY",
        "DATABASE_URL",
        "FLOWS_WEBHOOK_SECRET",
        # Without these, production would talk to the embedded engine with the demo client.
        "FLOWS_API_URL",
        "FLOWS_CLIENT_ID",
        "FLOWS_CLIENT_SECRET",
    ],
)
def test_production_refuses_to_start_without_a_secret(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = start_django(**env)
    assert result.returncode != 0
    assert f"FLOWDESK_MODE=production needs these settings: {missing}" in result.stderr


def test_production_refuses_debug():
    result = start_django(**PRODUCTION, DEBUG="true")
    assert result.returncode != 0
    assert "DEBUG must be false" in result.stderr


def test_a_typo_in_a_boolean_refuses_to_start():
    result = start_django(DEBUG="ture")
    assert result.returncode != 0
    assert "DEBUG must be true or false, not 'ture'" in result.stderr


def test_env_readers_are_strict(monkeypatch, tmp_path):
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured):
        env_bool("X_BOOL", default=False)
    monkeypatch.setenv("X_BOOL", "off")
    assert env_bool("X_BOOL", default=True) is False
    monkeypatch.setenv("X_INT", "12x")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_LIST", " a, b ,,c ")
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    monkeypatch.setenv("X_CHOICE", "staging")
    with pytest.raises(ImproperlyConfigured):
        env_choice("X_CHOICE", "development", ("development", "production"))


def test_secrets_can_come_from_files(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_str("X_SECRET") == "from-a-file"
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured):
        env_str("X_SECRET")


# --- Transport and headers (docs/security.md) ----------------------------------------------

# config/settings.py's default, which the README calls "a demo whsec_ secret": it is public.
DEMO_WEBHOOK_SECRET = "whsec_Zmxvd2Rlc2stZGVtby13ZWJob29rLXNlY3JldA=="


@pytest.mark.parametrize(
    ("name", "value", "refusal"),
    [
        ("SECRET_KEY", "s3cret-for-tests-only", "SECRET_KEY must be at least 50"),
        ("SECRET_KEY", "django-insecure-" + "k3y" * 20, "SECRET_KEY must be at least 50"),
        ("SECRET_KEY", "ab" * 40, "SECRET_KEY must be at least 50"),
        ("FLOWS_WEBHOOK_SECRET", DEMO_WEBHOOK_SECRET, "the README's demo secret"),
        ("FLOWS_API_URL", "http://api.soharhealth.example/v1", "FLOWS_API_URL must be https://"),
        ("FLOWS_API_URL", "HTTP://api.soharhealth.example/v1", "FLOWS_API_URL must be https://"),
        (
            "DATABASE_URL",
            "sqlite:////var/lib/flowdesk/db.sqlite3",
            "must be PostgreSQL, not SQLite",
        ),
    ],
)
def test_production_refuses_a_weak_setting(name, value, refusal):
    result = start_django(**{**PRODUCTION, name: value})
    assert result.returncode != 0
    assert "FLOWDESK_MODE=production refuses: " in result.stderr
    assert refusal in result.stderr
    # Development keeps its demo values.
    assert start_django(**{name: value}).stdout.strip() == "started"


TRANSPORT = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "CSRF_TRUSTED_ORIGINS",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
)


def test_production_is_https_only():
    assert settings_of(*TRANSPORT, **PRODUCTION) == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 60 * 60,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": None,
        "CSRF_TRUSTED_ORIGINS": [],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }
    values = settings_of(*TRANSPORT)
    assert not values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_HSTS_SECONDS"] == 0  # a browser would refuse http://localhost for a year


def test_the_proxy_settings_come_from_the_environment():
    values = settings_of(
        "SECURE_PROXY_SSL_HEADER",
        "CSRF_TRUSTED_ORIGINS",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        CSRF_TRUSTED_ORIGINS="https://flowdesk.example.org, https://review.example.org",
    )
    assert values == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "CSRF_TRUSTED_ORIGINS": ["https://flowdesk.example.org", "https://review.example.org"],
    }
    # A proxy that says it with another value.
    assert settings_of("SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="X-Forwarded-Ssl=on") == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_SSL", "on"]
    }


def test_the_client_address_settings_are_strict():
    assert settings_of(
        "FLOWDESK_CLIENT_IP_HEADER",
        "FLOWDESK_TRUSTED_PROXIES",
        FLOWDESK_CLIENT_IP_HEADER="X-Forwarded-For",
        FLOWDESK_TRUSTED_PROXIES="2",
    ) == {"FLOWDESK_CLIENT_IP_HEADER": "X-Forwarded-For", "FLOWDESK_TRUSTED_PROXIES": 2}
    result = start_django(FLOWDESK_TRUSTED_PROXIES="0")
    assert result.returncode != 0
    assert "FLOWDESK_TRUSTED_PROXIES must be 1 or more" in result.stderr


def test_check_deploy_passes_in_production():
    """Django's own deployment checklist, warnings included, with production's settings."""
    result = run_with_settings(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_images_build_settings_start_django(tmp_path):
    """The Dockerfile's collectstatic runs in production mode with build-only values: they must
    pass production's refusals (a SQLite URL there broke the image once the refusal came)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime_env = re.search(r"^ENV (PATH=.*?[^\\])$", dockerfile, re.MULTILINE | re.DOTALL)
    assert runtime_env is not None
    build_run = dockerfile[
        dockerfile.index("RUN SECRET_KEY=") : dockerfile.index("python manage.py collectstatic")
    ]
    words = (runtime_env.group(1) + " " + build_run.removeprefix("RUN ")).split()
    env = dict(word.split("=", 1) for word in words if "=" in word and word[0].isupper())
    env.pop("PATH", None)
    env["FLOWDESK_VAR_DIR"] = str(tmp_path)  # /app/var exists only in the image
    assert env["FLOWDESK_MODE"] == "production" and "DATABASE_URL" in env
    assert start_django(**env).stdout.strip() == "started"


def test_the_image_runs_gunicorn_without_its_access_log():
    """gunicorn's access log prints paths (a password-reset link's token is in its path) and
    query strings (Django admin's search box): the image leaves it off; Flowdesk's own request
    line names the URL pattern (tests/config/test_logging.py)."""
    command = json.loads(
        next(
            line
            for line in (ROOT / "Dockerfile").read_text().splitlines()
            if line.startswith("CMD ")
        ).removeprefix("CMD ")
    )
    assert "gunicorn" in command
    assert not any(option.startswith("--access-log") for option in command)
