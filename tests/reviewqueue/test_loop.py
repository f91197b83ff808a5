"""The whole loop over real HTTP with a real worker: a Run pauses, its item opens, a reviewer
claims and submits, Update Run reaches the engine, and the item shows the Run resumed."""

import pytest

from flows_integration import services as integration
from flows_integration.models import FlowRun
from reviewqueue import services
from reviewqueue.models import ItemStatus, ReviewItem, SubmissionStatus
from tests.reviewqueue.conftest import CLINICAL_INPUT, clinical_form_data, posted
from tests.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_paused_run_becomes_an_item_and_resumes_once_submitted(
    flows_api,
    receiver_registered,
    celery_worker,
    clinical_queue,
    reviewer,
    client,  # noqa: F811
):
    integration.templates_import()
    from reviewqueue.models import Route

    Route.objects.create(
        template=integration.FlowTemplate.objects.get(template_id="prior-authorization"),
        queue=clinical_queue,
    )
    run = integration.run_create(
        template_id="prior-authorization", input_data=CLINICAL_INPUT, version=1
    )
    item = eventually(
        lambda: ReviewItem.objects.filter(run__flow_run_id=run.flow_run_id).first(),
        what="the item to open",
    )
    assert item.state_id == "clinical-review"
    assert item.queue == clinical_queue
    assert item.patient_name == "Maria Lopez"

    services.item_claim(item=item, user=reviewer)
    client.force_login(reviewer)
    response = client.post(f"/items/{item.pk}/submit/", posted(clinical_form_data()))
    assert response.status_code == 302

    item = eventually(
        lambda: ReviewItem.objects.filter(pk=item.pk, status=ItemStatus.RESUMED).first(),
        what="the item to show the Run resumed",
    )
    assert item.submissions.get().status == SubmissionStatus.DELIVERED
    assert not item.drafts.exists()
    mirror = FlowRun.objects.get(flow_run_id=run.flow_run_id)
    assert mirror.status != "PENDING" or mirror.state_id != "clinical-review"
