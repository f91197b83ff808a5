"""compose.yaml: one image for every Flowdesk process, the engine only on request, and valid."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
REQUIRED = {
    "POSTGRES_PASSWORD": "compose-check",
    "SECRET_KEY": "compose-check-" + "x7Kq2" * 10,
    "ALLOWED_HOSTS": "flowdesk.example.org",
    "FLOWS_API_URL": "https://api.soharhealth.example",
    "FLOWS_CLIENT_ID": "client",
    "FLOWS_CLIENT_SECRET": "secret",
    "FLOWS_WEBHOOK_SECRET": "whsec_c2VjcmV0",
    "EMAIL_HOST": "smtp.example.org",
}


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_web_worker_beat_and_migrate_run_one_image_in_production():
    all_services = services()
    flowdesk = {name: all_services[name] for name in ("migrate", "web", "worker", "beat")}
    assert len({service["image"] for service in flowdesk.values()}) == 1
    for name, service in flowdesk.items():
        assert service["environment"]["FLOWDESK_MODE"] == "production", name
        assert "FLOWS_ENGINE_ENABLED" not in service["environment"], name  # the image's false
        assert "profiles" not in service, name
    assert "command" not in flowdesk["web"]  # the image's CMD: gunicorn
    assert flowdesk["worker"]["command"][-2:] == ["worker", "--loglevel=INFO"]
    assert flowdesk["beat"]["command"][-2:] == ["beat", "--loglevel=INFO"]
    for name in ("web", "worker", "beat"):
        depends = all_services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["db"]["condition"] == "service_healthy"


def test_the_engine_and_rabbitmq_come_only_with_their_profiles():
    all_services = services()
    assert all_services["engine"]["profiles"] == ["engine"]
    assert all_services["engine-worker"]["profiles"] == ["engine"]
    assert all_services["rabbitmq"]["profiles"] == ["rabbitmq"]
    # The engine keeps its own database and broker: Flowdesk's workers know none of its tasks.
    engine = all_services["engine"]["environment"]
    assert engine["FLOWS_ENGINE_ENABLED"] == "true"
    assert engine["DATABASE_URL"].endswith("/flows_engine")
    assert engine["CELERY_BROKER_URL"] != services()["web"]["environment"]["CELERY_BROKER_URL"]


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def compose(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Docker Compose with these arguments, with only ``env`` and PATH in its environment;
    skipped where no Compose is installed (`make test` installs Debian's)."""
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    return subprocess.run(
        [*command, *arguments],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize("profiles", ["", "engine", "rabbitmq"])
def test_docker_compose_config_accepts_it(profiles):
    """`docker compose config` (or Debian's docker-compose) validates the file against the
    Compose schema and interpolates it; it needs no daemon."""
    result = compose(
        "-f", str(COMPOSE), "config", "--services", env={"COMPOSE_PROFILES": profiles, **REQUIRED}
    )
    assert result.returncode == 0, result.stderr
    # (docker-compose 1.29 lists every service whatever the profiles; the test above checks them.)
    assert {"db", "redis", "migrate", "web", "worker", "beat"} <= set(result.stdout.split())


def test_docker_compose_config_refuses_a_missing_secret():
    without_key = {k: v for k, v in REQUIRED.items() if k != "SECRET_KEY"}
    result = compose("-f", str(COMPOSE), "config", "-q", env=without_key)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_the_engine_override_points_flowdesk_at_the_engine():
    """compose.engine.yaml, merged by Compose itself: Flowdesk's processes run against the
    engine's sandbox over plain HTTP (development mode, DEBUG still off); production stays as
    compose.yaml says when the override is not given."""
    result = compose(
        "-f",
        str(COMPOSE),
        "-f",
        str(ROOT / "compose.engine.yaml"),
        "config",
        env={"COMPOSE_PROFILES": "engine", **REQUIRED},
    )
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(result.stdout)["services"]
    for name in ("migrate", "web", "worker", "beat"):
        environment = merged[name]["environment"]
        assert environment["FLOWDESK_MODE"] == "development", name
        assert environment["DEBUG"] == "false", name
        assert environment["FLOWS_API_URL"] == "http://engine:8000/flows-api", name
        assert environment["FLOWS_WEBHOOK_EVENT_TYPES"] == "sandbox.flow.updated", name
        assert environment["ALLOWED_HOSTS"].split(",")[0] == "web", name
    assert "engine" in merged["web"]["depends_on"]
