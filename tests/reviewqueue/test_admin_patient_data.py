"""Patient data in the Django admin: only for people given "view patient data", every look at
it audited; and every change to configuration (queues, routes, people, groups) audited, by
whom and from where."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from audit.models import AuditEvent
from flows_integration.models import FlowTemplate, WebhookEvent
from reviewqueue import roles
from reviewqueue.models import Queue, Route

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(client, django_user_model, role_groups):
    """A flow admin: configures templates, queues and routes; holds no patient-data permission."""
    user = django_user_model.objects.create_user("ada", password="ada-password", is_staff=True)
    user.groups.add(Group.objects.get(name=roles.FLOW_ADMIN))
    client.force_login(user)
    return user


@pytest.fixture
def privacy_officer(client, django_user_model, role_groups):
    """Staff given the flow admin's views and, explicitly, "view patient data"."""
    user = django_user_model.objects.create_user("pia", password="pia-password", is_staff=True)
    user.groups.add(Group.objects.get(name=roles.FLOW_ADMIN))
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="audit", codename="view_patient_data")
    )
    client.force_login(user)
    return user


def patient_pages(item) -> dict[str, str]:
    run = item.run
    event = WebhookEvent.objects.create(
        svix_id="msg_1",
        event_type="flow_run.status_changed",
        flow_run_id=run.flow_run_id,
        payload={},
    )
    return {
        "run": reverse("admin:flows_integration_flowrun_change", args=[run.pk]),
        "runs": reverse("admin:flows_integration_flowrun_changelist"),
        "item": reverse("admin:reviewqueue_reviewitem_change", args=[item.pk]),
        "items": reverse("admin:reviewqueue_reviewitem_changelist"),
        "webhook": reverse("admin:flows_integration_webhookevent_change", args=[event.pk]),
        "webhooks": reverse("admin:flows_integration_webhookevent_changelist"),
    }


def test_a_flow_admin_without_the_permission_sees_no_patient_data(client, ada, item):
    for name, url in patient_pages(item).items():
        assert client.get(url).status_code == 403, name
    index = client.get(reverse("admin:index")).content.decode()
    assert "Flow runs" not in index and "Review items" not in index
    # ... and still configures what she is there for.
    assert client.get(reverse("admin:reviewqueue_route_changelist")).status_code == 200
    assert client.get(reverse("admin:flows_integration_flowtemplate_changelist")).status_code == 200
    assert not AuditEvent.objects.filter(action__startswith="admin.").exists()


def test_every_look_at_patient_data_in_the_admin_is_audited(client, privacy_officer, item):
    pages = patient_pages(item)
    for name, url in pages.items():
        assert client.get(url, REMOTE_ADDR="10.1.2.3").status_code == 200, name
    viewed = AuditEvent.objects.filter(action="admin.viewed", actor=privacy_officer)
    assert {(e.detail["model"], e.flow_run_id) for e in viewed} == {
        ("flows_integration.flowrun", item.run.flow_run_id),
        ("reviewqueue.reviewitem", item.run.flow_run_id),
        ("flows_integration.webhookevent", item.run.flow_run_id),
    }
    assert {e.ip for e in viewed} == {"10.1.2.3"}
    lists = AuditEvent.objects.filter(action="admin.list_viewed", actor=privacy_officer)
    assert sorted(e.detail["model"] for e in lists) == [
        "flows_integration.flowrun",
        "flows_integration.webhookevent",
        "reviewqueue.reviewitem",
    ]


def test_configuration_changes_in_the_admin_are_audited_with_who_and_where(client, ada):
    queue = Queue.objects.create(name="Appeals")
    template = FlowTemplate.objects.create(template_id="appeals")
    added = client.post(
        reverse("admin:reviewqueue_route_add"),
        {"template": template.pk, "state_id": "", "queue": queue.pk, "priority": "3"},
        REMOTE_ADDR="10.9.8.7",
    )
    assert added.status_code == 302, added.context["adminform"].form.errors
    route = Route.objects.get(queue=queue)
    deleted = client.post(
        reverse("admin:reviewqueue_route_delete", args=[route.pk]),
        {"post": "yes"},
        REMOTE_ADDR="10.9.8.7",
    )
    assert deleted.status_code == 302
    events = AuditEvent.objects.filter(detail__model="reviewqueue.route").order_by("pk")
    assert [e.action for e in events] == ["config.added", "config.deleted"]
    for event in events:
        assert (event.actor, event.ip, event.detail["object_id"]) == (
            ada,
            "10.9.8.7",
            str(route.pk),
        )


def test_role_changes_are_audited(client, django_user_model, role_groups):
    boss = django_user_model.objects.create_superuser("root", password="root-password-123")
    client.force_login(boss)
    bob = django_user_model.objects.create_user("bob2", password="bob-password-123")
    supervisors = Group.objects.get(name=roles.SUPERVISOR)
    response = client.post(
        reverse("admin:auth_user_change", args=[bob.pk]),
        {
            "username": "bob2",
            "is_active": "on",
            "groups": [str(supervisors.pk)],
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2026-12-06",
            "date_joined_1": "09:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    granted = AuditEvent.objects.get(
        action="config.relation_changed", actor=boss, detail__related="auth.group"
    )
    assert granted.actor == boss
    assert granted.detail["model"] == "auth.user"
    assert granted.detail["object_id"] == str(bob.pk)
    assert granted.detail["related_ids"] == [supervisors.pk]


def test_signing_in_is_not_a_configuration_change(client, django_user_model):
    django_user_model.objects.create_user("cal", password="cal-password-1234")
    before = AuditEvent.objects.filter(action__startswith="config.").count()
    response = client.post(reverse("login"), {"username": "cal", "password": "cal-password-1234"})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action__startswith="config.").count() == before
    assert AuditEvent.objects.filter(action="login").exists()
