"""The image builds and runs: bin/image_check.py performs the Dockerfile's steps without a
container engine (the first run installs the dependencies from PyPI; later runs reuse them)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "flowdesk_deploy"
pytestmark = pytest.mark.image


@pytest.fixture
def deploy_database():
    psycopg = pytest.importorskip("psycopg")
    server = "postgres://postgres@127.0.0.1:5432"
    try:
        connection = psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"the image runs in production mode, which needs PostgreSQL: {exc}")
    with connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")
        yield f"{server}/{DATABASE}"
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def test_the_image_builds_and_serves(deploy_database):
    if os.geteuid() != 0:
        pytest.skip("bin/image_check.py builds as root, as a container build does")
    result = subprocess.run(
        [
            sys.executable,
            "bin/image_check.py",
            "--database-url",
            deploy_database,
            "--migrate",
            "--broker-url",
            "redis://127.0.0.1:6379/11",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if result.returncode == 3:
        pytest.skip(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "run: CMD answers its HEALTHCHECK" in result.stdout
    assert "run: the Celery worker is ready" in result.stdout
