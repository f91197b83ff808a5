"""reviewqueue:saved_view_create and saved_view_delete: a supervisor saves the dashboard's
filters under a name (ids and periods only), lists them, and deletes one; names are unique per
person with an error on the field; others' views are a 404; reviewers cannot save."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from reviewqueue.models import SavedView

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("reviewqueue:dashboard")
SAVE = reverse("reviewqueue:saved_view_create")
HX = {"HX-Request": "true"}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def filters(clinical_queue, prior_auth_version):
    team = Group.objects.get(name="Clinical team")
    return {
        "team": str(team.pk),
        "queue": str(clinical_queue.pk),
        "template": "prior-authorization",
        "period": "14d",
    }


def test_saving_keeps_the_filters_and_goes_to_the_view(supervisor, filters):
    client = login(supervisor)
    response = client.post(SAVE, {"name": "Morning check", **filters})
    view = SavedView.objects.get(user=supervisor)
    assert view.name == "Morning check"
    assert view.query == (
        f"team={filters['team']}&queue={filters['queue']}&template=prior-authorization&period=14d"
    )
    assert response.status_code == 302 and response.url == f"{DASHBOARD}?{view.query}"
    page = client.get(DASHBOARD).content.decode()
    assert f'href="{DASHBOARD}?{view.query.replace("&", "&amp;")}">Morning check</a>' in page


def test_a_name_taken_is_an_error_on_the_field_and_nothing_is_written(supervisor, filters):
    client = login(supervisor)
    client.post(SAVE, {"name": "Mine", **filters})
    again = client.post(SAVE, {"name": "Mine", "period": "today"})
    assert again.status_code == 422
    assert again.context["view_form"].errors["name"][0].startswith("You already have a view")
    assert 'aria-invalid="true"' in again.content.decode()
    assert SavedView.objects.get(user=supervisor).query.endswith("period=14d")
    # With htmx: the saved views' fragment, with the error.
    fragment = client.post(SAVE, {"name": "Mine", "period": "7d"}, headers=HX)
    assert fragment.status_code == 422
    html = fragment.content.decode()
    assert "<html" not in html and 'id="saved-views"' in html and "already have a view" in html


def test_filters_are_checked_before_saving(supervisor, filters):
    client = login(supervisor)
    for wrong in (
        {"queue": "999999"},
        {"team": "abc"},
        {"template": "Maria Lopez"},
        {"period": "forever"},
    ):
        response = client.post(SAVE, {"name": "Odd", **filters, **wrong})
        assert response.status_code == 422, wrong
    assert not SavedView.objects.exists()
    # A missing name too.
    assert client.post(SAVE, {"name": " ", **filters}).status_code == 422


def test_the_same_name_for_two_people_and_deleting_only_ones_own(
    supervisor, django_user_model, filters
):
    other = django_user_model.objects.create_user("sue")
    other.groups.add(Group.objects.get(name="Supervisor"))
    login(supervisor).post(SAVE, {"name": "Mine", **filters})
    login(other).post(SAVE, {"name": "Mine", "period": "today"})
    mine = SavedView.objects.get(user=supervisor)
    theirs = SavedView.objects.get(user=other)
    client = login(supervisor)
    assert "period=today" not in client.get(DASHBOARD).content.decode()
    delete = reverse("reviewqueue:saved_view_delete", args=[theirs.pk])
    assert client.post(delete).status_code == 404
    assert client.get(reverse("reviewqueue:saved_view_delete", args=[mine.pk])).status_code == 405
    response = client.post(reverse("reviewqueue:saved_view_delete", args=[mine.pk]), headers=HX)
    assert response.status_code == 200 and "<html" not in response.content.decode()
    assert list(SavedView.objects.all()) == [theirs]


def test_htmx_save_answers_with_the_list(supervisor, filters):
    response = login(supervisor).post(SAVE, {"name": "Week", **filters}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert ">Week</a>" in html and "Saved the view" in html


def test_only_supervisors_save(reviewer, filters, client):
    assert login(reviewer).post(SAVE, {"name": "x", **filters}).status_code == 404
    assert client.post(SAVE, {"name": "x", **filters}).status_code == 302  # sign in first
    assert login(reviewer).get(SAVE).status_code == 405
    assert not SavedView.objects.exists()
