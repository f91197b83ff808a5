"""Settings come from the environment, strictly; production refuses to start without secrets."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_list, env_str


def start_django(**env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with exactly these variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWS_", "FLOWDESK_"))}
    for name in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "ALLOWED_HOSTS"):
        clean.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "FLOWDESK_MODE": "production",
    "SECRET_KEY": "s3cret-for-tests-only",
    "DATABASE_URL": "postgres://flowdesk@db.internal:5432/flowdesk",
    "ALLOWED_HOSTS": "flowdesk.example.org",
    "FLOWS_API_URL": "https://api.soharhealth.example/v1",
    "FLOWS_CLIENT_ID": "client-id",
    "FLOWS_CLIENT_SECRET": "client-secret",
    "FLOWS_WEBHOOK_SECRET": "whsec_c2VjcmV0",
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
