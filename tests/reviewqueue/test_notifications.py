"""Notifications (issue 12, "SLAs, escalation, notifications"): in the app for everyone, with an
unread count in the top bar; by e-mail for the kinds a person opts into, with a link and never
patient data.

The story: Sam, a supervisor, hands work to Alice and Bob; an answer of Alice's cannot be
delivered and needs attention; Charlie, on another team, must never see their notices.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from reviewqueue import notifications, services, tasks
from reviewqueue.models import ItemStatus, Notification, NotificationKind, StaffPreferences
from tests.flows_integration.faulty_server import respond
from tests.reviewqueue.conftest import CLINICAL_INPUT
from tests.reviewqueue.test_delivery import PUT, enqueued, faulty_api, submit  # noqa: F401

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
PAGE = reverse("reviewqueue:notifications")
COUNT = reverse("reviewqueue:notifications_count")
READ_ALL = reverse("reviewqueue:notifications_read")
# A patient name no notice, e-mail or page of another person may ever show.
SENTINEL = "Quillon Sentinelpatient"
BASE_URL = "https://flowdesk.example.org"


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def open_url(notification: Notification) -> str:
    return reverse("reviewqueue:notification_open", args=[notification.pk])


def notices(user) -> list[Notification]:
    return list(Notification.objects.filter(user=user).order_by("pk"))


def status_of(item) -> str:
    item.refresh_from_db()
    return item.status


def opt_in(user, *kinds: str, email: str = "") -> None:
    if email:
        user.email = email
        user.save(update_fields=["email"])
    StaffPreferences.objects.update_or_create(user=user, defaults={"email_notifications": kinds})


@pytest.fixture
def emails(monkeypatch) -> list[int]:
    """Notification ids whose e-mail task was enqueued (the tests run the task body)."""
    sent: list[int] = []

    def apply_async(args: tuple = (), **options: Any) -> None:
        sent.append(*args)

    monkeypatch.setattr(tasks.email_notification, "apply_async", apply_async)
    return sent


@pytest.fixture
def sentinel_item(pending_run):
    """An open item whose Run's input names a patient (the sentinel)."""
    first, last = SENTINEL.split()
    data = {**CLINICAL_INPUT, "patient": {**CLINICAL_INPUT["patient"], "firstName": first}}
    data["patient"]["lastName"] = last
    return pending_run(input_data=data).review_items.get()


# --- notify --------------------------------------------------------------------------------------


def test_notify_names_each_person_once_and_not_again_while_their_notice_is_unread(
    item, reviewer, colleague
):
    rows = notifications.notify(
        users=[reviewer, colleague, reviewer, None],
        kind=NotificationKind.NEEDS_ATTENTION,
        item=item,
        text="Run 1 needs attention.",
    )
    assert sorted(row.user_id for row in rows) == sorted([reviewer.pk, colleague.pk])

    again = notifications.notify(
        users=[reviewer], kind=NotificationKind.NEEDS_ATTENTION, item=item, text="again"
    )
    assert again == []
    Notification.objects.filter(user=reviewer).update(read_at=timezone.now())
    after_reading = notifications.notify(
        users=[reviewer], kind=NotificationKind.NEEDS_ATTENTION, item=item, text="once more"
    )
    assert [row.text for row in after_reading] == ["once more"]


# --- Assigned to you -----------------------------------------------------------------------------


def test_reassigning_notifies_the_receiver_and_audits_as_before(
    sentinel_item, colleague, supervisor
):
    services.item_reassign(item=sentinel_item, to=colleague, by=supervisor, ip="10.0.0.9")

    [notice] = notices(colleague)
    assert notice.kind == NotificationKind.ASSIGNED
    assert notice.item_id == sentinel_item.pk
    assert notice.text == f"Sam assigned Run {sentinel_item.run_ref[:8]}, Clinical review to you."
    assert SENTINEL.split()[1] not in notice.text
    assert notice.read_at is None and notice.emailed_at is None
    [event] = AuditEvent.objects.filter(action="item.reassigned")
    assert event.detail == {"to": colleague.pk}
    assert notices(supervisor) == []


def test_a_supervisor_taking_an_item_themselves_is_not_notified(item, supervisor):
    services.item_reassign(item=item, to=supervisor, by=supervisor)

    assert status_of(item) == ItemStatus.CLAIMED
    assert Notification.objects.count() == 0


def test_a_refused_reassignment_leaves_no_notice(item, outsider, supervisor):
    with pytest.raises(services.ReviewError):
        services.item_reassign(item=item, to=outsider, by=supervisor)

    assert Notification.objects.count() == 0


def test_a_bulk_move_sends_one_notice_per_receiving_person(
    pending_run, reviewer, colleague, supervisor
):
    items = [pending_run().review_items.get() for _ in range(4)]
    for one in items:
        services.item_claim(item=one, user=colleague)

    moved = services.items_reassign_bulk(
        item_ids=[i.pk for i in items], to=reviewer, by=supervisor, reason="out_sick"
    )

    assert len(moved.moved) == 4
    [notice] = notices(reviewer)
    assert (notice.kind, notice.item_id, notice.text) == (
        NotificationKind.ASSIGNED,
        None,
        "Sam moved 4 items to you.",
    )
    assert AuditEvent.objects.filter(action="item.reassigned").count() == 4
    # Back to the queue: nobody receives them, nobody is told.
    services.items_reassign_bulk(
        item_ids=[i.pk for i in items], to=None, by=supervisor, reason="workload"
    )
    assert Notification.objects.count() == 1


def test_a_bulk_move_of_one_item_names_it(item, reviewer, supervisor):
    services.items_reassign_bulk(item_ids=[item.pk], to=reviewer, by=supervisor, reason="skill")

    [notice] = notices(reviewer)
    assert (notice.item_id, notice.text) == (
        item.pk,
        f"Sam moved Run {item.run_ref[:8]}, Clinical review to you.",
    )


# --- Needs attention -----------------------------------------------------------------------------


def test_an_item_needing_attention_notifies_its_supervisors_and_the_submitter(
    faulty_api,  # noqa: F811
    enqueued,  # noqa: F811
    item,
    reviewer,
    supervisor,
):
    faulty_api.always(PUT, respond(404, {"error": "not_found", "param": "flowRunId"}))
    submission = submit(item, reviewer)

    assert services.submission_deliver(submission.pk).outcome == "failed"

    assert status_of(item) == ItemStatus.NEEDS_ATTENTION
    label = f"Run {item.run_ref[:8]}, Clinical review"
    [to_sam] = notices(supervisor)
    assert (to_sam.kind, to_sam.item_id, to_sam.text) == (
        NotificationKind.NEEDS_ATTENTION,
        item.pk,
        f"{label} needs attention: its answer could not be delivered.",
    )
    [to_alice] = notices(reviewer)
    assert to_alice.text == (
        f"Your answer to {label} could not be delivered; a supervisor will see to it."
    )


# --- E-mail --------------------------------------------------------------------------------------


def test_only_people_who_opted_in_are_emailed_once_with_a_link_and_no_patient_data(
    sentinel_item,
    reviewer,
    colleague,
    outsider,
    supervisor,
    emails,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.FLOWDESK_BASE_URL = BASE_URL
    opt_in(reviewer, NotificationKind.ASSIGNED, email="alice@example.org")
    opt_in(colleague, NotificationKind.OVERDUE, email="bob@example.org")  # another kind
    opt_in(outsider, NotificationKind.ASSIGNED)  # no address
    with django_capture_on_commit_callbacks(execute=True):
        rows = notifications.notify(
            users=[reviewer, colleague, outsider],
            kind=NotificationKind.ASSIGNED,
            item=sentinel_item,
            text=f"Sam assigned {notifications.item_label(sentinel_item)} to you.",
        )
        assert emails == []  # not before the transaction commits

    alices = next(row for row in rows if row.user_id == reviewer.pk)
    assert emails == [alices.pk]
    # The task runs twice (a redelivered message): one e-mail.
    assert tasks.email_notification(alices.pk) is True
    assert tasks.email_notification(alices.pk) is False
    # The others' rows would not be sent even if a task ran for them.
    assert not any(tasks.email_notification(row.pk) for row in rows if row is not alices)

    [message] = mail.outbox
    assert message.to == ["alice@example.org"]
    assert message.subject == f"Flowdesk: Sam assigned Run {sentinel_item.run_ref[:8]}, " + (
        "Clinical review to you."
    )
    link = f"{BASE_URL}{reverse('reviewqueue:item', args=[sentinel_item.pk])}"
    assert link in message.body
    for part in [*SENTINEL.split(), CLINICAL_INPUT["patient"]["memberId"], "1980-02-29"]:
        assert part not in message.subject
        assert part not in message.body
    alices.refresh_from_db()
    assert alices.emailed_at is not None


def test_a_person_who_opted_out_after_the_notice_is_not_emailed(item, reviewer, emails):
    opt_in(reviewer, NotificationKind.RETURNED, email="alice@example.org")
    [row] = notifications.notify(
        users=[reviewer], kind=NotificationKind.RETURNED, item=item, text="Returned."
    )
    opt_in(reviewer)

    assert tasks.email_notification(row.pk) is False
    assert mail.outbox == []


def test_a_bulk_move_email_links_to_the_persons_own_items(
    pending_run, reviewer, supervisor, emails, settings, django_capture_on_commit_callbacks
):
    settings.FLOWDESK_BASE_URL = BASE_URL
    opt_in(reviewer, NotificationKind.ASSIGNED, email="alice@example.org")
    items = [pending_run().review_items.get() for _ in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        services.items_reassign_bulk(
            item_ids=[i.pk for i in items], to=reviewer, by=supervisor, reason="workload"
        )

    [notification_id] = emails
    tasks.email_notification(notification_id)
    [message] = mail.outbox
    assert message.subject == "Flowdesk: Sam moved 2 items to you."
    assert f"{BASE_URL}{reverse('reviewqueue:queue')}?assignee=me" in message.body


def test_the_sweep_enqueues_emails_a_lost_task_left_behind(item, reviewer, colleague, emails):
    opt_in(reviewer, NotificationKind.OVERDUE, email="alice@example.org")
    opt_in(colleague, NotificationKind.OVERDUE, email="bob@example.org")
    [alices] = notifications.notify(
        users=[reviewer], kind=NotificationKind.OVERDUE, item=item, text="Overdue."
    )
    [bobs] = notifications.notify(
        users=[colleague], kind=NotificationKind.OVERDUE, item=item, text="Overdue."
    )
    # Alice's task never reached the broker; Bob's e-mail went out; a fresh one is left alone.
    Notification.objects.filter(pk__in=[alices.pk, bobs.pk]).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    Notification.objects.filter(pk=bobs.pk).update(emailed_at=timezone.now())
    notifications.notify(users=[reviewer], kind=NotificationKind.ASSIGNED, item=item, text="New.")

    assert tasks.sweep_notification_emails() == 1
    assert emails == [alices.pk]


# --- The page ------------------------------------------------------------------------------------


@pytest.fixture
def both_told(item, reviewer, colleague) -> tuple[Notification, Notification]:
    """One notice for Alice and one for Bob about the same item."""
    [alices] = notifications.notify(
        users=[reviewer], kind=NotificationKind.OVERDUE, item=item, text="Notice for Alice."
    )
    [bobs] = notifications.notify(
        users=[colleague], kind=NotificationKind.OVERDUE, item=item, text="Notice for Bob."
    )
    return alices, bobs


def test_the_page_lists_only_my_notifications_newest_first(both_told, reviewer, item):
    [older] = notifications.notify(
        users=[reviewer], kind=NotificationKind.ASSIGNED, item=item, text="Older notice."
    )
    Notification.objects.filter(pk=older.pk).update(
        created_at=timezone.now() - timedelta(hours=3), read_at=timezone.now()
    )

    response = login(reviewer).get(PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Notice for Alice." in html and "Older notice." in html
    assert "Notice for Bob." not in html
    assert html.index("Notice for Alice.") < html.index("Older notice.")
    assert html.count(">New<") == 1
    assert "3 h ago" in html
    assert "<strong>(1 unread)</strong>" in html


def test_the_page_is_paged(item, reviewer):
    Notification.objects.bulk_create(
        Notification(user=reviewer, kind=NotificationKind.OVERDUE, item=item, text=f"n{i}")
        for i in range(notifications.PAGE_SIZE + 1)
    )
    client = login(reviewer)

    first = client.get(PAGE).content.decode()
    second = client.get(PAGE, {"page": "2"}).content.decode()

    assert 'rel="next"' in first and 'rel="next"' not in second
    assert second.count('<li class="notification') == 1


def test_the_page_needs_a_sign_in():
    response = Client().get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_opening_a_notification_marks_it_read_and_goes_to_its_item(both_told, reviewer, item):
    alices, bobs = both_told
    client = login(reviewer)

    response = client.post(open_url(alices))

    assert response.status_code == 302
    assert response["Location"] == reverse("reviewqueue:item", args=[item.pk])
    alices.refresh_from_db()
    assert alices.read_at is not None
    bobs.refresh_from_db()
    assert bobs.read_at is None


def test_opening_with_htmx_redirects_the_page(both_told, reviewer, item):
    alices, _ = both_told

    response = login(reviewer).post(open_url(alices), headers=HX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("reviewqueue:item", args=[item.pk])


def test_a_get_changes_nothing(both_told, reviewer):
    alices, _ = both_told

    assert login(reviewer).get(open_url(alices)).status_code == 405
    assert login(reviewer).get(READ_ALL).status_code == 405
    alices.refresh_from_db()
    assert alices.read_at is None


def test_another_persons_notification_is_a_404_and_stays_unread(both_told, reviewer, outsider):
    _, bobs = both_told

    assert login(reviewer).post(open_url(bobs)).status_code == 404
    assert login(outsider).post(open_url(bobs)).status_code == 404
    bobs.refresh_from_db()
    assert bobs.read_at is None


def test_opening_needs_the_csrf_token(both_told, reviewer):
    alices, _ = both_told
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)

    assert client.post(open_url(alices)).status_code == 403
    alices.refresh_from_db()
    assert alices.read_at is None


def test_mark_all_read_marks_only_mine(both_told, reviewer, item):
    alices, bobs = both_told
    notifications.notify(users=[reviewer], kind=NotificationKind.ASSIGNED, item=item, text="2nd")

    response = login(reviewer).post(READ_ALL, follow=True)

    assert "2 notifications marked read." in response.content.decode()
    assert not Notification.objects.filter(user=reviewer, read_at__isnull=True).exists()
    bobs.refresh_from_db()
    assert bobs.read_at is None
    htmx = login(reviewer).post(READ_ALL, headers=HX)
    assert htmx["HX-Redirect"] == PAGE


# --- The unread count ----------------------------------------------------------------------------


def test_the_count_is_one_query_and_stops_at_99_plus(item, reviewer):
    Notification.objects.bulk_create(
        Notification(user=reviewer, kind=NotificationKind.OVERDUE, item=item, text=f"n{i}")
        for i in range(120)
    )
    with CaptureQueriesContext(connection) as queries:
        count = notifications.unread_count(reviewer)

    assert count == 100
    assert len(queries) == 1
    html = login(reviewer).get(COUNT, headers=HX).content.decode()
    assert "(99+ unread)" in html


def test_the_polled_count_is_a_fragment_that_keeps_polling(both_told, reviewer, colleague):
    response = login(reviewer).get(
        COUNT, headers={**HX, "X-Flowdesk-Background": "1"}
    )  # what htmx sends every minute

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert html.startswith('<span id="unread-count"')
    assert 'hx-trigger="every 60s"' in html
    assert "(1 unread)" in html
    Notification.objects.update(read_at=timezone.now())
    assert "(" not in login(reviewer).get(COUNT, headers=HX).content.decode().split(">", 1)[1]
    assert login(reviewer).post(COUNT).status_code == 405


def test_every_signed_in_page_shows_the_count(both_told, reviewer):
    html = login(reviewer).get(reverse("reviewqueue:queue")).content.decode()
    assert 'id="notifications-link"' in html
    assert "(1 unread)" in html


# --- Preferences ---------------------------------------------------------------------------------


def test_preferences_save_the_kinds_to_email(reviewer):
    client = login(reviewer)
    page = client.get(reverse("reviewqueue:preferences")).content.decode()
    assert "Also e-mail me when…" in page
    assert 'value="needs_attention"' in page

    response = client.post(
        reverse("reviewqueue:preferences"),
        {"time_zone": "", "email_notifications": ["overdue", "assigned", "overdue"]},
    )

    assert response.status_code == 302
    prefs = StaffPreferences.objects.get(user=reviewer)
    assert prefs.email_notifications == ["assigned", "overdue"]
    assert 'value="assigned" id="id_email_notifications_0" checked' in client.get(
        reverse("reviewqueue:preferences")
    ).content.decode().replace('checked=""', "checked")


def test_an_unknown_kind_is_refused_and_nothing_saved(reviewer):
    opt_in(reviewer, NotificationKind.ASSIGNED)

    response = login(reviewer).post(
        reverse("reviewqueue:preferences"),
        {"time_zone": "", "email_notifications": ["assigned", "everything"]},
    )

    assert response.status_code == 422
    assert "Choose from the kinds in the list." in response.content.decode()
    assert StaffPreferences.objects.get(user=reviewer).email_notifications == ["assigned"]


# --- The site's address, for the e-mails' links ------------------------------------------------


def test_the_base_url_defaults_for_make_run_and_for_production():
    from tests.config.test_settings import PRODUCTION, settings_of

    assert settings_of("FLOWDESK_BASE_URL") == {"FLOWDESK_BASE_URL": "http://127.0.0.1:8000"}
    assert settings_of("FLOWDESK_BASE_URL", **PRODUCTION) == {
        "FLOWDESK_BASE_URL": "https://flowdesk.example.org"
    }
    given = settings_of("FLOWDESK_BASE_URL", FLOWDESK_BASE_URL="https://desk.example.org/")
    assert given == {"FLOWDESK_BASE_URL": "https://desk.example.org"}


def test_a_base_url_that_is_not_an_address_refuses_to_start():
    from tests.config.test_settings import start_django

    result = start_django(FLOWDESK_BASE_URL="flowdesk.example.org")
    assert result.returncode != 0
    assert "FLOWDESK_BASE_URL must be this site's address" in result.stderr
