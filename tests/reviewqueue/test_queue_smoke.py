"""The first end-to-end check of the item page: claim, submit as a browser would, see SENDING."""

import pytest

from reviewqueue.models import ItemStatus, Submission
from tests.reviewqueue.conftest import CLINICAL_ANSWER, clinical_form_data, posted

pytestmark = pytest.mark.django_db


def test_a_reviewer_submits_the_clinical_review_form(
    client, claimed_item, reviewer, django_capture_on_commit_callbacks
):
    client.force_login(reviewer)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/items/{claimed_item.pk}/submit/", posted(clinical_form_data()))
    assert response.status_code == 302, response.content.decode()[:3000]
    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.SENDING
    assert Submission.objects.get().input == CLINICAL_ANSWER
    assert len(callbacks) == 1
