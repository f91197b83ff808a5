"""Answers whose reply was lost, against a Sohar-like server that keeps its Runs.

Update Run names no state, and Sohar's Get Run does not say at which state a Run waits: with two
pauses in a row, "PENDING" after a lost reply does not prove the answer did not arrive, and
sending it again would answer the second pause with the first one's input. Delivery decides
from every signal there is and, when none settles it, puts it to a supervisor. An answer that
may have arrived is never called refused or superseded.
"""

from collections.abc import Iterator

import pytest
from django.urls import reverse

from flows_integration import services as integration
from flows_integration.models import FlowRun
from reviewqueue import services
from reviewqueue.models import Draft, ItemStatus, ReviewItem, Route, SubmissionStatus
from tests.flows_integration.faulty_server import drop, hang, reset
from tests.flows_integration.sohar_like import SoharLikeServer, applied_then, flowdesk_pointed_at
from tests.reviewqueue import test_delivery
from tests.reviewqueue.conftest import pause_run
from tests.reviewqueue.test_delivery import actions, move

enqueued = test_delivery.enqueued

PUT = "PUT /v1/flow-runs/"
GET = "GET /v1/flow-runs/"
PAUSES = ["first-look", "second-look"]
TWO_PAUSES = """
metadata: {name: Two looks, version: 1}
input:
  type: object
  properties:
    patient:
      type: object
      properties: {firstName: {type: string}, lastName: {type: string}}
startsAt: first-look
states:
  first-look:
    type: callback
    title: First look
    instructions: Say what you see.
    input:
      type: object
      required: [note]
      properties: {note: {type: string, title: Note}}
    next: second-look
  second-look:
    type: callback
    title: Second look
    instructions: Say it again.
    input:
      type: object
      required: [note]
      properties: {note: {type: string, title: Note}}
    end: true
"""
ANSWER = {"note": "first look's answer"}


@pytest.fixture
def sohar(settings) -> Iterator[SoharLikeServer]:
    settings.FLOWS_CONNECT_TIMEOUT = 0.5
    settings.FLOWS_READ_TIMEOUT = 1.0
    settings.REVIEW_SUBMIT_ATTEMPTS = 3
    with flowdesk_pointed_at(SoharLikeServer(PAUSES), settings) as server:
        yield server


@pytest.fixture
def version(db, clinical_queue):
    stored = integration.version_store(template_id="two-looks", number=1, source=TWO_PAUSES)
    Route.objects.create(template=stored.template, queue=clinical_queue)
    return stored


def paused_item(sohar: SoharLikeServer, version, state_id: str) -> ReviewItem:
    """A Run on the server waiting at ``state_id``, mirrored, with its item open."""
    run_id = sohar.start_run()
    for answered in PAUSES[: PAUSES.index(state_id)]:
        sohar.apply_update(run_id, {"note": f"earlier answer at {answered}"})
    run = pause_run(version, state_id, {"patient": {"firstName": "Ana"}}, flow_run_id=run_id)
    return run.review_items.get()


def submit(item: ReviewItem, user):
    services.item_claim(item=item, user=user)
    return services.submission_create(
        item=item, user=user, answer=ANSWER, form_data={"~form": ["1"], "note": [ANSWER["note"]]}
    )


def deliveries(submission, times: int) -> list[str]:
    return [services.submission_deliver(submission.pk).outcome for _ in range(times)]


def received(sohar: SoharLikeServer, item: ReviewItem) -> list[tuple[str, dict]]:
    return sohar.runs[str(item.run.flow_run_id)].inputs


@pytest.mark.django_db
def test_a_lost_reply_before_a_second_pause_is_never_sent_to_it(
    sohar, version, reviewer, supervisor, enqueued, client
):
    item = paused_item(sohar, version, "first-look")
    submission = submit(item, reviewer)
    sohar.plan(PUT, applied_then(drop()))

    assert deliveries(submission, 3) == ["retry", "retry", "failed"]

    # The Run took the answer and now waits at the second pause; nothing else reached it.
    assert received(sohar, item) == [("first-look", ANSWER)]
    assert sohar.count(PUT) == 1
    submission.refresh_from_db()
    item.refresh_from_db()
    assert (submission.status, submission.maybe_sent) == (SubmissionStatus.FAILED, True)
    assert item.status == ItemStatus.NEEDS_ATTENTION
    assert "Second look" in submission.last_error
    assert actions(item).count("submission.unconfirmed") == 1
    # The supervisor sees the facts and is asked to decide; nobody is told it failed.
    client.force_login(supervisor)
    page = client.get(reverse("reviewqueue:item", args=[item.pk])).content.decode()
    assert "never confirmed it" in page
    assert "could not deliver" not in page
    assert 'value="arrived"' in page

    response = client.post(
        reverse("reviewqueue:item_resend", args=[item.pk]),
        {"decision": "arrived"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    submission.refresh_from_db()
    item.refresh_from_db()
    assert submission.status == SubmissionStatus.DELIVERED
    assert item.status == ItemStatus.DELIVERED
    assert not Draft.objects.filter(item=item).exists()
    assert sohar.count(PUT) == 1


@pytest.mark.django_db
def test_a_webhook_since_the_submission_settles_a_lost_reply(
    sohar, version, reviewer, enqueued, monkeypatch
):
    monkeypatch.setattr(integration, "_enqueue_event", lambda event_id: None)
    item = paused_item(sohar, version, "first-look")
    submission = submit(item, reviewer)
    sohar.plan(PUT, applied_then(reset()))

    assert deliveries(submission, 1) == ["retry"]
    # Sohar's webhook for the move, stored by the receiver before delivery asks again.
    integration.event_receive(
        svix_id="msg_second",
        payload={
            "event": "flow.updated",
            "flowRunId": str(item.run.flow_run_id),
            "status": "PENDING",
            "stateId": "second-look",
        },
    )
    assert deliveries(submission, 1) == ["delivered"]

    assert received(sohar, item) == [("first-look", ANSWER)]
    assert sohar.count(PUT) == 1


@pytest.mark.django_db
def test_a_webhook_from_before_the_submission_settles_nothing(
    sohar, version, reviewer, enqueued, monkeypatch
):
    monkeypatch.setattr(integration, "_enqueue_event", lambda event_id: None)
    item = paused_item(sohar, version, "first-look")
    integration.event_receive(
        svix_id="msg_paused",
        payload={
            "event": "flow.updated",
            "flowRunId": str(item.run.flow_run_id),
            "status": "PENDING",
            "stateId": "first-look",
        },
    )
    submission = submit(item, reviewer)
    sohar.plan(PUT, applied_then(drop()))

    assert deliveries(submission, 2) == ["retry", "retry"]

    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.PENDING
    assert sohar.count(PUT) == 1


@pytest.mark.django_db
def test_a_lost_reply_at_the_last_pause_is_sent_again_once_it_did_not_arrive(
    sohar, version, reviewer, enqueued
):
    """With no pause after this one, a PENDING Run can only be waiting here: the answer did
    not arrive, and sending it again is safe."""
    item = paused_item(sohar, version, "second-look")
    submission = submit(item, reviewer)
    sohar.plan(PUT, reset())  # lost before the server applied it

    assert deliveries(submission, 2) == ["retry", "delivered"]

    assert received(sohar, item)[-1] == ("second-look", ANSWER)
    assert [state for state, _ in received(sohar, item)].count("second-look") == 1
    assert sohar.count(PUT) == 2


@pytest.mark.django_db
def test_a_supervisor_who_says_it_did_not_arrive_sends_it_again(
    sohar, version, reviewer, supervisor, enqueued
):
    item = paused_item(sohar, version, "first-look")
    submission = submit(item, reviewer)
    sohar.plan(PUT, reset())  # never applied; only a person can know that here

    assert deliveries(submission, 3) == ["retry", "retry", "failed"]
    services.submission_retry(item=item, user=supervisor, arrived=False)

    assert deliveries(submission, 1) == ["delivered"]
    assert received(sohar, item) == [("first-look", ANSWER)]
    assert sohar.count(PUT) == 2
    assert actions(item)[-2:] == ["submission.resent", "submission.delivered"]


@pytest.mark.django_db
def test_an_answer_applied_while_the_server_hung_is_delivered_when_the_run_moves_on(
    sohar, version, reviewer, enqueued, settings, client
):
    """The issue's case: retries run out while the server hangs; the PUT had arrived. When the
    Run is seen moving on, the answer is delivered and the item resumed: never "refused",
    never "superseded", never "moved on without this item"."""
    settings.REVIEW_SUBMIT_ATTEMPTS = 2
    item = paused_item(sohar, version, "second-look")
    submission = submit(item, reviewer)
    sohar.plan(PUT, applied_then(hang(1.5)))
    sohar.always(GET, hang(1.5))  # stopped, as with SIGSTOP

    assert deliveries(submission, 2) == ["retry", "failed"]
    item.refresh_from_db()
    assert item.status == ItemStatus.NEEDS_ATTENTION
    client.force_login(reviewer)
    page = client.get(reverse("reviewqueue:item", args=[item.pk])).content.decode()
    assert "never confirmed it" in page
    assert "could not deliver" not in page

    run = FlowRun.objects.get(pk=item.run_id)
    move(run, "COMPLETE")  # the server answers again: Get Run or a webhook

    item.refresh_from_db()
    submission.refresh_from_db()
    assert item.status == ItemStatus.RESUMED
    assert submission.status == SubmissionStatus.DELIVERED
    assert not Draft.objects.filter(item=item).exists()
    assert "submission.refused" not in actions(item)
    assert "item.superseded" not in actions(item)
    page = client.get(reverse("reviewqueue:item", args=[item.pk])).content.decode()
    assert "moved on without this item" not in page
    assert "The Run has resumed" in page
    assert received(sohar, item)[-1] == ("second-look", ANSWER)
