"""The item page shows values for people: money as dollars where the schema says so, Yes/No,
codes by their titles, dates in one format, the Run's output and the sent answer as labelled
lists (never a Python dict), steps by their titles, times with their zone and due times from now,
and Flows' failures in plain words with the technical detail for supervisors only."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from flows_integration import services as integration
from flows_integration.models import WebhookEvent
from reviewqueue import services
from reviewqueue.models import ItemStatus, ReviewItem, Route, Submission, SubmissionStatus
from tests.reviewqueue.conftest import pause_run

pytestmark = pytest.mark.django_db

REFUND = """
metadata: {name: Refund}
input:
  type: object
  properties:
    patient:
      type: object
      title: Patient
      properties:
        name: {type: string, title: Name}
        dateOfBirth: {type: string, title: Date of birth, format: date}
    balanceCents: {type: integer, title: Open balance, x-display: cents}
    payerId: {type: string, title: Payer, oneOf: [{const: "60054", title: Aetna}]}
    urgent: {type: boolean, title: Urgent}
startsAt: estimate
states:
  estimate:
    type: request
    resource: CostEstimate
    parameters: {payerId: $input.payerId}
    resultSelector:
      type: object
      properties:
        copayCents: {value: $response.copayCents, title: Specialist copay, x-display: cents}
    next: refund-review
  refund-review:
    type: callback
    title: Review the refund
    input:
      type: object
      required: [decision]
      properties:
        decision:
          type: string
          title: Decision
          oneOf: [{const: approve, title: Approve the refund}, {const: deny, title: Deny it}]
        amountCents: {type: integer, title: Refund amount, x-display: cents}
        notify: {type: boolean, title: Tell the patient}
    ui:
      context: [$input.balanceCents, $input.payerId, $states.estimate.copayCents]
    end: true
output:
  type: object
  properties:
    decision: {value: $states.refund-review.decision, title: Decision}
    refund:
      title: Refund
      properties:
        amountCents: {value: $states.refund-review.amountCents, title: Amount, x-display: cents}
        lines: {value: [], title: Lines}
"""
INPUT = {
    "patient": {"name": "Maria Lopez", "dateOfBirth": "1980-02-29"},
    "balanceCents": 123457,
    "payerId": "60054",
    "urgent": True,
}
ANSWER = {"decision": "approve", "amountCents": 5000, "notify": False}


@pytest.fixture
def refund_item(clinical_queue) -> ReviewItem:
    version = integration.version_store(template_id="refund", number=1, source=REFUND)
    Route.objects.create(template=version.template, queue=clinical_queue)
    run = pause_run(
        version,
        "refund-review",
        INPUT,
        state_results={"estimate": {"copayCents": 2500}},
        output={
            "decision": "approve",
            "refund": {"amountCents": 5000, "lines": [{"code": "R1", "paid": True}]},
        },
    )
    return run.review_items.get()


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(user, item: ReviewItem) -> str:
    response = login(user).get(reverse("reviewqueue:item", args=[item.pk]))
    assert response.status_code == 200
    return response.content.decode()


def submit(item: ReviewItem, user) -> Submission:
    services.item_claim(item=item, user=user)
    return services.submission_create(item=item, user=user, answer=ANSWER, form_data={})


def test_the_runs_values_read_for_people(reviewer, refund_item):
    html = page(reviewer, refund_item)
    side = html.split('<aside class="item-side">', 1)[1]
    assert "<dd>$1,234.57</dd>" in side  # cents, as the schema says
    assert "<dd>Aetna</dd>" in side and "60054" not in side
    assert "<dd>Yes</dd>" in side
    assert "<dd>Feb 29, 1980</dd>" in side
    # Earlier steps by their titles, the copay as dollars.
    assert "<h4>Estimate</h4>" in side
    assert "<dd>$25.00</dd>" in side


def test_the_output_is_a_labelled_list_never_a_dict(reviewer, refund_item):
    side = page(reviewer, refund_item).split('<aside class="item-side">', 1)[1]
    assert "<pre>" not in side
    assert "{&#x27;" not in side and "{'" not in side
    assert "<dt>Decision</dt><dd>Approve the refund</dd>" in side
    assert "<dt>Refund › Amount</dt><dd>$50.00</dd>" in side
    assert "<dt>Refund › Lines 1 › Paid</dt><dd>Yes</dd>" in side


def test_the_sent_answer_is_a_labelled_list(reviewer, colleague, refund_item):
    submit(refund_item, reviewer)
    html = page(colleague, refund_item)
    sent = html.split('<details class="sent">', 1)[1].split("</details>", 1)[0]
    assert "<pre>" not in sent and "{" not in sent
    assert "<dt>Decision</dt><dd>Approve the refund</dd>" in sent
    assert "<dt>Refund amount</dt><dd>$50.00</dd>" in sent
    assert "<dt>Tell the patient</dt><dd>No</dd>" in sent


def test_the_forms_context_shows_dollars_and_no_paths(reviewer, refund_item):
    services.item_claim(item=refund_item, user=reviewer)
    html = page(reviewer, refund_item)
    context = html.split('class="sf-context"', 1)[1].split("</section>", 1)[0]
    assert "<dt>Open balance</dt><dd>$1,234.57</dd>" in context
    assert "<dt>Estimate › Specialist copay</dt><dd>$25.00</dd>" in context
    assert "$input" not in html and "$states" not in html


def test_steps_are_named_by_their_titles_never_their_ids(reviewer, refund_item):
    WebhookEvent.objects.create(
        svix_id="msg_1",
        event_type="flow.updated",
        flow_run_id=refund_item.run.flow_run_id,
        status="PENDING",
        state_id="refund-review",
        payload={},
    )
    html = page(reviewer, refund_item)
    visible = html.replace(f'action="{reverse("reviewqueue:item", args=[refund_item.pk])}', "")
    assert "Run pending at Review the refund" in html
    assert "refund-review" not in visible
    assert "refund v1" not in html  # the version reads "Refund, version 1"
    assert "Refund, version 1" in html


def test_times_name_their_zone_and_due_reads_from_now(reviewer, refund_item):
    start = timezone.now()
    ReviewItem.objects.filter(pk=refund_item.pk).update(due_at=start + timedelta(hours=3))
    with time_machine.travel(start, tick=False):
        html = page(reviewer, refund_item)
        assert "(due in 3 h)" in html
        assert " UTC</time>" in html
    with time_machine.travel(start + timedelta(hours=3, minutes=20), tick=False):
        html = page(reviewer, refund_item)
        assert 'class="overdue-tag">overdue 20 min</strong>' in html


def _failing(item: ReviewItem, user, *, status: str, attempts: int) -> None:
    submission = submit(item, user)
    Submission.objects.filter(pk=submission.pk).update(
        status=status,
        attempts=attempts,
        last_error="GET /v1/flow-runs/0b5e answered 503",
    )
    ReviewItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.NEEDS_ATTENTION
        if status == SubmissionStatus.FAILED
        else ItemStatus.SENDING
    )


def test_a_retried_delivery_reads_in_plain_words(reviewer, supervisor, refund_item):
    _failing(refund_item, reviewer, status=SubmissionStatus.PENDING, attempts=3)
    html = page(reviewer, refund_item)
    assert "The Flows service is not answering; your answer is saved and will be sent." in html
    assert "answered 503" not in html
    html = page(supervisor, refund_item)
    assert "the answer is saved and will be sent" in html
    assert "Technical detail: attempt 3, GET /v1/flow-runs/0b5e answered 503" in html


def test_a_failed_delivery_reads_in_plain_words(reviewer, supervisor, refund_item):
    _failing(refund_item, reviewer, status=SubmissionStatus.FAILED, attempts=8)
    html = page(reviewer, refund_item)
    assert "Flowdesk could not deliver this answer to the Flows service." in html
    assert "a supervisor can send it again" in html
    assert "answered 503" not in html
    html = page(supervisor, refund_item)
    assert "you can send it again" in html
    assert "Technical detail: GET /v1/flow-runs/0b5e answered 503 (after 8 attempts)" in html


def test_the_runs_errors_name_the_step_and_keep_the_detail_for_supervisors(
    reviewer, supervisor, refund_item
):
    errors = [{"state": "estimate", "status": 502, "error": "ProductUnavailable", "param": None}]
    type(refund_item.run).objects.filter(pk=refund_item.run.pk).update(errors=errors)
    html = page(reviewer, refund_item)
    assert "<strong>Estimate</strong>: This step failed in Flows" in html
    assert "ProductUnavailable" not in html
    assert "Technical detail: status 502 error ProductUnavailable" in page(supervisor, refund_item)
