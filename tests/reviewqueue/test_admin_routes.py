"""Routes in the admin: a state id must be a callback state of a stored version of the template.

Driven as ada, a flow admin by her group's permissions (not a superuser), through the Route
admin and through the routes inline on the Queue admin.
"""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from flows_integration import services as integration
from flows_integration.models import FlowTemplate
from reviewqueue import roles
from reviewqueue.models import Queue, Route
from tests.documents import SIGN_OFF
from tests.reviewqueue.conftest import QUEUE_CLOCK

pytestmark = pytest.mark.django_db

# Version 2 of sign-off adds a second callback state, so the valid states span versions.
SIGN_OFF_V2 = SIGN_OFF.replace("    end: true\n", "    next: countersign\n") + (
    "  countersign:\n"
    "    type: callback\n"
    "    title: Countersign\n"
    "    input: {type: object}\n"
    "    end: true\n"
)

ROUTE_ADD = reverse("admin:reviewqueue_route_add")


@pytest.fixture
def ada(client, django_user_model, role_groups):
    user = django_user_model.objects.create_user("ada", password="ada-password", is_staff=True)
    user.groups.add(Group.objects.get(name=roles.FLOW_ADMIN))
    client.force_login(user)
    return client


@pytest.fixture
def queue():
    return Queue.objects.create(name="Sign-offs")


@pytest.fixture
def sign_off():
    integration.version_store(template_id="sign-off", number=1, source=SIGN_OFF)
    integration.version_store(template_id="sign-off", number=2, source=SIGN_OFF_V2)
    return FlowTemplate.objects.get(template_id="sign-off")


def route_post(ada, template, queue, state_id):
    return ada.post(
        ROUTE_ADD,
        {"template": template.pk, "state_id": state_id, "queue": queue.pk, "priority": "0"},
    )


def test_an_unknown_state_is_refused_with_the_valid_states(ada, sign_off, queue):
    response = route_post(ada, sign_off, queue, "sign-of")
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["state_id"])
    assert "sign-of" in errors
    assert "sign-off (Sign off)" in errors
    assert "countersign (Countersign, v2)" in errors
    assert not Route.objects.exists()


@pytest.mark.parametrize("state_id", ["sign-off", "countersign", ""])
def test_a_state_of_any_stored_version_or_none_is_accepted(ada, sign_off, queue, state_id):
    assert route_post(ada, sign_off, queue, state_id).status_code == 302
    assert Route.objects.get().state_id == state_id


def test_a_template_with_no_stored_version_takes_only_a_blank_state(ada, queue):
    template = FlowTemplate.objects.create(template_id="coverage-check")
    response = route_post(ada, template, queue, "member-id")
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["state_id"])
    assert "No version of coverage-check is stored" in errors
    assert route_post(ada, template, queue, "").status_code == 302


def test_the_routes_inline_on_a_queue_refuses_an_unknown_state_too(ada, sign_off, queue):
    url = reverse("admin:reviewqueue_queue_change", args=[queue.pk])
    data = {
        "name": queue.name,
        "description": "",
        "sla_0": "0",
        "sla_1": "04:00:00",
        "sla": "04:00:00",
        **QUEUE_CLOCK,
        "routes-TOTAL_FORMS": "1",
        "routes-INITIAL_FORMS": "0",
        "routes-MIN_NUM_FORMS": "0",
        "routes-MAX_NUM_FORMS": "1000",
        "routes-0-template": sign_off.pk,
        "routes-0-state_id": "nowhere",
        "routes-0-priority": "0",
        "routes-0-priority_path": "",
    }
    response = ada.post(url, data)
    assert response.status_code == 200
    inline_errors = response.context["inline_admin_formsets"][0].formset.errors
    assert "countersign (Countersign, v2)" in " ".join(inline_errors[0]["state_id"])
    assert not Route.objects.exists()

    data["routes-0-state_id"] = "countersign"
    assert ada.post(url, data).status_code == 302
    assert Route.objects.get().state_id == "countersign"
