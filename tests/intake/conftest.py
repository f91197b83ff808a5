"""Personas and stored versions for starting Runs: Sam the supervisor may start Runs, Alice the
reviewer may not; a system holds an API token."""

import pytest

from tests.reviewqueue.conftest import DEMO

COVERAGE_INPUT = {
    "patient": {"firstName": "Maria", "lastName": "Notfound", "dateOfBirth": "1980-02-29"},
    "payerId": "60054",
}


@pytest.fixture
def starter(django_user_model):
    """Sam, a supervisor: the role group gives him Start run (as the intake migration does)."""
    from django.contrib.auth.models import Group, Permission

    sam = django_user_model.objects.create_user("sam", password="sam-password", first_name="Sam")
    group, _ = Group.objects.get_or_create(name="Supervisor")
    group.permissions.add(
        Permission.objects.get(codename="supervise_item"),
        Permission.objects.get(content_type__app_label="intake", codename="start_run"),
    )
    sam.groups.add(group)
    return sam


@pytest.fixture
def reviewer_only(alice):
    """Alice, a reviewer: she may not start Runs."""
    from django.contrib.auth.models import Group

    alice.groups.add(Group.objects.get_or_create(name="Reviewer")[0])
    return alice


@pytest.fixture
def stored_coverage(db):
    """coverage-check v1 and v2 stored in Flowdesk (no engine: for checks before any call)."""
    from flows_integration import services as integration

    return [
        integration.version_store(
            template_id="coverage-check",
            number=number,
            source=(DEMO / "coverage-check" / f"v{number}.yaml").read_text(),
        )
        for number in (1, 2)
    ]


@pytest.fixture
def live_templates(flows_api):
    """The engine's demo templates over real HTTP, with Flowdesk's copies imported from it."""
    from flows_integration import services as integration

    return integration.templates_import()


@pytest.fixture
def api_token(db):
    from intake import services

    _, token = services.client_create(name="EHR integration")
    return token


@pytest.fixture
def flows_down(settings):
    """Flowdesk's client pointed at a port where nothing listens: every call is refused."""
    import socket

    from flows_integration import client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.FLOWS_API_URL = f"http://127.0.0.1:{port}/flows-api"
    client.reset_client()
    yield
    client.reset_client()


@pytest.fixture
def no_flows_call(monkeypatch):
    """Fail the test if Create Run is called at all."""
    from flows_integration import client

    def refuse(*args, **kwargs):
        raise AssertionError("Create Run was called")

    monkeypatch.setattr(client, "create_run", refuse)
