"""Data migrations of the review queue, run on rows made by today's models."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from audit import services as audit_services
from reviewqueue.models import Submission, SubmissionStatus

pytestmark = pytest.mark.django_db

CLAIMS = importlib.import_module("reviewqueue.migrations.0015_submission_claimed_at")


def _claim(item, user, at):
    event = audit_services.audit_event(action="item.claimed", actor=user, item_id=item.pk)
    event.at = at
    return event


def test_answers_given_before_the_release_keep_their_submitters_latest_claim_before_them(
    claimed_item, reviewer, colleague
):
    now = timezone.now()
    answer = Submission.objects.create(
        item=claimed_item,
        submitted_by=reviewer,
        input={},
        status=SubmissionStatus.DELIVERED,
        created_at=now - timedelta(minutes=10),
    )
    reassigned = Submission.objects.create(
        item=claimed_item, submitted_by=colleague, input={}, status=SubmissionStatus.REJECTED
    )
    audit_services.append(
        [
            _claim(claimed_item, reviewer, now - timedelta(minutes=50)),
            _claim(claimed_item, reviewer, now - timedelta(minutes=30)),  # the latest before it
            _claim(claimed_item, reviewer, now - timedelta(minutes=5)),  # after the answer
        ]
    )
    Submission.objects.update(claimed_at=None)  # as the rows were before the release

    CLAIMS.claims_from_the_audit_trail(apps, None)

    answer.refresh_from_db()
    reassigned.refresh_from_db()
    assert answer.claimed_at == now - timedelta(minutes=30)
    assert reassigned.claimed_at is None  # bob never claimed it: no handle time
