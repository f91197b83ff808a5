"""The Runs explorer's list (/runs/): who sees which Runs, every filter and the search on
generated Runs, paging newest first, the audit row, and a bounded number of queries."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from flows_integration.models import FlowRun, RunStatus
from reviewqueue import run_selectors
from reviewqueue.models import Queue, ReviewItem
from tests.reviewqueue.conftest import mirrored

RUNS = "/runs/"


def login(client, user):
    client.force_login(user)
    return client


def search(client, text: str):
    """What the filter form does: post the term, land on the list whose URL names it by a
    token only."""
    response = client.post(RUNS, {"q": text}, follow=True)
    assert response.redirect_chain, "a search is posted, then the list is fetched"
    return response


def listed(response) -> list[str]:
    """The Run ids a list page shows, in its order."""
    return [str(run.flow_run_id) for run, _ in response.context["rows"]]


@pytest.fixture
def world(pending_run, prior_auth_version):
    """A clinical Run with its item, a billing Run with its item (another team's queue), a Run
    in triage, a running Run and a finished one without items."""
    clinical = pending_run()
    billing = pending_run()
    billing_queue = Queue.objects.create(name="Billing")
    billing_queue.teams.add(Group.objects.get_or_create(name="Billing team")[0])
    ReviewItem.objects.filter(run=billing).update(queue=billing_queue)
    triage = mirrored(status=RunStatus.PENDING, state_id="somewhere-else")
    running = mirrored(template=prior_auth_version.template, version=prior_auth_version)
    finished = mirrored(status=RunStatus.COMPLETE, output={"approved": True})
    return {
        "clinical": str(clinical.flow_run_id),
        "billing": str(billing.flow_run_id),
        "triage": str(triage.flow_run_id),
        "running": str(running.flow_run_id),
        "finished": str(finished.flow_run_id),
    }


# --- Who sees what -----------------------------------------------------------------------------


def test_a_reviewer_sees_the_runs_of_their_queues_only(client, reviewer, world):
    response = login(client, reviewer).get(RUNS)
    assert response.status_code == 200
    assert listed(response) == [world["clinical"]]


def test_a_reviewer_of_another_team_sees_their_own_teams_runs(client, outsider, world):
    assert listed(login(client, outsider).get(RUNS)) == [world["billing"]]


def test_a_supervisor_sees_every_run_triage_and_running_ones_too(client, supervisor, world):
    assert set(listed(login(client, supervisor).get(RUNS))) == set(world.values())


def test_a_flow_admin_sees_the_runs_without_items(client, flow_admin, world):
    shown = set(listed(login(client, flow_admin).get(RUNS)))
    assert shown == {world["triage"], world["running"], world["finished"]}


def test_a_flow_admin_sees_a_run_in_triage_whose_earlier_item_was_another_teams(
    client, flow_admin, world
):
    """The triage page shows every Run in triage to those who triage; so does the explorer."""
    ReviewItem.objects.filter(run__flow_run_id=world["billing"]).update(
        status="superseded", closed_at=timezone.now()
    )
    shown = set(listed(login(client, flow_admin).get(RUNS, {"triage": "1"})))
    assert shown == {world["triage"], world["billing"]}


def test_a_person_in_no_team_sees_an_empty_list(client, django_user_model, world):
    nobody = django_user_model.objects.create_user("dan")
    response = login(client, nobody).get(RUNS)
    assert response.status_code == 200
    assert listed(response) == []


def test_the_list_needs_a_login_and_takes_get_and_the_posted_filters(client, reviewer):
    assert client.get(RUNS).status_code == 302
    assert client.post(RUNS).status_code == 302
    assert client.post(RUNS)["Location"].startswith("/accounts/login/")
    login(client, reviewer)
    assert client.post(RUNS, {"status": "PENDING"})["Location"] == "/runs/?status=PENDING"
    assert client.put(RUNS).status_code == 405


def test_the_top_bar_links_to_the_runs(client, reviewer):
    assert 'href="/runs/"' in login(client, reviewer).get("/").content.decode()


# --- Filters and search ------------------------------------------------------------------------


def test_the_status_filter(client, supervisor, world):
    response = login(client, supervisor).get(RUNS, {"status": "PENDING"})
    assert set(listed(response)) == {world["clinical"], world["billing"], world["triage"]}
    assert listed(client.get(RUNS, {"status": "COMPLETE"})) == [world["finished"]]


def test_the_template_and_version_filters(client, supervisor, world, prior_auth_version):
    login(client, supervisor)
    with_template = {world["clinical"], world["billing"], world["running"]}
    assert set(listed(client.get(RUNS, {"template": "prior-authorization"}))) == with_template
    assert set(listed(client.get(RUNS, {"version": "1"}))) == with_template
    assert listed(client.get(RUNS, {"template": "prior-authorization", "version": "2"})) == []
    assert listed(client.get(RUNS, {"template": "billing-write-off"})) == []


def test_the_created_date_range(client, supervisor):
    old = mirrored(created_at=datetime(2026, 3, 1, 12, tzinfo=UTC))
    middle = mirrored(created_at=datetime(2026, 3, 10, 12, tzinfo=UTC))
    new = mirrored(created_at=datetime(2026, 3, 20, 12, tzinfo=UTC))
    login(client, supervisor)
    response = client.get(RUNS, {"created_from": "2026-03-05", "created_to": "2026-03-10"})
    assert listed(response) == [str(middle.flow_run_id)]
    assert listed(client.get(RUNS, {"created_from": "2026-03-10"})) == [
        str(new.flow_run_id),
        str(middle.flow_run_id),
    ]
    assert listed(client.get(RUNS, {"created_to": "2026-03-01"})) == [str(old.flow_run_id)]


def test_dates_are_the_persons_own_days(client, supervisor):
    """Late on March 9 in New York is March 10 in UTC: a New Yorker's March 9 includes it."""
    from reviewqueue.models import StaffPreferences

    StaffPreferences.objects.create(user=supervisor, time_zone="America/New_York")
    late = mirrored(created_at=datetime(2026, 3, 10, 2, tzinfo=UTC))
    login(client, supervisor)
    day = {"created_from": "2026-03-09", "created_to": "2026-03-09"}
    assert listed(client.get(RUNS, day)) == [str(late.flow_run_id)]
    day = {"created_from": "2026-03-10", "created_to": "2026-03-10"}
    assert listed(client.get(RUNS, day)) == []


def test_the_changed_date_range(client, supervisor):
    """When Flows says the Run changed; else when Flowdesk last saw it change."""
    flows_says = mirrored(remote_updated_at=datetime(2026, 4, 2, 9, tzinfo=UTC))
    seen = mirrored(synced_at=datetime(2026, 4, 3, 9, tzinfo=UTC))
    mirrored(remote_updated_at=datetime(2026, 4, 20, 9, tzinfo=UTC))
    login(client, supervisor)
    response = client.get(RUNS, {"updated_from": "2026-04-01", "updated_to": "2026-04-05"})
    assert set(listed(response)) == {str(flows_says.flow_run_id), str(seen.flow_run_id)}


def test_the_errors_filter(client, supervisor, world):
    failed = mirrored(status=RunStatus.ERROR)
    with_errors = mirrored(errors=[{"state": "check-network", "error": "Timeout"}])
    response = login(client, supervisor).get(RUNS, {"errors": "1"})
    assert set(listed(response)) == {str(failed.flow_run_id), str(with_errors.flow_run_id)}


def test_the_triage_filter(client, supervisor, world):
    assert listed(login(client, supervisor).get(RUNS, {"triage": "1"})) == [world["triage"]]


def test_search_by_the_whole_run_id_or_its_start(client, supervisor, world):
    login(client, supervisor)
    whole = world["running"]
    assert listed(search(client, whole)) == [whole]
    assert listed(search(client, whole.upper())) == [whole]
    assert listed(search(client, whole[:8])) == [whole]
    assert listed(search(client, whole[:13])) == [whole]  # with its first dash
    assert listed(search(client, whole.replace("-", "")[:20])) == [whole]


def test_search_finds_only_runs_that_start_so(client, supervisor):
    a = mirrored(flow_run_id=uuid.UUID("abcd0000-0000-4000-8000-000000000001"))
    b = mirrored(flow_run_id=uuid.UUID("abcdffff-ffff-4fff-bfff-ffffffffffff"))
    mirrored(flow_run_id=uuid.UUID("abce0000-0000-4000-8000-000000000000"))
    mirrored(flow_run_id=uuid.UUID("abccffff-ffff-4fff-bfff-ffffffffffff"))
    login(client, supervisor)
    assert set(listed(search(client, "abcd"))) == {str(a.flow_run_id), str(b.flow_run_id)}
    assert listed(search(client, "abcd0000-0000-4000-8000-000000000001")) == [str(a.flow_run_id)]


def started_by_api(run: FlowRun, external_id: str, client_name: str = "EHR") -> None:
    """``run`` as the intake API started it for a calling system, under its external id."""
    from intake.models import ApiClient, Source, StartedRun

    client, created = ApiClient.objects.get_or_create(name=client_name)
    if created:
        client.token_issue()
        client.save()
    StartedRun.objects.create(
        source=Source.API,
        client=client,
        external_id=external_id,
        template_id="prior-authorization",
        version=1,
        flow_run=run,
    )


def test_search_by_external_id(client, supervisor, world):
    started_by_api(FlowRun.objects.get(flow_run_id=world["running"]), "EHR-000123")
    other = mirrored()
    started_by_api(other, "EHR-000123", client_name="Scheduler")  # another system, same id
    started_by_api(mirrored(), "EHR-000124")
    login(client, supervisor)
    found = set(listed(search(client, "EHR-000123")))
    assert found == {world["running"], str(other.flow_run_id)}
    assert listed(search(client, "EHR-0001")) == []  # whole, as the system wrote it


def test_an_external_id_that_looks_like_a_run_id_finds_both(client, supervisor):
    by_id = mirrored(flow_run_id=uuid.UUID("beef0000-0000-4000-8000-000000000001"))
    by_external_id = mirrored(flow_run_id=uuid.UUID("0000beef-0000-4000-8000-000000000001"))
    started_by_api(by_external_id, "beef")
    response = search(login(client, supervisor), "beef")
    assert set(listed(response)) == {str(by_id.flow_run_id), str(by_external_id.flow_run_id)}


def test_search_by_external_id_stays_within_what_the_person_may_see(client, reviewer, world):
    started_by_api(FlowRun.objects.get(flow_run_id=world["billing"]), "ACCT-9")
    started_by_api(FlowRun.objects.get(flow_run_id=world["clinical"]), "ACCT-10")
    login(client, reviewer)
    assert listed(search(client, "ACCT-9")) == []
    assert listed(search(client, "ACCT-10")) == [world["clinical"]]


@pytest.mark.parametrize("text", ["abc", "Maria", "zzzz", "abcd'--", "x" * 100, "\x00abcd"])
def test_search_for_anything_else_finds_nothing(client, supervisor, world, text):
    response = search(login(client, supervisor), text)
    assert response.status_code == 200
    assert listed(response) == []


def test_the_searched_external_id_stays_out_of_urls(client, supervisor, world, monkeypatch):
    """An external id may be a patient's record number: posted, kept in the session, named in
    the URL (and the pager's) by a token only."""
    monkeypatch.setattr(run_selectors, "PAGE_SIZE", 1)
    for run_id, system in ((world["running"], "EHR"), (world["finished"], "Scheduler")):
        started_by_api(FlowRun.objects.get(flow_run_id=run_id), "MRN-4471-2209", system)
    login(client, supervisor)
    posted = client.post(RUNS, {"q": "MRN-4471-2209", "errors": "", "status": ""})
    assert posted.status_code == 302
    assert "MRN" not in posted["Location"]
    assert posted["Location"].startswith(f"{RUNS}?search=")
    response = client.get(posted["Location"])
    assert len(listed(response)) == 1
    html = response.content.decode()
    assert 'name="q" value="MRN-4471-2209"' in html
    assert "MRN" not in "".join(re.findall(r'(?:href|action)="([^"]*)"', html))
    token = posted["Location"].split("search=", 1)[1]
    assert f'href="?search={token}&amp;page=2"' in html
    # Another person's session does not know the token: the list says so and searches nothing.
    other = login(Client(), supervisor).get(posted["Location"])
    assert "That search is no longer kept" in other.content.decode()
    assert other.context["filters"].q == ""


def test_search_stays_within_what_the_person_may_see(client, reviewer, world):
    assert listed(search(login(client, reviewer), world["billing"])) == []


def test_filters_combine_and_stay_in_the_url(client, supervisor, world):
    response = login(client, supervisor).get(RUNS, {"status": "PENDING", "triage": "1"})
    assert listed(response) == [world["triage"]]
    html = response.content.decode()
    assert '<option value="PENDING" selected>Waiting for input</option>' in html
    assert 'name="triage" value="1" checked' in html


@pytest.mark.parametrize(
    "query",
    [
        {"page": "²"},
        {"version": "²"},
        {"created_from": "2026-02-30"},
        {"updated_to": "yesterday"},
        {"status": "BOGUS"},
        {"page": "99999999999999999999"},
    ],
)
def test_a_malformed_query_string_falls_back_to_defaults(client, supervisor, world, query):
    response = login(client, supervisor).get(RUNS, query)
    assert response.status_code == 200


# --- Pages, order, values for people -----------------------------------------------------------


def test_newest_first_in_pages(client, supervisor, monkeypatch):
    monkeypatch.setattr(run_selectors, "PAGE_SIZE", 2)
    start = timezone.now() - timedelta(days=1)
    runs = [str(mirrored(created_at=start + timedelta(minutes=i)).flow_run_id) for i in range(5)]
    login(client, supervisor)
    first = client.get(RUNS, {"status": "IN_PROGRESS"})
    assert listed(first) == runs[::-1][:2]
    assert first.context["page"].has_next
    assert 'href="?status=IN_PROGRESS&amp;page=2"' in first.content.decode()
    assert listed(client.get(RUNS, {"status": "IN_PROGRESS", "page": "3"})) == [runs[0]]
    assert not client.get(RUNS, {"status": "IN_PROGRESS", "page": "3"}).context["page"].has_next


def test_rows_show_titles_names_and_times_for_people(client, supervisor, world):
    html = login(client, supervisor).get(RUNS).content.decode()
    assert "Waiting for input" in html
    assert "In progress" in html
    assert "at Clinical review" in html  # the step by its title, never "clinical-review"
    assert "Prior authorization" in html  # the template by its name
    assert " ago" in html
    assert "clinical-review" not in html


# --- Audit and cost ------------------------------------------------------------------------------


def test_each_view_of_the_list_is_audited_with_ids_only(client, supervisor, world):
    search(login(client, supervisor), world["clinical"][:8])
    event = AuditEvent.objects.get(action="runs.viewed")
    assert event.actor == supervisor
    assert event.detail == {"runs": [world["clinical"]]}
    # A request that says it is "background" is audited all the same.
    client.get(RUNS, headers={"X-Flowdesk-Background": "1"})
    assert AuditEvent.objects.filter(action="runs.viewed").count() == 2


# Session, user, the time zone, two for permissions, the flow admin check, the page, the steps'
# titles, the audit row (three statements: the chain's head locked, the row, the head moved), the
# templates filter, the health banner, the top bar's unread notifications: 14 at most, with
# room for a session write.
QUERY_BOUND = 15


def _queries(client, django_assert_max_num_queries) -> list[str]:
    with django_assert_max_num_queries(QUERY_BOUND) as captured:
        response = client.get(RUNS)
    assert response.status_code == 200
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.parametrize("persona", ["reviewer", "supervisor", "flow_admin"])
def test_the_list_costs_a_bounded_number_of_queries(
    client, request, persona, pending_run, django_assert_max_num_queries
):
    user = request.getfixturevalue(persona)
    login(client, user).get(RUNS)  # the session's first request records activity
    pending_run()
    mirrored()
    few = _queries(client, django_assert_max_num_queries)
    for _ in range(30):
        pending_run()
        mirrored(status=RunStatus.PENDING, state_id="elsewhere")
    lots = _queries(client, django_assert_max_num_queries)
    assert len(lots) == len(few), "\n".join(lots)
    assert not [sql for sql in lots if "COUNT(" in sql.upper()]
