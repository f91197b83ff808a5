"""Helpers for the schema-form tests: the corpus, rendering, and what a browser would submit."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.http import QueryDict
from django.template.loader import render_to_string

from reviewqueue.schema_forms import FormSpec, SchemaForm
from tests.reviewqueue.browser import submitted

SCHEMAS = Path(__file__).parent / "schemas"
CORPUS = sorted(SCHEMAS.glob("*.json"))
DEMO = Path(__file__).parents[2] / "flows_engine" / "demo"
DEMO_FILES = sorted(DEMO.glob("*/v*.yaml"))


def load_case(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def demo_specs() -> list[tuple[str, FormSpec, dict]]:
    """(id, spec, document) for the Start Run form and every callback state of the demos."""
    found = []
    for path in DEMO_FILES:
        document = yaml.safe_load(path.read_text())
        for state_id in FormSpec.state_ids(document):
            spec = FormSpec.for_state(document, state_id)
            found.append((f"{path.parent.name}-{path.stem}-{state_id}", spec, document))
    return found


def render(form: SchemaForm) -> str:
    return render_to_string("schema_forms/form.html", {"form": form})


def post(values: dict[str, Any]) -> QueryDict:
    data = QueryDict(mutable=True)
    for name, value in values.items():
        data.setlist(name, value if isinstance(value, list) else [value])
    return data


def round_trip(spec: FormSpec, instance: Any) -> SchemaForm:
    """Render `instance` as the form's values, submit what a browser would, validate."""
    html = render(SchemaForm(spec, initial=instance))
    form = SchemaForm(spec, data=submitted(html), initial=instance)
    form.is_valid()
    return form


@pytest.fixture
def ada(admin_client):
    """An admin, logged in."""
    return admin_client


# --- The review queue: teams, personas, a stored version, pending runs -----------------------

PRIOR_AUTH = DEMO / "prior-authorization" / "v1.yaml"
CLINICAL_REVIEW = "clinical-review"
CLINICAL_INPUT = {
    "patient": {
        "firstName": "Maria",
        "lastName": "Lopez",
        "dateOfBirth": "1980-02-29",
        "memberId": "W123456789",
    },
    "payerId": "60054",
    "provider": {"npi": "1234567890"},
    "procedureCodes": ["27447"],
    "serviceDate": "2027-01-15",
}


def _member(user, *group_names: str):
    from django.contrib.auth.models import Group

    user.groups.add(*[Group.objects.get_or_create(name=name)[0] for name in group_names])
    return user


@pytest.fixture
def clinical_queue(db):
    """The "Clinical review" queue, worked by the Clinical team, with prior-authorization routed
    to it."""
    from django.contrib.auth.models import Group

    from reviewqueue.models import Queue

    queue = Queue.objects.create(name="Clinical review")
    queue.teams.add(Group.objects.get_or_create(name="Clinical team")[0])
    return queue


@pytest.fixture
def prior_auth_version(db, clinical_queue):
    """prior-authorization v1 stored in the mirror, routed to the clinical queue."""
    from flows_integration import services as integration
    from reviewqueue.models import Route

    version = integration.version_store(
        template_id="prior-authorization", number=1, source=PRIOR_AUTH.read_text()
    )
    Route.objects.create(template=version.template, queue=clinical_queue, priority=50)
    return version


@pytest.fixture
def reviewer(alice):
    """Alice, a reviewer on the Clinical team."""
    return _member(alice, "Reviewer", "Clinical team")


@pytest.fixture
def colleague(bob):
    """Bob, another reviewer on the Clinical team."""
    return _member(bob, "Reviewer", "Clinical team")


@pytest.fixture
def outsider(django_user_model):
    """Charlie, a reviewer on another team: the clinical queue is not his."""
    charlie = django_user_model.objects.create_user("charlie", password="charlie-password")
    return _member(charlie, "Reviewer", "Billing team")


@pytest.fixture
def supervisor(django_user_model):
    """Sam, a supervisor: every queue."""
    from django.contrib.auth.models import Group, Permission

    sam = django_user_model.objects.create_user("sam", password="sam-password", first_name="Sam")
    group, _ = Group.objects.get_or_create(name="Supervisor")
    group.permissions.add(Permission.objects.get(codename="supervise_item"))
    return _member(sam, "Supervisor")


def pause_run(version, state_id: str, input_data: dict, **fields):
    """A mirrored Run of ``version`` that has just paused at ``state_id``, announced as the
    mirror would (``run_status_changed`` inside a transaction), so its item opens."""
    import uuid

    from django.db import transaction

    from flows_integration.models import FlowRun
    from flows_integration.signals import run_status_changed

    with transaction.atomic():
        run = FlowRun.objects.create(
            flow_run_id=fields.pop("flow_run_id", None) or uuid.uuid4(),
            template=version.template,
            version=version,
            status="PENDING",
            state_id=state_id,
            input_data=input_data,
            **fields,
        )
        run_status_changed.send(
            sender=FlowRun,
            run=run,
            old_status="IN_PROGRESS",
            new_status="PENDING",
            state_id=state_id,
        )
    return run


@pytest.fixture
def pending_run(prior_auth_version):
    """A factory: a prior-authorization Run paused at ``state_id`` (clinical review)."""

    def make(state_id: str = CLINICAL_REVIEW, input_data: dict | None = None, **fields):
        data = CLINICAL_INPUT if input_data is None else input_data
        return pause_run(prior_auth_version, state_id, data, **fields)

    return make


@pytest.fixture
def item(pending_run):
    """The open item of a Run waiting at clinical review."""
    return pending_run().review_items.get()


@pytest.fixture
def claimed_item(item, reviewer):
    from reviewqueue import services

    return services.item_claim(item=item, user=reviewer)


# A valid clinical-review answer: an approval with one diagnosis.
CLINICAL_ANSWER: dict[str, Any] = {
    "decision": "approve",
    "diagnosisCodes": [{"code": "M17.11", "primary": True}],
    "criteria": {"guideline": "interqual", "met": True},
    "authorization": {"validFrom": "2027-01-15", "validThrough": "2027-04-15"},
    "reviewer": {"name": "Alice Reviewer", "credential": "RN"},
}


def posted(data: dict[str, list[str]]) -> dict[str, list[str]]:
    """``data`` as a rendered form posts it: with the ``~form`` marker that says the fields
    arrived (a post without it is never saved or submitted)."""
    return {"~form": ["1"], **data}


def clinical_form_data() -> dict[str, list[str]]:
    """What a browser posts for ``CLINICAL_ANSWER`` (field names are JSON paths)."""
    return {
        "decision": ["approve"],
        "diagnosisCodes~rows": ["1"],
        "diagnosisCodes.0.code": ["M17.11"],
        "diagnosisCodes.0.primary": ["on"],
        "criteria.guideline": ["interqual"],
        "criteria.met": ["on"],
        "authorization.validFrom": ["2027-01-15"],
        "authorization.validThrough": ["2027-04-15"],
        "reviewer.name": ["Alice Reviewer"],
        "reviewer.credential": ["RN"],
    }


def mirrored(**fields):
    """A mirrored Run no item stands for (running, finished, or waiting in triage)."""
    import uuid

    from flows_integration.models import FlowRun, RunStatus

    values = {"flow_run_id": uuid.uuid4(), "status": RunStatus.IN_PROGRESS, **fields}
    return FlowRun.objects.create(**values)


@pytest.fixture
def flow_admin(django_user_model, role_groups):
    """Ada, a flow admin in no team: she sees the Runs without items, not the teams' Runs."""
    from django.contrib.auth.models import Group

    from reviewqueue.roles import FLOW_ADMIN

    ada = django_user_model.objects.create_user("ada", password="ada-password")
    ada.groups.add(Group.objects.get(name=FLOW_ADMIN))
    return ada


@pytest.fixture
def eligibility(clinical_queue):
    """A second queue the Clinical team works."""
    from django.contrib.auth.models import Group

    from reviewqueue.models import Queue

    queue = Queue.objects.create(name="Eligibility")
    queue.teams.add(Group.objects.get(name="Clinical team"))
    return queue


# The queue admin form's SLA clock and "get next" fields, as its defaults post them.
QUEUE_CLOCK = {
    "sla_clock": "calendar",
    "warn_before": "00:30:00",
    "next_item_strategy": "most_urgent",
}
