"""Separation of duties (issue 11): a route can keep whoever answered another step of a Run from
answering this one (get next skips it, claim, reassign and submit refuse it, the item page says
why), and a signature field carries the signed-in person's name whatever is posted for it.

The story: Alice answers the clinical review of a prior authorization; its medical director
sign-off lands in the same queue, and she must not be the one who signs it off.
"""

import re
from io import StringIO

import pytest
import yaml
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from flows_integration.models import FlowRun
from flows_integration.signals import run_status_changed
from reviewqueue import demo, selectors, services
from reviewqueue.models import (
    Draft,
    ItemStatus,
    Queue,
    ReviewItem,
    Route,
    Submission,
    SubmissionStatus,
)
from reviewqueue.schema_forms import SIGNATURE, FormSpec, build_form
from tests.reviewqueue.conftest import (
    CLINICAL_ANSWER,
    DEMO,
    PRIOR_AUTH,
    clinical_form_data,
    post,
    posted,
)
from tests.reviewqueue.test_views_item import enqueued  # noqa: F401

pytestmark = pytest.mark.django_db

SIGNOFF = "supervisor-signoff"
HX = {"HX-Request": "true"}
REASON = (
    "You answered an earlier step of this Run (Clinical review); another person must take this "
    "step."
)


@pytest.fixture
def signoff_route(prior_auth_version, clinical_queue) -> Route:
    """The sign-off comes to the same queue as the review (as it did when Alice signed off her
    own denial), more urgent, and wants another person than the review's."""
    return Route.objects.create(
        template=prior_auth_version.template,
        state_id=SIGNOFF,
        queue=clinical_queue,
        priority=90,
        not_by_earlier_answerers=True,
    )


def answer(item: ReviewItem, user, *, status: str = SubmissionStatus.DELIVERED) -> Submission:
    """``user`` claims and answers ``item``; the answer is then settled with ``status`` and the
    Run resumes (as delivery and the next webhook would)."""
    services.item_claim(item=item, user=user)
    submission = services.submission_create(
        item=item, user=user, answer=CLINICAL_ANSWER, form_data=posted(clinical_form_data())
    )
    Submission.objects.filter(pk=submission.pk).update(status=status)
    ReviewItem.objects.filter(pk=item.pk).update(
        status=ItemStatus.RESUMED, claimed_by=None, closed_at=timezone.now()
    )
    return submission


def pause_at(run: FlowRun, state_id: str) -> ReviewItem:
    """The Run paused again, at ``state_id``: its item there opens."""
    with transaction.atomic():
        FlowRun.objects.filter(pk=run.pk).update(status="PENDING", state_id=state_id)
        run.refresh_from_db()
        run_status_changed.send(
            sender=FlowRun,
            run=run,
            old_status="IN_PROGRESS",
            new_status="PENDING",
            state_id=state_id,
        )
    return run.review_items.get(state_id=state_id, status=ItemStatus.OPEN)


@pytest.fixture
def signoff(signoff_route, item, reviewer) -> ReviewItem:
    """Alice answered the clinical review; the Run now waits for its sign-off."""
    answer(item, reviewer)
    return pause_at(item.run, SIGNOFF)


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(name: str, item: ReviewItem) -> str:
    return reverse(f"reviewqueue:{name}", args=[item.pk])


# --- Get next ----------------------------------------------------------------------------------


def test_get_next_skips_the_sign_off_of_a_run_whose_review_i_answered(
    signoff, pending_run, reviewer, colleague
):
    other_review = pending_run().review_items.get()
    assert signoff.priority > other_review.priority  # the sign-off would come first

    mine = services.item_get_next(user=reviewer)

    assert mine is not None and mine.pk == other_review.pk
    signoff.refresh_from_db()
    assert signoff.status == ItemStatus.OPEN
    theirs = services.item_get_next(user=colleague)
    assert theirs is not None and theirs.pk == signoff.pk


def test_get_next_gives_nothing_rather_than_an_item_it_would_refuse(signoff, reviewer):
    assert services.item_get_next(user=reviewer) is None
    signoff.refresh_from_db()
    assert (signoff.status, signoff.claimed_by) == (ItemStatus.OPEN, None)


def test_without_the_route_asking_the_same_person_may_take_the_next_step(
    signoff_route, item, reviewer
):
    signoff_route.not_by_earlier_answerers = False
    signoff_route.save()
    answer(item, reviewer)
    signoff = pause_at(item.run, SIGNOFF)

    taken = services.item_get_next(user=reviewer)

    assert taken is not None and taken.pk == signoff.pk


def test_the_states_own_route_decides_over_the_templates(
    signoff_route, prior_auth_version, item, reviewer
):
    # Every step of the template wants another person, but the sign-off's own route says not.
    Route.objects.filter(template=prior_auth_version.template, state_id="").update(
        not_by_earlier_answerers=True
    )
    Route.objects.filter(pk=signoff_route.pk).update(not_by_earlier_answerers=False)
    answer(item, reviewer)
    signoff = pause_at(item.run, SIGNOFF)
    assert services.item_get_next(user=reviewer) == signoff

    # Without a route of its own, the template's route decides.
    services.item_release(item=signoff, user=reviewer)
    signoff_route.delete()
    assert services.item_get_next(user=reviewer) is None


@pytest.mark.parametrize("status", [SubmissionStatus.REJECTED, SubmissionStatus.REFUSED])
def test_an_answer_that_never_reached_the_run_does_not_count(signoff_route, item, reviewer, status):
    answer(item, reviewer, status=status)
    signoff = pause_at(item.run, SIGNOFF)

    assert services.item_get_next(user=reviewer) == signoff


# --- Claim -------------------------------------------------------------------------------------


def test_claim_refuses_and_says_why(signoff, reviewer, colleague):
    with pytest.raises(services.SeparationOfDuties, match=re.escape(REASON)):
        services.item_claim(item=signoff, user=reviewer)
    signoff.refresh_from_db()
    assert (signoff.status, signoff.claimed_by) == (ItemStatus.OPEN, None)

    services.item_claim(item=signoff, user=colleague)
    assert signoff.claimed_by == colleague


def test_claim_view_answers_409_with_the_reason(signoff, reviewer):
    response = login(reviewer).post(url("item_claim", signoff), headers=HX)

    assert response.status_code == 409
    html = response.content.decode()
    assert "<html" not in html
    assert REASON.replace("'", "&#x27;") in html
    assert ReviewItem.objects.get(pk=signoff.pk).status == ItemStatus.OPEN


# --- Reassign ----------------------------------------------------------------------------------


def test_a_supervisor_cannot_reassign_the_sign_off_to_the_reviewer(
    signoff, reviewer, colleague, supervisor
):
    with pytest.raises(services.SeparationOfDuties, match="alice answered an earlier step"):
        services.item_reassign(item=signoff, to=reviewer, by=supervisor)
    signoff.refresh_from_db()
    assert (signoff.status, signoff.claimed_by) == (ItemStatus.OPEN, None)

    services.item_reassign(item=signoff, to=colleague, by=supervisor)
    assert signoff.claimed_by == colleague


def test_the_reassign_list_leaves_out_whoever_answered_another_step(
    signoff, reviewer, colleague, supervisor
):
    html = login(supervisor).get(url("item", signoff)).content.decode()
    options = re.findall(r'<option value="(\d+)">', html)

    assert str(colleague.pk) in options
    assert str(reviewer.pk) not in options


# --- Submit ------------------------------------------------------------------------------------


def signoff_data(**fields: str) -> dict[str, list[str]]:
    values = {"signoff": "upheld", "signedBy": "Dr. Forged", "signedOn": "2027-01-10"}
    return posted({name: [value] for name, value in {**values, **fields}.items()})


def test_submit_refuses_when_the_route_asked_for_another_person_after_the_claim(
    signoff_route,
    item,
    reviewer,
    enqueued,  # noqa: F811
):
    Route.objects.filter(pk=signoff_route.pk).update(not_by_earlier_answerers=False)
    answer(item, reviewer)
    signoff = pause_at(item.run, SIGNOFF)
    services.item_claim(item=signoff, user=reviewer)
    # An admin asks for separation while Alice holds the sign-off.
    Route.objects.filter(pk=signoff_route.pk).update(not_by_earlier_answerers=True)

    response = login(reviewer).post(url("item_submit", signoff), signoff_data(), headers=HX)

    assert response.status_code == 409
    assert REASON.replace("'", "&#x27;") in response.content.decode()
    assert not Submission.objects.filter(item=signoff).exists()
    assert ReviewItem.objects.get(pk=signoff.pk).status == ItemStatus.CLAIMED
    assert enqueued == []
    # Input is never lost: it stays as her draft.
    assert Draft.objects.filter(item=signoff, user=reviewer).exists()


def test_submit_refuses_an_answer_to_another_step_made_in_between(
    signoff_route, pending_run, reviewer
):
    run = pending_run()
    review = run.review_items.get()
    ReviewItem.objects.filter(pk=review.pk).update(status=ItemStatus.RESUMED)
    signoff = pause_at(run, SIGNOFF)
    services.item_claim(item=signoff, user=reviewer)
    # However it got there (a script, a restore), an answer of hers to the review now exists.
    Submission.objects.create(item=review, submitted_by=reviewer, input=CLINICAL_ANSWER)

    with pytest.raises(services.SeparationOfDuties, match=re.escape(REASON)):
        services.submission_create(
            item=signoff,
            user=reviewer,
            answer={"signoff": "upheld", "signedBy": "Alice", "signedOn": "2027-01-10"},
            form_data=signoff_data(),
        )
    assert not Submission.objects.filter(item=signoff).exists()


# --- The item page -----------------------------------------------------------------------------


def test_the_item_page_says_why_i_cannot_take_it_and_offers_no_claim(signoff, reviewer):
    html = login(reviewer).get(url("item", signoff)).content.decode()

    assert REASON.replace("'", "&#x27;") in html
    assert 'id="item-separation"' in html
    assert url("item_claim", signoff) not in html
    assert "Claim this item to work on it." not in html


def test_a_colleague_sees_no_reason_and_can_claim(signoff, colleague):
    html = login(colleague).get(url("item", signoff)).content.decode()

    assert "answered an earlier step" not in html
    assert url("item_claim", signoff) in html


def test_the_reason_names_every_step_i_answered_by_its_title(signoff, reviewer):
    assert selectors.separation_reason(signoff, reviewer) == REASON
    assert selectors.separation_reason(signoff, reviewer, you=False).startswith(
        "alice answered an earlier step of this Run (Clinical review);"
    )


# --- The signature field -----------------------------------------------------------------------


@pytest.fixture
def signoff_spec() -> FormSpec:
    spec = FormSpec.for_state(yaml.safe_load(PRIOR_AUTH.read_text()), SIGNOFF)
    assert spec is not None
    return spec


def test_a_posted_signature_is_replaced_by_the_signers_name(signoff_spec):
    data = post({"~form": "1", "signoff": "upheld", "signedBy": "Dr. Forged"})
    data["signedOn"] = "2027-01-10"

    form, _ = build_form(signoff_spec, data, signer="Maria Chen")

    assert form.is_valid(), form.errors
    assert form.answer is not None
    assert form.answer["signedBy"] == "Maria Chen"
    # What a draft keeps is the form's data: the forged name is not there either.
    assert form.data.getlist("signedBy") == ["Maria Chen"]


def test_a_signature_left_out_of_the_post_is_still_signed(signoff_spec):
    data = post({"~form": "1", "signoff": "upheld", "signedOn": "2027-01-10"})

    form, _ = build_form(signoff_spec, data, signer="Maria Chen")

    assert form.is_valid(), form.errors
    assert form.answer is not None and form.answer["signedBy"] == "Maria Chen"


def test_a_default_or_prefill_never_signs_in_someone_elses_name():
    spec = FormSpec(
        schema={
            "type": "object",
            "properties": {
                "by": {"type": "string", "default": "Someone Else", SIGNATURE: True},
            },
        },
        ui={"prefill": {"by": "Prefilled Person"}},
    )
    form, _ = build_form(spec, None, context={"input": {}, "states": {}}, signer="Bob")

    assert form["by"].value() == "Bob"


def test_the_holder_sees_the_signature_read_only_with_their_name(
    signoff_route, item, reviewer, colleague
):
    colleague.first_name, colleague.last_name = "Bob", "Builder"
    colleague.save()
    answer(item, reviewer)
    signoff = pause_at(item.run, SIGNOFF)
    services.item_claim(item=signoff, user=colleague)

    html = login(colleague).get(url("item", signoff)).content.decode()

    field = re.search(r"<input[^>]*name=\"signedBy\"[^>]*>", html)
    assert field is not None
    assert 'value="Bob Builder"' in field[0]
    assert "readonly" in field[0]


def test_a_login_without_a_full_name_signs_with_the_login(signoff, colleague):
    services.item_claim(item=signoff, user=colleague)

    html = login(colleague).get(url("item", signoff)).content.decode()

    field = re.search(r"<input[^>]*name=\"signedBy\"[^>]*>", html)
    assert field is not None and 'value="bob"' in field[0]


def test_submitting_a_forged_signature_sends_and_keeps_the_signers_name(
    signoff,
    colleague,
    enqueued,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    services.item_claim(item=signoff, user=colleague)

    with django_capture_on_commit_callbacks(execute=True):
        response = login(colleague).post(
            url("item_submit", signoff), signoff_data(signedBy="Dr. Forged"), headers=HX
        )

    assert response.status_code == 200, response.content.decode()
    submission = Submission.objects.get(item=signoff)
    assert submission.input["signedBy"] == "bob"
    assert enqueued == [submission.pk]
    assert "Dr. Forged" not in str(Draft.objects.get(item=signoff, user=colleague).data)


def test_an_autosave_keeps_the_signers_name_not_the_posted_one(signoff, colleague):
    services.item_claim(item=signoff, user=colleague)

    response = login(colleague).post(
        url("item_draft", signoff), signoff_data(signedBy="Dr. Forged"), headers=HX
    )

    assert response.status_code == 200
    data = Draft.objects.get(item=signoff, user=colleague).data
    assert data["signedBy"] == ["bob"]
    assert data["signoff"] == ["upheld"]  # everything else as typed


def test_a_form_re_render_keeps_the_signers_name_not_the_posted_one(signoff, colleague):
    services.item_claim(item=signoff, user=colleague)

    response = login(colleague).post(
        url("item_form", signoff), signoff_data(signedBy="Dr. Forged"), headers=HX
    )

    html = response.content.decode()
    assert "Dr. Forged" not in html
    assert "Dr. Forged" not in str(Draft.objects.get(item=signoff, user=colleague).data)


# --- The demo ----------------------------------------------------------------------------------


def test_the_demo_has_a_sign_off_team_with_its_own_queue_and_login(settings, role_groups):
    settings.FLOWDESK_DEMO = True
    settings.FLOWS_ENGINE_ENABLED = False

    call_command("load_demo", stdout=StringIO())

    from django.contrib.auth import get_user_model

    maria = get_user_model().objects.get(username="maria")
    assert maria.check_password(demo.DEMO_PASSWORD)
    assert maria.email == "maria@flowdesk.example"
    assert set(maria.groups.values_list("name", flat=True)) == {"Reviewer", "Sign-off team"}
    team = Group.objects.get(name="Sign-off team")
    assert set(team.user_set.values_list("username", flat=True)) == {"maria"}
    queue = Queue.objects.get(name="Sign-off")
    assert list(queue.teams.all()) == [team]
    routes = {(r.template.template_id, r.state_id): r for r in queue.routes.all()}
    assert set(routes) == {
        ("prior-authorization", "supervisor-signoff"),
        ("billing-write-off", "manager-approval"),
    }
    assert all(route.not_by_earlier_answerers for route in routes.values())
    # The steps before them go elsewhere, and maria is in none of their teams.
    for template_id in ("prior-authorization", "billing-write-off"):
        general = Route.objects.get(template__template_id=template_id, state_id="")
        assert general.queue != queue
        assert not general.queue.teams.filter(user=maria).exists()


@pytest.mark.parametrize(
    ("template_id", "state_id", "field"),
    [
        ("prior-authorization", "supervisor-signoff", "signedBy"),
        ("billing-write-off", "manager-approval", "decidedBy"),
    ],
)
def test_the_demo_sign_offs_are_signed_by_the_signed_in_person(template_id, state_id, field):
    document = yaml.safe_load((DEMO / template_id / "v1.yaml").read_text())
    schema = document["states"][state_id]["input"]["properties"][field]
    assert schema[SIGNATURE] is True


def test_the_route_admin_shows_the_separation_setting(admin_client, signoff_route):
    html = admin_client.get(
        reverse("admin:reviewqueue_route_change", args=[signoff_route.pk])
    ).content.decode()
    assert 'name="not_by_earlier_answerers"' in html
