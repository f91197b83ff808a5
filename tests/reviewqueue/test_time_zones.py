"""Time zones: the site's (TIME_ZONE), a person's own (Preferences, the admin) that beats it,
activated per request by config.middleware.time_zone; and the Preferences page's view matrix."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviewqueue.models import ReviewItem, StaffPreferences
from tests.config.test_settings import start_django

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
QUEUE = reverse("reviewqueue:queue")
PREFERENCES = reverse("reviewqueue:preferences")
# 19:03 UTC: 14:03 in New York, 04:03 the next day in Tokyo.
DUE = datetime(2026, 12, 5, 19, 3, tzinfo=UTC)


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def due_item(pending_run) -> ReviewItem:
    item = pending_run().review_items.get()
    ReviewItem.objects.filter(pk=item.pk).update(due_at=DUE)
    return item


def queue_html(user) -> str:
    with time_machine.travel(datetime(2026, 12, 5, 12, 0, tzinfo=UTC), tick=False):
        return login(user).get(QUEUE).content.decode()


def test_times_show_in_the_sites_zone_and_name_it(reviewer, due_item, settings):
    assert ">Dec 5, 19:03 UTC</time>" in queue_html(reviewer)
    settings.TIME_ZONE = "America/New_York"
    assert ">Dec 5, 14:03 EST</time>" in queue_html(reviewer)


def test_a_persons_zone_beats_the_sites(reviewer, colleague, due_item, settings):
    settings.TIME_ZONE = "America/New_York"
    StaffPreferences.objects.create(user=reviewer, time_zone="Asia/Tokyo")
    assert ">Dec 6, 04:03 JST</time>" in queue_html(reviewer)
    # Nobody else's pages change.
    assert ">Dec 5, 14:03 EST</time>" in queue_html(colleague)


def test_a_blank_or_vanished_zone_falls_back_to_the_sites(reviewer, due_item, settings):
    settings.TIME_ZONE = "America/New_York"
    preferences = StaffPreferences.objects.create(user=reviewer, time_zone="")
    assert ">Dec 5, 14:03 EST</time>" in queue_html(reviewer)
    # A zone the tz database no longer knows is never an error page.
    StaffPreferences.objects.filter(pk=preferences.pk).update(time_zone="Mars/Olympus_Mons")
    assert ">Dec 5, 14:03 EST</time>" in queue_html(reviewer)


def test_the_zone_ends_with_the_request(reviewer, due_item, settings):
    StaffPreferences.objects.create(user=reviewer, time_zone="Asia/Tokyo")
    queue_html(reviewer)
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE


def test_a_site_zone_the_server_does_not_know_refuses_to_start():
    result = start_django(TIME_ZONE="Mars/Olympus_Mons")
    assert result.returncode != 0
    assert "TIME_ZONE='Mars/Olympus_Mons' is not a time zone" in result.stderr
    assert start_django(TIME_ZONE="America/New_York").stdout.strip() == "started"


# --- The Preferences page: anonymous, without htmx, with htmx, wrong method, bad input ---------


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(PREFERENCES)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_header_links_to_preferences(reviewer, clinical_queue):
    assert f'<a href="{PREFERENCES}">Preferences</a>' in login(reviewer).get(QUEUE).content.decode()


def test_the_page_offers_the_zones(reviewer):
    response = login(reviewer).get(PREFERENCES)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<select name="time_zone" aria-describedby="time-zone-now" id="id_time_zone">' in html
    assert '<option value="" selected>The site&#x27;s time zone</option>' in html
    assert '<option value="America/New_York">America/New York</option>' in html
    assert "(the site's time zone, UTC)" in html


def test_saving_without_htmx_redirects_and_applies_on_the_next_page(reviewer, due_item):
    client = login(reviewer)
    response = client.post(PREFERENCES, {"time_zone": "America/New_York"})
    assert response.status_code == 302
    assert response["Location"] == PREFERENCES
    assert StaffPreferences.objects.get(user=reviewer).time_zone == "America/New_York"
    assert ">Dec 5, 14:03 EST</time>" in queue_html(reviewer)
    html = client.get(PREFERENCES).content.decode()
    assert '<option value="America/New_York" selected>' in html
    assert "Your preferences are saved." in html
    # Saving again changes the one row.
    client.post(PREFERENCES, {"time_zone": ""})
    assert StaffPreferences.objects.get(user=reviewer).time_zone == ""


def test_saving_with_htmx_redirects_the_browser(reviewer):
    response = login(reviewer).post(PREFERENCES, {"time_zone": "Europe/Paris"}, headers=HX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == PREFERENCES
    assert StaffPreferences.objects.get(user=reviewer).time_zone == "Europe/Paris"


def test_an_unknown_zone_is_refused_and_nothing_saved(reviewer):
    response = login(reviewer).post(PREFERENCES, {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 422
    assert 'id="time-zone-error"' in response.content.decode()
    assert not StaffPreferences.objects.exists()


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_wrong_method_is_refused(reviewer, method):
    assert getattr(login(reviewer), method)(PREFERENCES).status_code == 405


def test_one_persons_preferences_never_touch_anothers(reviewer, colleague):
    StaffPreferences.objects.create(user=colleague, time_zone="Asia/Tokyo")
    login(reviewer).post(PREFERENCES, {"time_zone": "Europe/Paris"})
    assert StaffPreferences.objects.get(user=colleague).time_zone == "Asia/Tokyo"


# --- The admin ---------------------------------------------------------------------------------


def test_an_admin_sets_a_persons_zone_from_a_list(ada, reviewer):
    url = reverse("admin:reviewqueue_staffpreferences_add")
    html = ada.get(url).content.decode()
    assert '<select name="time_zone"' in html
    response = ada.post(url, {"user": reviewer.pk, "time_zone": "America/Chicago"})
    assert response.status_code == 302
    assert StaffPreferences.objects.get(user=reviewer).time_zone == "America/Chicago"
    changelist = ada.get(reverse("admin:reviewqueue_staffpreferences_changelist"))
    assert "America/Chicago" in changelist.content.decode()
