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
from reviewqueue.models import BusinessCalendar, Queue, Route
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
        "reason_codes-TOTAL_FORMS": "0",
        "reason_codes-INITIAL_FORMS": "0",
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


def test_a_flow_admin_keeps_business_calendars_and_reason_codes(ada, queue):
    """What a queue's work runs on is the flow admin's to configure (migration 0012)."""
    added = ada.post(
        reverse("admin:reviewqueue_businesscalendar_add"),
        {
            "name": "Billing office",
            "time_zone": "America/New_York",
            "country": "US",
            "subdivision": "",
            "opening_hours-TOTAL_FORMS": "1",
            "opening_hours-INITIAL_FORMS": "0",
            "opening_hours-0-weekday": "0",
            "opening_hours-0-opens": "09:00",
            "opening_hours-0-closes": "17:00",
            "days_off-TOTAL_FORMS": "1",
            "days_off-INITIAL_FORMS": "0",
            "days_off-0-date": "2026-12-24",
            "days_off-0-name": "Christmas Eve",
        },
    )
    assert added.status_code == 302, added.context["errors"] if added.context else ""
    calendar = BusinessCalendar.objects.get(name="Billing office")
    assert calendar.opening_hours.count() == calendar.days_off.count() == 1
    page = ada.get(reverse("admin:reviewqueue_queue_change", args=[queue.pk])).text
    assert 'name="reason_codes-0-code"' in page  # the inline can be filled in, not only read
