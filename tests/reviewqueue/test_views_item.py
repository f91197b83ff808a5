"""The item views: the page, claim, release, reassign, resend, the lease timer and heartbeat,
drafts, the form re-render, submit and notes.

The matrix of STYLE.md rule 11 for each (anonymous, without htmx, with htmx, wrong method,
outsider), then what each promises: conflicts answered with who holds the item, input never lost,
server errors shown on their fields, everything shown escaped, every view audited.
"""

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit import services as audit_services
from audit.models import AuditEvent
from flows_integration import services as integration
from flows_integration.models import ApiHealth, FlowRun
from reviewqueue import tasks
from reviewqueue.models import (
    Draft,
    ItemStatus,
    Note,
    ReviewItem,
    Route,
    StaffPreferences,
    Submission,
    SubmissionStatus,
)
from tests.reviewqueue.conftest import CLINICAL_ANSWER, clinical_form_data, pause_run, posted

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
BACKGROUND = {"HX-Request": "true", "X-Flowdesk-Background": "1"}

# Every view that takes an item id, with the method it answers.
VIEWS = {
    "item": "get",
    "item_claim": "post",
    "item_release": "post",
    "item_reassign": "post",
    "item_resend": "post",
    "item_lease": "get",
    "item_renew": "post",
    "item_draft": "post",
    "item_form": "post",
    "item_submit": "post",
    "item_note": "post",
}


def url(name: str, item: ReviewItem | int) -> str:
    return reverse(f"reviewqueue:{name}", args=[getattr(item, "pk", item)])


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def field_html(html: str, name: str) -> str:
    """The rendered schema-form field named ``name`` (its wrapper up to the next field)."""
    start = html.index(f'id="sf-{name.replace(".", "-")}"')
    end = html.find('class="sf-field', start)
    return html[start : end if end != -1 else len(html)]


def errors_of(html: str, name: str) -> list[str]:
    errorlist = re.search(r'<ul class="errorlist"[^>]*>(.*?)</ul>', field_html(html, name), re.S)
    return re.findall(r"<li>(.*?)</li>", errorlist.group(1), re.S) if errorlist else []


def typed(**changes: str) -> dict[str, list[str]]:
    """The clinical answer as the browser posts it, with ``changes``."""
    data = posted(clinical_form_data())
    data.update({name: [value] for name, value in changes.items()})
    return data


def kept(data: dict[str, list[str]]) -> dict[str, list[str]]:
    """What a draft keeps of a post: the fields, not the request's own controls."""
    return {name: values for name, values in data.items() if name != "~form"}


def snapshot(item: ReviewItem) -> tuple:
    item.refresh_from_db()
    return (item.status, item.claimed_by_id, item.lease_until)


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Submission ids handed to the delivery task (recorded, not sent to a broker)."""
    calls: list[int] = []
    monkeypatch.setattr(
        tasks.deliver_submission,
        "apply_async",
        lambda args=(), **options: calls.append(args[0]),
    )
    return calls


@pytest.fixture
def needs_attention(claimed_item, reviewer) -> ReviewItem:
    """Alice's answer could not be delivered after the last retry."""
    Submission.objects.create(
        item=claimed_item,
        submitted_by=reviewer,
        input=CLINICAL_ANSWER,
        status=SubmissionStatus.FAILED,
        attempts=8,
        last_error="Flows did not answer",
        finished_at=timezone.now(),
    )
    ReviewItem.objects.filter(pk=claimed_item.pk).update(
        status=ItemStatus.NEEDS_ATTENTION, lease_until=None
    )
    claimed_item.refresh_from_db()
    return claimed_item


def paused_item(version, state_id: str, input_data: dict) -> ReviewItem:
    """A Run of ``version`` paused at ``state_id``, announced as the mirror would."""
    return pause_run(version, state_id, input_data).review_items.get()


# --- The matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VIEWS)
def test_anonymous_is_sent_to_sign_in(client, claimed_item, name):
    response = getattr(client, VIEWS[name])(url(name, claimed_item))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", VIEWS)
def test_wrong_method_is_refused(reviewer, claimed_item, name):
    client = login(reviewer)
    wrong = "post" if VIEWS[name] == "get" else "get"
    assert getattr(client, wrong)(url(name, claimed_item)).status_code == 405
    assert client.put(url(name, claimed_item)).status_code == 405
    assert client.delete(url(name, claimed_item), headers=HX).status_code == 405


def _everything(to) -> dict[str, list[str]]:
    return {**clinical_form_data(), "body": ["hello"], "to": [str(to.pk)]}


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
@pytest.mark.parametrize("name", VIEWS)
def test_an_outsider_gets_404_and_changes_nothing(outsider, claimed_item, name, headers):
    before = snapshot(claimed_item)
    response = getattr(login(outsider), VIEWS[name])(
        url(name, claimed_item), _everything(outsider), headers=headers
    )
    assert response.status_code == 404
    assert snapshot(claimed_item) == before
    assert not Note.objects.exists()
    assert not Draft.objects.exists()
    assert not Submission.objects.exists()
    assert not AuditEvent.objects.filter(actor=outsider).exclude(action="login").exists()


@pytest.mark.parametrize("name", VIEWS)
def test_guessing_an_id_shows_nothing(reviewer, claimed_item, name):
    response = getattr(login(reviewer), VIEWS[name])(url(name, claimed_item.pk + 1000))
    assert response.status_code == 404


@pytest.mark.parametrize("name", ["item_reassign", "item_resend"])
def test_a_reviewer_cannot_reassign_or_resend(reviewer, colleague, needs_attention, name):
    before = snapshot(needs_attention)
    for user in (reviewer, colleague):
        response = login(user).post(url(name, needs_attention), {"to": colleague.pk}, headers=HX)
        assert response.status_code == 404
    assert snapshot(needs_attention) == before
    assert needs_attention.submissions.get().status == SubmissionStatus.FAILED


# --- The item page ---------------------------------------------------------------------------


def test_item_without_htmx_is_a_whole_page(reviewer, claimed_item):
    response = login(reviewer).get(url("item", claimed_item))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert 'id="item-panel"' in html
    assert 'id="notes"' in html
    assert 'id="review-form"' in html
    assert 'id="lease"' in html
    assert "Maria" in html  # the Run's input, as readable sections
    assert "Review the request against the payer" in html  # the callback instructions


def test_item_with_htmx_is_the_panel(reviewer, claimed_item):
    response = login(reviewer).get(url("item", claimed_item), headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="item-panel"')
    assert 'id="review-form"' in html
    assert 'id="notes"' not in html


def test_an_open_item_offers_a_claim_and_no_form(reviewer, item):
    html = login(reviewer).get(url("item", item)).content.decode()
    assert url("item_claim", item) in html
    assert "Claim this item to work on it." in html
    assert 'id="review-form"' not in html


def test_a_colleague_sees_who_holds_the_item(colleague, claimed_item):
    html = login(colleague).get(url("item", claimed_item)).content.decode()
    assert "alice is working on this item." in html
    assert 'id="review-form"' not in html
    assert url("item_release", claimed_item) not in html


def test_a_supervisor_from_no_team_sees_the_item_and_can_reassign(
    supervisor, colleague, claimed_item
):
    response = login(supervisor).get(url("item", claimed_item))
    assert response.status_code == 200
    html = response.content.decode()
    assert url("item_reassign", claimed_item) in html
    assert f'<option value="{colleague.pk}">bob</option>' in html
    assert url("item_release", claimed_item) in html


def test_viewing_an_item_is_audited(reviewer, item):
    login(reviewer).get(url("item", item), REMOTE_ADDR="10.0.0.7")
    audit = AuditEvent.objects.get(action="item.viewed")
    assert audit.actor == reviewer
    assert audit.ip == "10.0.0.7"
    assert audit.item_id == item.pk
    assert audit.flow_run_id == item.run.flow_run_id


def test_every_read_is_audited_whatever_the_client_says_and_polls_fold(reviewer, claimed_item):
    client = login(reviewer)
    views = AuditEvent.objects.filter(action="item.viewed", item_id=claimed_item.pk, actor=reviewer)
    # A header of the client's choosing does not keep the read out of the trail.
    assert client.get(url("item", claimed_item), headers=BACKGROUND).status_code == 200
    assert views.count() == 1
    # Polled or reloaded within a few minutes: the same read, one row.
    client.get(url("item", claimed_item), headers=BACKGROUND)
    client.get(url("item", claimed_item))
    assert views.count() == 1
    with time_machine.travel(
        timezone.now() + audit_services.READ_FOLDED_WITHIN + timedelta(seconds=1)
    ):
        client.get(url("item", claimed_item), headers=BACKGROUND)
    assert views.count() == 2


def test_the_banner_shows_while_flows_is_failing(reviewer, claimed_item):
    client = login(reviewer)
    assert 'id="flows-banner"' not in client.get(url("item", claimed_item)).content.decode()
    ApiHealth.objects.update_or_create(
        pk=1, defaults={"consecutive_failures": 1, "last_failure_at": timezone.now()}
    )
    html = client.get(url("item", claimed_item)).content.decode()
    assert 'id="flows-banner"' in html
    assert "submissions wait" in html


UNSAFE = """
metadata: {name: Unsafe instructions}
input: {type: object}
startsAt: check
states:
  check:
    type: callback
    title: Check the documents
    instructions: |
      **Read** the file. <script>alert("instructions")</script>

      [Click me](javascript:alert(1)) or read [the policy](https://example.org/policy).
    input: {type: object, properties: {ok: {type: boolean}}}
    end: true
"""


def test_instructions_are_rendered_as_markdown_safely(reviewer, clinical_queue):
    version = integration.version_store(template_id="unsafe", number=1, source=UNSAFE)
    Route.objects.create(template=version.template, queue=clinical_queue)
    item = paused_item(version, "check", {"patient": {"name": "<img src=x onerror=alert('name')>"}})
    html = login(reviewer).get(url("item", item)).content.decode()
    assert "<strong>Read</strong>" in html
    assert '<script>alert("instructions")' not in html
    assert "&lt;script&gt;alert(" in html
    assert 'href="javascript:' not in html.lower()
    assert 'href="https://example.org/policy"' in html
    # The Run's input is data, never markup.
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(" in html


# --- Claim -----------------------------------------------------------------------------------


def test_claim_without_htmx_redirects_to_the_item(reviewer, item):
    response = login(reviewer).post(url("item_claim", item), REMOTE_ADDR="10.0.0.8")
    assert response.status_code == 302
    assert response["Location"] == url("item", item)
    item.refresh_from_db()
    assert item.status == ItemStatus.CLAIMED
    assert item.claimed_by == reviewer
    assert item.lease_until > timezone.now() + timedelta(minutes=29)
    audit = AuditEvent.objects.get(action="item.claimed")
    assert (audit.actor, audit.ip, audit.item_id) == (reviewer, "10.0.0.8", item.pk)


def test_claim_with_htmx_re_renders_the_panel(reviewer, item):
    response = login(reviewer).post(url("item_claim", item), headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="item-panel"')
    assert 'id="review-form"' in html
    assert 'id="lease"' in html


def test_claiming_a_colleagues_item_says_who_has_it(colleague, claimed_item):
    before = snapshot(claimed_item)
    response = login(colleague).post(url("item_claim", claimed_item), headers=HX)
    assert response.status_code == 409
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="item-panel"')
    assert 'id="item-error"' in html
    assert "alice is working on this item." in html
    assert snapshot(claimed_item) == before


def test_a_refused_claim_without_htmx_is_flashed_on_the_item_page(colleague, claimed_item):
    client = login(colleague)
    response = client.post(url("item_claim", claimed_item))
    assert response.status_code == 302
    assert response["Location"] == url("item", claimed_item)
    assert "alice is working on this item." in client.get(response["Location"]).content.decode()


def test_an_expired_claim_can_be_taken_over(colleague, claimed_item):
    ReviewItem.objects.filter(pk=claimed_item.pk).update(
        lease_until=timezone.now() - timedelta(minutes=1)
    )
    response = login(colleague).post(url("item_claim", claimed_item), headers=HX)
    assert response.status_code == 200
    claimed_item.refresh_from_db()
    assert claimed_item.claimed_by == colleague


# --- Release ---------------------------------------------------------------------------------


def test_release_without_htmx_redirects(reviewer, claimed_item):
    response = login(reviewer).post(url("item_release", claimed_item))
    assert response.status_code == 302
    assert response["Location"] == url("item", claimed_item)
    claimed_item.refresh_from_db()
    assert (claimed_item.status, claimed_item.claimed_by, claimed_item.lease_until) == (
        ItemStatus.OPEN,
        None,
        None,
    )
    audit = AuditEvent.objects.get(action="item.released")
    assert audit.actor == reviewer
    assert audit.detail["holder"] == reviewer.pk


def test_release_with_htmx_re_renders_the_panel(reviewer, claimed_item):
    response = login(reviewer).post(url("item_release", claimed_item), headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="item-panel"')
    assert "Claim this item to work on it." in html


def test_a_colleague_cannot_release_my_claim(colleague, claimed_item):
    before = snapshot(claimed_item)
    response = login(colleague).post(url("item_release", claimed_item), headers=HX)
    assert response.status_code == 409
    assert "Only the person holding this item can release it." in response.content.decode()
    assert snapshot(claimed_item) == before


def test_a_supervisor_can_release_anyones_claim(supervisor, claimed_item):
    assert login(supervisor).post(url("item_release", claimed_item)).status_code == 302
    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.OPEN


# --- Reassign --------------------------------------------------------------------------------


def test_reassign_without_htmx_redirects(supervisor, colleague, claimed_item):
    response = login(supervisor).post(url("item_reassign", claimed_item), {"to": colleague.pk})
    assert response.status_code == 302
    assert response["Location"] == url("item", claimed_item)
    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.CLAIMED
    assert claimed_item.claimed_by == colleague
    audit = AuditEvent.objects.get(action="item.reassigned")
    assert audit.actor == supervisor
    assert audit.detail["to"] == colleague.pk


def test_reassign_with_htmx_re_renders_the_panel(supervisor, colleague, item):
    response = login(supervisor).post(url("item_reassign", item), {"to": colleague.pk}, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="item-panel"')
    assert "bob is working on this item." in html


def test_reassign_to_someone_outside_the_queue_is_refused(supervisor, outsider, item):
    response = login(supervisor).post(url("item_reassign", item), {"to": outsider.pk}, headers=HX)
    assert response.status_code == 409
    assert "charlie does not work in the Clinical review queue." in response.content.decode()
    item.refresh_from_db()
    assert item.status == ItemStatus.OPEN


@pytest.mark.parametrize("to", ["", "999999", "abc"])
def test_reassign_to_nobody_is_a_bad_request(supervisor, item, to):
    response = login(supervisor).post(url("item_reassign", item), {"to": to}, headers=HX)
    assert response.status_code == 400
    assert "Choose who takes this item." in response.content.decode()
    item.refresh_from_db()
    assert item.status == ItemStatus.OPEN


# --- Resend ----------------------------------------------------------------------------------


def test_resend_without_htmx_redirects_and_delivers_on_commit(
    supervisor, needs_attention, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(supervisor).post(url("item_resend", needs_attention))
    assert response.status_code == 302
    assert response["Location"] == url("item", needs_attention)
    needs_attention.refresh_from_db()
    assert needs_attention.status == ItemStatus.SENDING
    submission = needs_attention.submissions.get()
    assert (submission.status, submission.attempts) == (SubmissionStatus.PENDING, 0)
    assert enqueued == [submission.pk]
    assert AuditEvent.objects.get(action="submission.resent").actor == supervisor


def test_resend_with_htmx_re_renders_the_panel(
    supervisor, needs_attention, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(supervisor).post(url("item_resend", needs_attention), headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="item-panel"')
    assert "Sending your answer to Flows" in html
    assert len(enqueued) == 1


def test_resend_with_nothing_to_send_is_refused(supervisor, claimed_item, enqueued):
    response = login(supervisor).post(url("item_resend", claimed_item), headers=HX)
    assert response.status_code == 409
    assert "There is nothing to send again." in response.content.decode()
    assert enqueued == []


# --- The lease: its timer (polled) and its heartbeat -----------------------------------------


def test_lease_with_htmx_shows_the_time_left_without_renewing(reviewer, claimed_item):
    lease = claimed_item.lease_until
    response = login(reviewer).get(url("item_lease", claimed_item), headers=BACKGROUND)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<span id="lease"')
    assert re.search(r"Your claim: (29|30) min left", html)
    claimed_item.refresh_from_db()
    assert claimed_item.lease_until == lease


def test_lease_polling_writes_no_audit_row(reviewer, claimed_item):
    client = login(reviewer)
    before = AuditEvent.objects.count()
    client.get(url("item_lease", claimed_item), headers=BACKGROUND)
    assert AuditEvent.objects.count() == before


def test_an_ended_lease_says_so(reviewer, claimed_item):
    ReviewItem.objects.filter(pk=claimed_item.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    html = login(reviewer).get(url("item_lease", claimed_item), headers=HX).content.decode()
    assert "Your claim has ended" in html


def test_lease_without_htmx_is_a_whole_page(reviewer, claimed_item):
    response = login(reviewer).get(url("item_lease", claimed_item), follow=True)
    assert response.status_code == 200
    assert "<html" in response.content.decode()


def test_renew_with_htmx_extends_my_claim(reviewer, claimed_item):
    ReviewItem.objects.filter(pk=claimed_item.pk).update(
        lease_until=timezone.now() + timedelta(minutes=5)
    )
    response = login(reviewer).post(url("item_renew", claimed_item), headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<span id="lease"')
    assert re.search(r"Your claim: (29|30) min left", html)
    claimed_item.refresh_from_db()
    assert claimed_item.lease_until > timezone.now() + timedelta(minutes=29)


def test_renew_without_htmx_redirects(reviewer, claimed_item):
    ReviewItem.objects.filter(pk=claimed_item.pk).update(
        lease_until=timezone.now() + timedelta(minutes=5)
    )
    response = login(reviewer).post(url("item_renew", claimed_item))
    assert response.status_code == 302
    assert response["Location"] == url("item", claimed_item)
    claimed_item.refresh_from_db()
    assert claimed_item.lease_until > timezone.now() + timedelta(minutes=29)


def test_renewing_someone_elses_claim_is_refused_and_says_so(colleague, claimed_item):
    before = snapshot(claimed_item)
    response = login(colleague).post(url("item_renew", claimed_item), headers=HX)
    html = response.content.decode()
    # Bob never held this claim: he must not be told it is his with time left.
    assert "min left" not in html
    assert "Your claim has ended" in html
    # Refused like every other action on a claim that is not mine (claim, release, draft).
    assert response.status_code == 409
    assert snapshot(claimed_item) == before


# --- Drafts ----------------------------------------------------------------------------------


def test_draft_with_htmx_saves_and_renews_the_claim(reviewer, claimed_item):
    ReviewItem.objects.filter(pk=claimed_item.pk).update(
        lease_until=timezone.now() + timedelta(minutes=5)
    )
    data = typed(**{"reviewer.name": "Al"})
    response = login(reviewer).post(url("item_draft", claimed_item), data, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<span id="draft-state"')
    assert "Draft saved" in html
    assert Draft.objects.get(item=claimed_item, user=reviewer).data == kept(data)
    claimed_item.refresh_from_db()
    assert claimed_item.lease_until > timezone.now() + timedelta(minutes=29)


@time_machine.travel("2026-12-05 19:03:41Z", tick=False)
def test_the_draft_stamp_is_in_the_reviewers_zone_and_names_it(reviewer, claimed_item):
    StaffPreferences.objects.create(user=reviewer, time_zone="America/New_York")
    data = typed(**{"reviewer.name": "Al"})
    response = login(reviewer).post(url("item_draft", claimed_item), data, headers=HX)
    assert "Draft saved 14:03:41 EST" in response.content.decode()


def test_draft_without_htmx_redirects_and_comes_back_on_the_page(reviewer, claimed_item):
    client = login(reviewer)
    response = client.post(url("item_draft", claimed_item), typed(**{"reviewer.name": "Al"}))
    assert response.status_code == 302
    assert response["Location"] == url("item", claimed_item)
    html = client.get(url("item", claimed_item)).content.decode()
    assert 'value="Al"' in field_html(html, "reviewer.name")
    # A draft is shown as typed, not validated ("Al" is fine, but nothing is flagged yet).
    assert errors_of(html, "reviewer.name") == []


def test_a_draft_needs_my_claim(colleague, claimed_item):
    response = login(colleague).post(url("item_draft", claimed_item), typed(), headers=HX)
    assert response.status_code == 409
    html = response.content.decode()
    assert html.lstrip().startswith('<span id="draft-state"')
    assert "Claim this item to save a draft." in html
    assert not Draft.objects.exists()


# --- The form re-render (conditionals, rows) -------------------------------------------------


def test_form_with_htmx_adds_a_row_and_keeps_the_draft(reviewer, claimed_item):
    data = {**typed(), "~action": ["add:diagnosisCodes"]}
    response = login(reviewer).post(url("item_form", claimed_item), data, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<fieldset id="schema-form"')
    assert 'name="diagnosisCodes.1.code"' in html
    assert 'value="M17.11"' in html
    assert 'class="errorlist"' not in html
    draft = Draft.objects.get(item=claimed_item, user=reviewer)
    assert draft.data["diagnosisCodes~rows"] == ["2"]
    assert draft.data["diagnosisCodes.0.code"] == ["M17.11"]


def test_form_with_htmx_re_renders_the_part_a_conditional_controls(reviewer, claimed_item):
    data = {**typed(decision="deny"), "~part": [""]}
    response = login(reviewer).post(url("item_form", claimed_item), data, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<div id="sf-root"')
    assert 'name="denialReason"' in html


def test_form_without_htmx_redirects(reviewer, claimed_item):
    data = {**typed(), "~action": ["add:diagnosisCodes"]}
    response = login(reviewer).post(url("item_form", claimed_item), data)
    assert response.status_code == 302
    assert response["Location"] == url("item", claimed_item)
    assert Draft.objects.get(item=claimed_item, user=reviewer).data["diagnosisCodes~rows"] == ["2"]


def test_form_needs_my_claim(colleague, claimed_item):
    response = login(colleague).post(url("item_form", claimed_item), typed(), headers=HX)
    assert response.status_code == 404
    assert not Draft.objects.exists()


# --- Submit ----------------------------------------------------------------------------------


def test_submit_without_htmx_redirects_and_delivers_on_commit(
    reviewer, claimed_item, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(reviewer).post(
            url("item_submit", claimed_item), posted(clinical_form_data()), REMOTE_ADDR="10.0.0.9"
        )
    assert response.status_code == 302
    assert response["Location"] == url("item", claimed_item)
    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.SENDING
    submission = Submission.objects.get()
    assert submission.input == CLINICAL_ANSWER
    assert submission.submitted_by == reviewer
    assert enqueued == [submission.pk]
    audit = AuditEvent.objects.get(action="item.submitted")
    assert (audit.actor, audit.ip) == (reviewer, "10.0.0.9")


def test_submit_with_htmx_shows_sending(
    reviewer, claimed_item, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(reviewer).post(
            url("item_submit", claimed_item), posted(clinical_form_data()), headers=HX
        )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="item-panel"')
    assert "Sending your answer to Flows" in html
    assert 'hx-trigger="every 2s"' in html  # the panel follows the delivery
    assert len(enqueued) == 1


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_invalid_input_is_422_with_errors_on_fields_and_input_kept(
    reviewer, claimed_item, enqueued, headers
):
    data = typed(**{"reviewer.name": "A", "diagnosisCodes.0.code": "bogus"})
    response = login(reviewer).post(url("item_submit", claimed_item), data, headers=headers)
    assert response.status_code == 422
    html = response.content.decode()
    assert ("<html" in html) is (not headers)
    assert 'id="item-panel"' in html
    assert 'id="sf-summary"' in html
    assert errors_of(html, "reviewer.name")
    assert errors_of(html, "diagnosisCodes.0.code")
    assert errors_of(html, "decision") == []
    assert 'value="A"' in field_html(html, "reviewer.name")
    assert 'value="bogus"' in field_html(html, "diagnosisCodes.0.code")
    assert 'value="2027-04-15"' in field_html(html, "authorization.validThrough")
    form = response.context["form"]
    assert {"reviewer.name", "diagnosisCodes.0.code"} <= set(form.errors)
    assert not Submission.objects.exists()
    assert enqueued == []
    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.CLAIMED


def test_a_row_action_without_javascript_shows_the_form_as_typed(reviewer, claimed_item):
    data = {**typed(**{"reviewer.name": "A"}), "~action": ["add:diagnosisCodes"]}
    response = login(reviewer).post(url("item_submit", claimed_item), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert 'name="diagnosisCodes.1.code"' in html
    assert 'value="A"' in field_html(html, "reviewer.name")
    assert 'class="errorlist"' not in html
    assert not Submission.objects.exists()


def test_a_non_holder_gets_409_and_keeps_the_input_as_a_draft(colleague, claimed_item, enqueued):
    data = typed(**{"reviewer.name": "Bob Colleague"})
    before = snapshot(claimed_item)
    response = login(colleague).post(url("item_submit", claimed_item), data, headers=HX)
    assert response.status_code == 409
    html = response.content.decode()
    assert "alice is working on this item." in html
    assert not Submission.objects.exists()
    assert enqueued == []
    assert snapshot(claimed_item) == before
    assert Draft.objects.get(item=claimed_item, user=colleague).data == kept(data)


def test_a_lapsed_claim_keeps_the_input_until_claimed_again(reviewer, claimed_item):
    ReviewItem.objects.filter(pk=claimed_item.pk).update(
        lease_until=timezone.now() - timedelta(minutes=1)
    )
    client = login(reviewer)
    data = typed(**{"reviewer.name": "Typed before the lapse"})
    response = client.post(url("item_submit", claimed_item), data)
    assert response.status_code == 409
    assert "Your claim on this item has ended" in response.content.decode()
    assert not Submission.objects.exists()
    assert client.post(url("item_claim", claimed_item)).status_code == 302
    html = client.get(url("item", claimed_item)).content.decode()
    assert 'value="Typed before the lapse"' in field_html(html, "reviewer.name")


def test_submitting_after_the_run_moved_on_keeps_the_input(reviewer, claimed_item):
    FlowRun.objects.filter(pk=claimed_item.run_id).update(status="COMPLETE", state_id="")
    data = typed(**{"reviewer.name": "Too Late"})
    response = login(reviewer).post(url("item_submit", claimed_item), data, headers=HX)
    assert response.status_code == 409
    assert "The Run is no longer waiting at this step" in response.content.decode()
    assert not Submission.objects.exists()
    assert Draft.objects.get(item=claimed_item, user=reviewer).data == kept(data)


def test_a_second_submit_is_refused(
    reviewer, claimed_item, enqueued, django_capture_on_commit_callbacks
):
    client = login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url("item_submit", claimed_item), posted(clinical_form_data()))
        second = client.post(
            url("item_submit", claimed_item), posted(clinical_form_data()), headers=HX
        )
    assert first.status_code == 302
    assert second.status_code == 409
    assert "already been submitted" in second.content.decode()
    assert Submission.objects.count() == 1
    assert len(enqueued) == 1


def test_submit_and_next_opens_the_next_item(
    reviewer, claimed_item, pending_run, enqueued, django_capture_on_commit_callbacks
):
    following = pending_run().review_items.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = login(reviewer).post(
            url("item_submit", claimed_item), {**posted(clinical_form_data()), "next": ["1"]}
        )
    assert response.status_code == 302
    assert response["Location"] == url("item", following)
    following.refresh_from_db()
    assert (following.status, following.claimed_by) == (ItemStatus.CLAIMED, reviewer)
    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.SENDING
    assert len(enqueued) == 1


def test_submit_and_next_with_htmx_redirects_the_browser(
    reviewer, claimed_item, pending_run, enqueued, django_capture_on_commit_callbacks
):
    following = pending_run().review_items.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = login(reviewer).post(
            url("item_submit", claimed_item),
            {**posted(clinical_form_data()), "next": ["1"]},
            headers=HX,
        )
    assert response.status_code == 200
    assert response["HX-Redirect"] == url("item", following)


def test_submit_and_next_with_nothing_left_goes_to_the_queue(
    reviewer, claimed_item, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(reviewer).post(
            url("item_submit", claimed_item), {**posted(clinical_form_data()), "next": ["1"]}
        )
    assert response.status_code == 302
    assert response["Location"] == reverse("reviewqueue:queue")
    assert Submission.objects.count() == 1


REJECTION = "InterQual is not accepted by this payer"


def _rejected(item: ReviewItem, user, *, draft_saved_after: timedelta) -> None:
    """What a 400 from Update Run leaves: the rejected submission, the draft saved at submit,
    and the item claimed again by its author."""
    now = timezone.now()
    Submission.objects.create(
        item=item,
        submitted_by=user,
        input=CLINICAL_ANSWER,
        status=SubmissionStatus.REJECTED,
        field_errors=[["criteria.guideline", REJECTION]],
        last_error=REJECTION,
        created_at=now,
        finished_at=now,
    )
    Draft.objects.create(
        item=item, user=user, data=clinical_form_data(), saved_at=now + draft_saved_after
    )


def test_a_rejection_is_shown_on_the_field_it_names(reviewer, claimed_item):
    _rejected(claimed_item, reviewer, draft_saved_after=timedelta(0))
    html = login(reviewer).get(url("item", claimed_item)).content.decode()
    assert errors_of(html, "criteria.guideline") == [REJECTION]
    assert 'id="sf-summary"' in html
    # The rest of the answer is there to correct and send again.
    assert 'value="M17.11"' in field_html(html, "diagnosisCodes.0.code")
    assert 'value="Alice Reviewer"' in field_html(html, "reviewer.name")


def test_a_rejection_is_not_shown_once_the_draft_was_edited(reviewer, claimed_item):
    _rejected(claimed_item, reviewer, draft_saved_after=timedelta(minutes=2))
    html = login(reviewer).get(url("item", claimed_item)).content.decode()
    assert REJECTION not in html
    assert errors_of(html, "criteria.guideline") == []


# --- Notes -----------------------------------------------------------------------------------


def test_note_with_htmx_re_renders_the_notes(reviewer, claimed_item):
    response = login(reviewer).post(
        url("item_note", claimed_item), {"body": "Called the office."}, headers=HX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="notes"')
    assert "Called the office." in html
    note = Note.objects.get()
    assert (note.item, note.author, note.body) == (claimed_item, reviewer, "Called the office.")
    audit = AuditEvent.objects.get(action="note.added")
    assert (audit.actor, audit.item_id, audit.ip) == (reviewer, claimed_item.pk, "127.0.0.1")


def test_note_without_htmx_redirects(colleague, claimed_item):
    # Anyone on the team may add a note, claim or not.
    response = login(colleague).post(url("item_note", claimed_item), {"body": "Seen."})
    assert response.status_code == 302
    assert response["Location"] == url("item", claimed_item)
    assert Note.objects.get().author == colleague


def test_an_empty_note_with_htmx_is_422(reviewer, item):
    response = login(reviewer).post(url("item_note", item), {"body": "   "}, headers=HX)
    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="notes"')
    assert "Write something first." in html
    assert 'aria-invalid="true"' in html
    assert not Note.objects.exists()


def test_an_empty_note_without_htmx_is_flashed(reviewer, item):
    client = login(reviewer)
    response = client.post(url("item_note", item), {"body": ""})
    assert response.status_code == 302
    assert "Write something first." in client.get(response["Location"]).content.decode()
    assert not Note.objects.exists()


def test_notes_are_escaped(reviewer, item):
    client = login(reviewer)
    client.post(url("item_note", item), {"body": "<script>alert(1)</script>"})
    html = client.get(url("item", item)).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.django_db
def test_a_superseded_items_kept_input_is_shown_with_its_labels(client, claimed_item, reviewer):
    from reviewqueue import services as review

    review.draft_save(
        item=claimed_item,
        user=reviewer,
        data={"reviewer.name": ["Alice Reviewer"], "diagnosisCodes.0.code": ["M17.11"]},
    )
    run = claimed_item.run
    run.status = "IN_PROGRESS"
    run.save()
    review.item_close(run=run, new_status="IN_PROGRESS")
    client.force_login(reviewer)

    html = client.get(f"/items/{claimed_item.pk}/").content.decode()

    assert "Your input, kept as a draft" in html
    assert "<dt>Reviewer › Name</dt><dd>Alice Reviewer</dd>" in html
    assert "reviewer.name" not in html


@pytest.mark.django_db
def test_a_nul_character_is_refused_or_dropped_never_a_database_error(
    client, claimed_item, reviewer
):
    client.force_login(reviewer)
    htmx = {"HTTP_HX_REQUEST": "true"}
    note = client.post(f"/items/{claimed_item.pk}/notes/", {"body": "a\x00b"}, **htmx)
    assert note.status_code == 422
    draft = client.post(
        f"/items/{claimed_item.pk}/draft/", {"~form": "1", "reviewer.name": "Al\x00ice"}, **htmx
    )
    assert draft.status_code == 200
    assert claimed_item.drafts.get().data["reviewer.name"] == ["Alice"]
    assert client.post("/", {"q": "Lo\x00pez"}, follow=True).status_code == 200


def test_a_post_that_lost_its_fields_saves_and_sends_nothing(reviewer, claimed_item):
    """A disabled fieldset posts only the CSRF token: never an empty draft or answer."""
    client = login(reviewer)
    assert client.post(url("item_draft", claimed_item), typed(), headers=HX).status_code == 200
    before = Draft.objects.get(item=claimed_item, user=reviewer).data
    lost = {"csrfmiddlewaretoken": ["x"]}
    assert client.post(url("item_draft", claimed_item), lost, headers=HX).status_code == 422
    assert client.post(url("item_form", claimed_item), lost, headers=HX).status_code == 204
    response = client.post(url("item_submit", claimed_item), lost, headers=HX)
    assert response.status_code == 409
    assert "did not reach Flowdesk complete" in response.content.decode()
    assert not claimed_item.submissions.exists()
    assert Draft.objects.get(item=claimed_item, user=reviewer).data == before
