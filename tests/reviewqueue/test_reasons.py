"""Decline and postpone, with a reason: the services' round trips (get next skips what I
declined and what is postponed; the time passing or a supervisor brings it back), the views'
matrix (STYLE.md rule 11), bad input on each field answered on that field with the input kept
and nothing changed, only the claimant, the audit (codes, never the note), the admin inline.

Personas: alice the reviewer (holds the item), bob her colleague, charlie an outsider, sam a
supervisor.
"""

import zoneinfo
from datetime import datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from reviewqueue import selectors, services
from reviewqueue.models import (
    ItemReason,
    ItemStatus,
    ReasonCode,
    ReasonKind,
    ReviewItem,
    StaffPreferences,
)
from tests.reviewqueue.conftest import QUEUE_CLOCK

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
NOTE = "Maria Lopez's daughter called: W123456789"  # patient data: never in the audit trail


@pytest.fixture
def codes(clinical_queue):
    """The clinical queue's reasons: two for declining (one retired), one for postponing."""
    return {
        "wrong": ReasonCode.objects.create(
            queue=clinical_queue, kind=ReasonKind.DECLINE, code="wrong-queue", title="Wrong queue"
        ),
        "conflict": ReasonCode.objects.create(
            queue=clinical_queue,
            kind=ReasonKind.DECLINE,
            code="conflict",
            title="Conflict of interest",
            order=1,
        ),
        "retired": ReasonCode.objects.create(
            queue=clinical_queue,
            kind=ReasonKind.DECLINE,
            code="old",
            title="Old reason",
            active=False,
        ),
        "payer": ReasonCode.objects.create(
            queue=clinical_queue,
            kind=ReasonKind.POSTPONE,
            code="waiting-payer",
            title="Waiting for the payer",
        ),
    }


def url(name: str, item: ReviewItem) -> str:
    return reverse(f"reviewqueue:{name}", args=[item.pk])


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def local(moment: datetime) -> str:
    """``moment`` as a browser's date-and-time field posts it (the site's zone: no preference)."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def unchanged(item: ReviewItem, holder) -> None:
    """Nothing happened to ``item``: still held by ``holder``, no reason, no audit of one."""
    item.refresh_from_db()
    assert (item.status, item.claimed_by, item.postponed_until) == (
        ItemStatus.CLAIMED,
        holder,
        None,
    )
    assert not ItemReason.objects.exists()
    assert not AuditEvent.objects.filter(action__in=["item.declined", "item.postponed"]).exists()


# --- Services: round trips ---------------------------------------------------------------------


def test_declined_get_next_passes_it_over_for_me_and_gives_it_to_a_colleague(
    claimed_item, reviewer, colleague, codes
):
    given = services.item_decline(item=claimed_item, user=reviewer, code="wrong-queue", text=NOTE)

    claimed_item.refresh_from_db()
    assert (claimed_item.status, claimed_item.claimed_by) == (ItemStatus.OPEN, None)
    assert (given.kind, given.code, given.reason, given.text, given.by) == (
        ReasonKind.DECLINE,
        "wrong-queue",
        codes["wrong"],
        NOTE,
        reviewer,
    )
    assert services.item_get_next(user=reviewer) is None
    assert services.item_get_next(user=colleague) == claimed_item


def test_get_next_gives_me_the_next_item_after_the_one_i_declined(pending_run, reviewer, codes):
    first, second = (pending_run().review_items.get() for _ in range(2))
    assert services.item_get_next(user=reviewer) == first
    services.item_decline(item=first, user=reviewer, code="conflict")
    assert services.item_get_next(user=reviewer) == second


def test_i_may_still_claim_an_item_i_declined_myself(claimed_item, reviewer, codes):
    """Declining keeps it from being handed to me, not from me: I may change my mind."""
    services.item_decline(item=claimed_item, user=reviewer, code="conflict")
    services.item_claim(item=claimed_item, user=reviewer)
    assert claimed_item.status == ItemStatus.CLAIMED


def test_a_queue_without_codes_takes_a_decline_with_no_reason(claimed_item, reviewer):
    given = services.item_decline(item=claimed_item, user=reviewer)
    assert (given.code, given.reason, given.text) == ("", None, "")


def test_postponed_it_is_not_offered_until_the_time_passes_then_comes_back(
    claimed_item, reviewer, colleague, codes
):
    until = timezone.now() + timedelta(hours=3)
    services.item_postpone(item=claimed_item, user=reviewer, until=until, code="waiting-payer")

    claimed_item.refresh_from_db()
    assert (claimed_item.status, claimed_item.claimed_by) == (ItemStatus.OPEN, None)
    assert claimed_item.postponed_until == until and claimed_item.is_postponed
    assert services.item_get_next(user=colleague) is None
    assert services.item_get_next(user=reviewer) is None
    with pytest.raises(services.ReviewError, match="postponed until"):
        services.item_claim(item=claimed_item, user=colleague)

    with time_machine.travel(until - timedelta(minutes=1), tick=False):
        assert services.item_get_next(user=colleague) is None
    with time_machine.travel(until + timedelta(seconds=1), tick=False):
        # No task ran: the time passing is what brings it back.
        assert services.item_get_next(user=colleague) == claimed_item


def test_a_supervisor_brings_a_postponed_item_back_early(
    claimed_item, reviewer, colleague, supervisor, codes
):
    until = timezone.now() + timedelta(days=2)
    services.item_postpone(item=claimed_item, user=reviewer, until=until, code="waiting-payer")
    with pytest.raises(services.ReviewError, match="Only a supervisor"):
        services.item_resume_early(item=claimed_item, user=colleague)

    services.item_resume_early(item=claimed_item, user=supervisor)

    assert claimed_item.postponed_until is None
    event = AuditEvent.objects.get(action="item.resumed_early")
    assert (event.actor, event.item_id) == (supervisor, claimed_item.pk)
    assert services.item_get_next(user=colleague) == claimed_item
    with pytest.raises(services.ReviewError, match="not postponed"):
        services.item_resume_early(item=claimed_item, user=supervisor)


def test_whoever_postponed_it_may_bring_it_back_too(claimed_item, reviewer, codes):
    until = timezone.now() + timedelta(days=2)
    services.item_postpone(item=claimed_item, user=reviewer, until=until, code="waiting-payer")
    services.item_resume_early(item=claimed_item, user=reviewer)
    assert services.item_get_next(user=reviewer) == claimed_item


def test_reassigning_a_postponed_item_ends_the_postponement(
    claimed_item, reviewer, colleague, supervisor, codes
):
    until = timezone.now() + timedelta(days=2)
    services.item_postpone(item=claimed_item, user=reviewer, until=until, code="waiting-payer")
    services.item_reassign(item=claimed_item, to=colleague, by=supervisor)
    assert (claimed_item.claimed_by, claimed_item.postponed_until) == (colleague, None)


# --- Only the claimant -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["colleague", "supervisor"])
def test_only_the_claimant_declines_or_postpones(claimed_item, reviewer, codes, who, request):
    other = request.getfixturevalue(who)
    with pytest.raises(services.NotYourClaim):
        services.item_decline(item=claimed_item, user=other, code="conflict")
    with pytest.raises(services.NotYourClaim):
        services.item_postpone(
            item=claimed_item,
            user=other,
            until=timezone.now() + timedelta(hours=1),
            code="waiting-payer",
        )
    unchanged(claimed_item, reviewer)


def test_an_open_item_cannot_be_declined(item, reviewer, codes):
    with pytest.raises(services.NotYourClaim):
        services.item_decline(item=item, user=reviewer, code="conflict")
    assert not ItemReason.objects.exists()


def test_a_stale_copy_is_read_again_under_the_lock(claimed_item, reviewer, colleague, codes):
    """Released and claimed by bob since alice's page loaded: her decline changes nothing."""
    stale = ReviewItem.objects.get(pk=claimed_item.pk)
    services.item_release(item=claimed_item, user=reviewer)
    services.item_claim(item=claimed_item, user=colleague)
    with pytest.raises(services.NotYourClaim):
        services.item_decline(item=stale, user=reviewer, code="conflict")
    unchanged(claimed_item, colleague)


# --- Audit -------------------------------------------------------------------------------------


def test_audit_keeps_the_codes_and_never_the_note(claimed_item, reviewer, codes):
    services.item_decline(item=claimed_item, user=reviewer, code="wrong-queue", text=NOTE)
    services.item_claim(item=claimed_item, user=reviewer)
    until = timezone.now() + timedelta(days=1)
    services.item_postpone(
        item=claimed_item, user=reviewer, until=until, code="waiting-payer", text=NOTE
    )

    declined = AuditEvent.objects.get(action="item.declined")
    postponed = AuditEvent.objects.get(action="item.postponed")
    assert declined.detail == {"reason": "wrong-queue"}
    assert postponed.detail == {"reason": "waiting-payer", "until": until.isoformat()}
    assert (declined.actor, postponed.actor) == (reviewer, reviewer)
    assert (declined.item_id, postponed.item_id) == (claimed_item.pk, claimed_item.pk)
    for event in AuditEvent.objects.all():
        assert "Maria" not in str(event.detail) and "W123456789" not in str(event.detail)


def test_the_timeline_says_them_in_words(claimed_item, reviewer, codes):
    services.item_decline(item=claimed_item, user=reviewer, code="wrong-queue", text=NOTE)
    services.item_claim(item=claimed_item, user=reviewer)
    services.item_postpone(
        item=claimed_item,
        user=reviewer,
        until=timezone.now() + timedelta(days=1),
        code="waiting-payer",
    )
    texts = [entry.text for entry in selectors.timeline(claimed_item)]
    assert "Declined (not mine); back in the queue: Wrong queue" in texts
    assert any(
        t.startswith("Postponed until ") and t.endswith(": Waiting for the payer") for t in texts
    )


# --- Views -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["item_decline", "item_postpone", "item_resume"])
def test_the_views_answer_post_only_signed_in_and_inside_my_queues(
    client, claimed_item, reviewer, outsider, name
):
    response = client.post(url(name, claimed_item))
    assert response.status_code == 302 and "/login" in response["Location"]
    assert login(reviewer).get(url(name, claimed_item)).status_code == 405
    assert login(outsider).post(url(name, claimed_item), {"code": "x"}).status_code == 404
    unchanged(claimed_item, reviewer)


def test_the_item_page_offers_decline_and_postpone_to_the_holder_only(
    claimed_item, reviewer, colleague, codes
):
    page = login(reviewer).get(url("item", claimed_item)).content.decode()
    assert 'id="decline"' in page and 'id="postpone"' in page
    assert ">Wrong queue</option>" in page and ">Old reason</option>" not in page
    assert "Until (your time zone, " in page
    other = login(colleague).get(url("item", claimed_item)).content.decode()
    assert 'id="decline"' not in other and 'id="postpone"' not in other


def test_the_postpone_field_names_my_own_time_zone_and_reads_the_time_in_it(
    claimed_item, reviewer, codes
):
    StaffPreferences.objects.create(user=reviewer, time_zone="America/New_York")
    client = login(reviewer)
    assert "your time zone, America/New_York" in client.get(url("item", claimed_item)).text
    new_york = zoneinfo.ZoneInfo("America/New_York")
    when = (
        (timezone.now() + timedelta(days=3)).astimezone(new_york).replace(second=0, microsecond=0)
    )
    data = {"until": when.strftime("%Y-%m-%dT%H:%M"), "code": "waiting-payer"}
    assert client.post(url("item_postpone", claimed_item), data).status_code == 302
    claimed_item.refresh_from_db()
    assert claimed_item.postponed_until == when


def test_declining_without_htmx_redirects_to_the_queue_with_a_message(
    claimed_item, reviewer, codes
):
    client = login(reviewer)
    response = client.post(
        url("item_decline", claimed_item), {"code": "conflict", "text": NOTE}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("reviewqueue:queue")
    assert "Declined: the item is back in the queue" in response.text
    assert ItemReason.objects.get().text == NOTE


def test_postponing_with_htmx_sends_the_browser_to_the_queue(claimed_item, reviewer, codes):
    data = {"until": local(timezone.now() + timedelta(days=1)), "code": "waiting-payer"}
    response = login(reviewer).post(url("item_postpone", claimed_item), data, headers=HX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("reviewqueue:queue")
    claimed_item.refresh_from_db()
    assert claimed_item.is_postponed


def too_long() -> str:
    return "x" * 501


# (view, posted, field, words in the message): each refused on its own field.
BAD_INPUT = [
    ("item_decline", {"code": "", "text": "kept"}, "code", "Choose a reason for declining"),
    ("item_decline", {"code": "nope", "text": "kept"}, "code", "“nope” is not one of the"),
    ("item_decline", {"code": "old", "text": "kept"}, "code", "“old” is not one of the"),
    ("item_decline", {"code": "waiting-payer", "text": "kept"}, "code", "reasons for declining"),
    ("item_decline", {"code": "conflict", "text": "x" * 501}, "text", "at most 500 characters"),
    ("item_decline", {"code": "conflict", "text": "a\x00b"}, "text", "Null characters"),
    ("item_postpone", {"code": "waiting-payer", "text": "kept"}, "until", "Say until when"),
    ("item_postpone", {"code": "waiting-payer", "until": "soon"}, "until", "Enter a date and a"),
    ("item_postpone", {"code": "waiting-payer", "until": "past"}, "until", "That time has passed"),
    ("item_postpone", {"code": "waiting-payer", "until": "far"}, "until", "at most 90 days"),
    ("item_postpone", {"code": "", "until": "tomorrow"}, "code", "Choose a reason for postponing"),
    ("item_postpone", {"code": "wrong-queue", "until": "tomorrow"}, "code", "not one of the"),
]
TIMES = {
    "past": lambda: local(timezone.now() - timedelta(minutes=5)),
    "far": lambda: local(timezone.now() + timedelta(days=91)),
    "tomorrow": lambda: local(timezone.now() + timedelta(days=1)),
}


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize(("name", "posted", "field", "words"), BAD_INPUT)
def test_bad_input_is_refused_on_its_field_with_the_input_kept_and_nothing_changed(
    claimed_item, reviewer, codes, name, posted, field, words, htmx
):
    data = {key: TIMES[value]() if value in TIMES else value for key, value in posted.items()}
    response = login(reviewer).post(url(name, claimed_item), data, headers=HX if htmx else {})

    assert response.status_code == 422
    html = response.content.decode()
    assert ("<html" in html) is not htmx
    prefix = "decline" if name == "item_decline" else "postpone"
    error_id = f"{prefix}-{field}-error"
    assert f'aria-describedby="{error_id}"' in html
    message = html.split(f'id="{error_id}">', 1)[1].split("</p>", 1)[0]
    assert words in message.replace("&#x27;", "'").replace("&quot;", '"')
    assert f'<details class="give-back" id="{prefix}" open>' in html
    # What was typed is there to correct.
    if data.get("text") and "\x00" not in data["text"]:
        assert f">{data['text']}</textarea>" in html
    if data.get("until"):
        assert f'value="{data["until"]}"' in html
    if data.get("code") in {"conflict", "waiting-payer"} and field != "code":
        assert f'value="{data["code"]}" selected' in html
    unchanged(claimed_item, reviewer)


def test_a_colleague_posting_a_decline_is_told_who_holds_it(
    claimed_item, reviewer, colleague, codes
):
    response = login(colleague).post(
        url("item_decline", claimed_item), {"code": "conflict"}, headers=HX
    )
    assert response.status_code == 409
    assert "Only the person holding this item can decline it." in response.text
    unchanged(claimed_item, reviewer)


def test_a_postponed_item_says_until_when_and_a_supervisor_brings_it_back(
    claimed_item, reviewer, colleague, supervisor, codes
):
    until = timezone.now() + timedelta(days=1)
    services.item_postpone(
        item=claimed_item, user=reviewer, until=until, code="waiting-payer", text=NOTE
    )
    seen = login(colleague).get(url("item", claimed_item)).text
    assert "Postponed until" in seen and ": Waiting for the payer." in seen
    assert ">Claim</button>" not in seen and "Bring it back now" not in seen
    assert login(colleague).post(url("item_resume", claimed_item), headers=HX).status_code == 409

    sam = login(supervisor)
    assert "Bring it back now" in sam.get(url("item", claimed_item)).text
    response = sam.post(url("item_resume", claimed_item), headers=HX)
    assert response.status_code == 200 and "<html" not in response.text
    assert ">Claim</button>" in response.text
    claimed_item.refresh_from_db()
    assert claimed_item.postponed_until is None


def test_the_queue_hides_postponed_items_unless_asked(claimed_item, reviewer, colleague, codes):
    until = timezone.now() + timedelta(days=1)
    services.item_postpone(item=claimed_item, user=reviewer, until=until, code="waiting-payer")
    client = login(colleague)
    queue = reverse("reviewqueue:queue")
    assert f"/items/{claimed_item.pk}/" not in client.get(queue).text
    postponed = client.get(queue, {"status": "postponed"}).text
    assert f"/items/{claimed_item.pk}/" in postponed
    assert "postponed until" in postponed  # the row says until when
    assert f"/items/{claimed_item.pk}/" in client.get(queue, {"status": "active"}).text
    with time_machine.travel(until + timedelta(minutes=1), tick=False):
        client = login(colleague)  # a day later: signed in again
        assert f"/items/{claimed_item.pk}/" in client.get(queue).text
        assert f"/items/{claimed_item.pk}/" not in client.get(queue, {"status": "postponed"}).text


# --- The admin ---------------------------------------------------------------------------------


def test_reason_codes_are_configured_on_the_queue_in_the_admin(admin_client, clinical_queue):
    change = reverse("admin:reviewqueue_queue_change", args=[clinical_queue.pk])
    page = admin_client.get(change).text
    assert "Reasons for declining, postponing or returning" in page
    data = {
        "name": clinical_queue.name,
        "description": "",
        "sla": "04:00:00",
        **QUEUE_CLOCK,
        "teams": [team.pk for team in clinical_queue.teams.all()],
        "routes-TOTAL_FORMS": "0",
        "routes-INITIAL_FORMS": "0",
        "reason_codes-TOTAL_FORMS": "1",
        "reason_codes-INITIAL_FORMS": "0",
        "reason_codes-0-kind": "decline",
        "reason_codes-0-code": "wrong-queue",
        "reason_codes-0-title": "Wrong queue",
        "reason_codes-0-active": "on",
        "reason_codes-0-order": "0",
    }
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    code = ReasonCode.objects.get()
    assert (code.queue, code.kind, code.code, code.title, code.active) == (
        clinical_queue,
        ReasonKind.DECLINE,
        "wrong-queue",
        "Wrong queue",
        True,
    )
