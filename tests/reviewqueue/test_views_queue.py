"""reviewqueue:queue and reviewqueue:get_next: the view matrix (STYLE.md rule 11) and what the
queue page promises: filters, search, sort, pages without counting, bounded queries, the "new
items" indicator, audit of views but not of background polling, and the Flows health banner."""

import copy
import re
from datetime import timedelta
from html import unescape

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from flows_integration import services as integration
from flows_integration.models import ApiHealth, FlowRun
from reviewqueue import selectors, services
from reviewqueue.models import ItemStatus, Queue, ReviewItem, Route
from tests.documents import SIGN_OFF
from tests.reviewqueue.conftest import CLINICAL_INPUT, pause_run

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
BACKGROUND = {"HX-Request": "true", "X-Flowdesk-Background": "1"}
QUEUE = reverse("reviewqueue:queue")
NEXT = reverse("reviewqueue:get_next")


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def item_url(item: ReviewItem) -> str:
    return reverse("reviewqueue:item", args=[item.pk])


def search(client: Client, text: str, **filters: str):
    """What the filter form does: post the term and the filters, land on the queue whose URL
    names the term by a token only."""
    response = client.post(QUEUE, {"q": text, **filters}, follow=True)
    assert response.redirect_chain, "a search is posted, then the queue is fetched"
    return response


def shown(response) -> list[int]:
    """The pks of the rows on the page, in order."""
    return [item.pk for item in response.context["page"].items]


def patient(first: str, last: str) -> dict:
    data = copy.deepcopy(CLINICAL_INPUT)
    data["patient"].update(firstName=first, lastName=last)
    return data


@pytest.fixture
def open_item(pending_run) -> ReviewItem:
    return pending_run().review_items.get()


@pytest.fixture
def many(pending_run):
    """A factory: ``n`` open items of paused Runs in the clinical queue."""

    def make(n: int, **input_fields) -> list[ReviewItem]:
        return [pending_run(**input_fields).review_items.get() for _ in range(n)]

    return make


@pytest.fixture
def eligibility_queue(prior_auth_version):
    """A second queue of the Clinical team, fed by prior-authorization's coverage-problem step."""
    queue = Queue.objects.create(name="Eligibility")
    queue.teams.add(Group.objects.get(name="Clinical team"))
    Route.objects.create(
        template=prior_auth_version.template, state_id="coverage-problem", queue=queue
    )
    return queue


@pytest.fixture
def billing_queue(db):
    queue = Queue.objects.create(name="Billing")
    queue.teams.add(Group.objects.get_or_create(name="Billing team")[0])
    return queue


@pytest.fixture
def sign_off_run(clinical_queue):
    """A factory: a Run of a second template (sign-off) paused in the clinical queue."""
    version = integration.version_store(template_id="sign-off", number=1, source=SIGN_OFF)
    Route.objects.create(template=version.template, queue=clinical_queue)

    def make() -> FlowRun:
        return pause_run(version, "sign-off", {"patient": {"name": "Sign Offson"}})

    return make


# --- The matrix: anonymous, without htmx, with htmx, wrong method, outsider -------------------


@pytest.mark.parametrize(("url", "method"), [(QUEUE, "get"), (NEXT, "post")])
def test_anonymous_is_sent_to_sign_in(client, url, method):
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_queue_without_htmx_is_a_whole_page(reviewer, open_item):
    response = login(reviewer).get(QUEUE)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert 'id="queue-rows"' in html
    assert 'id="queue-filters"' in html
    assert item_url(open_item) in html


def test_queue_with_htmx_is_the_rows_fragment(reviewer, open_item):
    response = login(reviewer).get(QUEUE, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<div id="queue-rows"')
    assert 'id="queue-filters"' not in html
    assert item_url(open_item) in html


def test_the_polled_fragment_keeps_the_filters(reviewer, open_item):
    client = login(reviewer)
    page = client.post(QUEUE, {"status": "open", "q": "lopez", "sort": "due"})["Location"]
    html = client.get(page, headers=HX).content.decode()
    poll = html.split('hx-get="', 1)[1].split('"', 1)[0]
    assert "status=open" in poll
    assert "search=" in poll  # the term by its token: see test_search_terms_stay_out_of_urls
    assert "lopez" not in poll
    assert "sort=due" in poll
    assert "since=" in poll


@pytest.mark.parametrize(
    ("url", "method"), [(QUEUE, "put"), (QUEUE, "delete"), (NEXT, "get"), (NEXT, "delete")]
)
def test_wrong_method_is_refused(reviewer, url, method):
    assert getattr(login(reviewer), method)(url).status_code == 405


def test_the_queue_shows_an_outsider_nothing_of_other_teams(outsider, open_item):
    response = login(outsider).get(QUEUE)
    assert response.status_code == 200
    assert shown(response) == []
    assert item_url(open_item) not in response.content.decode()


def test_a_queue_filter_cannot_widen_what_i_see(outsider, open_item, clinical_queue):
    response = login(outsider).get(QUEUE, {"queue": clinical_queue.pk})
    assert shown(response) == []


def test_a_supervisor_sees_every_queue(supervisor, open_item, billing_queue):
    response = login(supervisor).get(QUEUE)
    assert shown(response) == [open_item.pk]
    assert "Billing" in response.content.decode()


def test_get_next_without_htmx_claims_and_redirects_to_the_item(reviewer, open_item):
    response = login(reviewer).post(NEXT)
    assert response.status_code == 302
    assert response["Location"] == item_url(open_item)
    open_item.refresh_from_db()
    assert open_item.status == ItemStatus.CLAIMED
    assert open_item.claimed_by == reviewer
    audit = AuditEvent.objects.get(action="item.claimed")
    assert audit.actor == reviewer
    assert audit.ip == "127.0.0.1"


def test_get_next_with_htmx_redirects_the_browser(reviewer, open_item):
    response = login(reviewer).post(NEXT, headers=HX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == item_url(open_item)
    assert "<html" not in response.content.decode()


def test_get_next_takes_the_most_urgent_item(reviewer, many):
    low, high, middle = many(3)
    ReviewItem.objects.filter(pk=high.pk).update(priority=90)
    ReviewItem.objects.filter(pk=middle.pk).update(priority=70)
    assert login(reviewer).post(NEXT)["Location"] == item_url(high)


def test_get_next_skips_items_claimed_by_others(reviewer, colleague, many):
    first, second = many(2)
    services.item_claim(item=first, user=colleague)
    assert login(reviewer).post(NEXT)["Location"] == item_url(second)


def test_get_next_with_nothing_left_goes_back_to_the_queue(reviewer, clinical_queue):
    client = login(reviewer)
    response = client.post(NEXT)
    assert response.status_code == 302
    assert response["Location"] == QUEUE
    assert "Nothing left to take" in client.get(QUEUE).content.decode()


def test_get_next_never_hands_an_outsider_another_teams_item(outsider, open_item):
    response = login(outsider).post(NEXT)
    assert response["Location"] == QUEUE
    open_item.refresh_from_db()
    assert open_item.status == ItemStatus.OPEN
    assert open_item.claimed_by is None


# --- Filters, search, sort ---------------------------------------------------------------------


def test_the_default_shows_open_and_claimed_items_most_urgent_first(reviewer, colleague, many):
    open_low, open_high, claimed, attention, resumed = many(5)
    ReviewItem.objects.filter(pk=open_high.pk).update(priority=80)
    services.item_claim(item=claimed, user=colleague)
    ReviewItem.objects.filter(pk=attention.pk).update(status=ItemStatus.NEEDS_ATTENTION)
    ReviewItem.objects.filter(pk=resumed.pk).update(status=ItemStatus.RESUMED)
    response = login(reviewer).get(QUEUE)
    assert shown(response) == [open_high.pk, open_low.pk, claimed.pk]
    assert response.context["filters"].status == "workable"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("open", ["open"]),
        ("claimed", ["claimed"]),
        ("sending", ["sending", "delivered"]),
        ("needs_attention", ["needs_attention"]),
        ("closed", ["resumed", "superseded"]),
        ("active", ["open", "claimed", "sending", "delivered", "needs_attention"]),
        ("nonsense", ["open", "claimed"]),
    ],
)
def test_the_status_filter(reviewer, many, status, expected):
    items = many(7)
    statuses = [s.value for s in ItemStatus]
    # One item per status; the Runs differ, so "one active item per Run" holds.
    for item, item_status in zip(items, statuses, strict=True):
        ReviewItem.objects.filter(pk=item.pk).update(status=item_status)
    response = login(reviewer).get(QUEUE, {"status": status})
    got = ReviewItem.objects.filter(pk__in=shown(response)).values_list("status", flat=True)
    assert sorted(got) == sorted(expected)


def test_a_supervisors_default_view_includes_items_needing_attention(supervisor, reviewer, many):
    open_, attention, sending = many(3)
    ReviewItem.objects.filter(pk=attention.pk).update(status=ItemStatus.NEEDS_ATTENTION)
    ReviewItem.objects.filter(pk=sending.pk).update(status=ItemStatus.SENDING)
    response = login(supervisor).get(QUEUE)
    assert response.context["filters"].status == "supervising"
    assert sorted(shown(response)) == sorted([open_.pk, attention.pk])
    assert "Needs attention" in response.content.decode()
    # A reviewer's default stays what they can work on.
    assert shown(login(reviewer).get(QUEUE)) == [open_.pk]
    # An unknown status falls back to each one's own default.
    assert sorted(shown(login(supervisor).get(QUEUE, {"status": "bogus"}))) == sorted(
        [open_.pk, attention.pk]
    )


def test_the_queue_filter(reviewer, many, pending_run, clinical_queue, eligibility_queue):
    (clinical,) = many(1)
    eligibility = pending_run("coverage-problem").review_items.get()
    assert eligibility.queue == eligibility_queue
    client = login(reviewer)
    assert shown(client.get(QUEUE, {"queue": eligibility_queue.pk})) == [eligibility.pk]
    assert shown(client.get(QUEUE, {"queue": clinical_queue.pk})) == [clinical.pk]
    assert sorted(shown(client.get(QUEUE))) == sorted([clinical.pk, eligibility.pk])


def test_the_state_filter(reviewer, many, pending_run, eligibility_queue):
    (clinical,) = many(1)
    problem = pending_run("coverage-problem").review_items.get()
    client = login(reviewer)
    assert shown(client.get(QUEUE, {"state": "coverage-problem"})) == [problem.pk]
    assert shown(client.get(QUEUE, {"state": "clinical-review"})) == [clinical.pk]
    assert shown(client.get(QUEUE, {"state": "no-such-step"})) == []


def test_the_step_filter_offers_the_steps_titles(reviewer, many, sign_off_run):
    many(1)
    sign_off_run()
    html = login(reviewer).get(QUEUE, {"state": "coverage-problem"}).content.decode()
    step = html.split('<select name="state">', 1)[1].split("</select>", 1)[0]
    assert '<option value="clinical-review">Clinical review</option>' in step
    assert '<option value="coverage-problem" selected>' in step
    # Every callback state of every stored version, and only those (no request or choice).
    assert '<option value="verify-coverage"' not in step
    assert '<input type="text" name="state"' not in html


def test_the_rows_name_the_step_by_its_title(reviewer, many):
    (item,) = many(1)
    for headers in ({}, HX):
        html = login(reviewer).get(QUEUE, headers=headers).content.decode()
        rows = html.split("<tbody>", 1)[1]
        assert "<td>Clinical review</td>" in rows
        assert "clinical-review" not in rows
        assert "prior-authorization v1" not in rows


def test_the_age_column_and_due_times_read_from_now(reviewer, many):
    (item,) = many(1)
    start = timezone.now()
    ReviewItem.objects.filter(pk=item.pk).update(
        opened_at=start - timedelta(hours=3, minutes=20), due_at=start + timedelta(minutes=40)
    )
    with time_machine.travel(start, tick=False):
        html = login(reviewer).get(QUEUE).content.decode()
    assert "<th>Age</th>" in html
    assert ">3 h 20 min</time>" in html
    assert "due in 40 min" in html
    assert " UTC</time>" in html  # the due time names its zone
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        html = login(reviewer).get(QUEUE, headers=HX).content.decode()
    assert ">4 h 20 min</time>" in html
    assert "overdue 20 min" in html


def test_the_page_has_a_favicon(reviewer, clinical_queue):
    html = login(reviewer).get(QUEUE).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html


def test_the_template_filter(reviewer, many, sign_off_run):
    (prior_auth,) = many(1)
    sign_off = sign_off_run().review_items.get()
    client = login(reviewer)
    assert shown(client.get(QUEUE, {"template": "sign-off"})) == [sign_off.pk]
    assert shown(client.get(QUEUE, {"template": "prior-authorization"})) == [prior_auth.pk]
    html = client.get(QUEUE).content.decode()
    # The template's name is shown; its id is only the option's value.
    assert '<option value="sign-off">' in html


def test_the_assignee_filter(reviewer, colleague, many):
    mine, theirs, nobodys = many(3)
    services.item_claim(item=mine, user=reviewer)
    services.item_claim(item=theirs, user=colleague)
    client = login(reviewer)
    assert shown(client.get(QUEUE, {"assignee": "me"})) == [mine.pk]
    assert shown(client.get(QUEUE, {"assignee": "unassigned"})) == [nobodys.pk]
    assert sorted(shown(client.get(QUEUE, {"assignee": "anyone"}))) == sorted(
        [mine.pk, theirs.pk, nobodys.pk]
    )


def test_the_overdue_filter(reviewer, many):
    late, on_time = many(2)
    ReviewItem.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    response = login(reviewer).get(QUEUE, {"overdue": "1"})
    assert shown(response) == [late.pk]
    assert "overdue-tag" in response.content.decode()


def test_search_by_the_start_of_the_run_id(reviewer, many):
    wanted, other = many(2)
    client = login(reviewer)
    assert shown(search(client, wanted.run_ref[:8])) == [wanted.pk]
    assert shown(search(client, wanted.run_ref.upper())) == [wanted.pk]
    # The middle of a run id is not a prefix.
    assert shown(search(client, other.run_ref[9:18])) == []


def test_search_by_patient_name(reviewer, pending_run):
    maria = pending_run(input_data=patient("Maria", "Lopez")).review_items.get()
    john = pending_run(input_data=patient("John", "Smith")).review_items.get()
    client = login(reviewer)
    assert shown(search(client, "lopez")) == [maria.pk]
    assert shown(search(client, "John Sm")) == [john.pk]
    assert shown(search(client, "nobody")) == []
    assert "with these filters" in search(client, "nobody").content.decode()


# --- The search term stays out of URLs (they reach the access logs) ----------------------------


def urls_in(html: str) -> list[str]:
    """Every URL a page would have the browser request: links, forms, htmx requests."""
    return re.findall(r'(?:href|src|action|hx-get|hx-post)="([^"]*)"', html)


def test_search_terms_stay_out_of_urls(reviewer, pending_run):
    maria = pending_run(input_data=patient("Maria", "Okafor")).review_items.get()
    pending_run(input_data=patient("John", "Smith"))
    client = login(reviewer)
    posted = client.post(QUEUE, {"q": " Okafor ", "status": "open", "sort": "due", "queue": ""})
    assert posted.status_code == 302
    location = posted["Location"]
    assert "okafor" not in location.lower()
    assert location.startswith(f"{QUEUE}?status=open&sort=due&search=")  # no empty filters
    response = client.get(location)
    assert shown(response) == [maria.pk]
    html = response.content.decode()
    assert 'name="q" value="Okafor"' in html  # the box keeps its text
    assert [url for url in urls_in(html) if "okafor" in url.lower()] == []
    assert 'method="post" action="/"' in html


def test_paging_and_the_live_refresh_keep_the_search(reviewer, pending_run, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 1)
    okafors = [pending_run(input_data=patient("Ada", "Okafor")).review_items.get() for _ in "ab"]
    pending_run(input_data=patient("John", "Smith"))
    client = login(reviewer)
    first = search(client, "Okafor", sort="oldest")
    token = first.context["request"].GET["search"]
    urls = [unescape(url) for url in urls_in(first.content.decode())]
    assert f"?sort=oldest&search={token}&page=2" in urls  # Next →
    assert any(url.startswith(f"/?sort=oldest&search={token}&page=1&since=") for url in urls)
    second = client.get(QUEUE, {"sort": "oldest", "search": token, "page": "2"})
    assert shown(second) == [okafors[1].pk]
    polled = client.get(QUEUE, {"sort": "oldest", "search": token}, headers=BACKGROUND)
    assert shown(polled) == [okafors[0].pk]


def test_each_search_has_its_own_url_for_back_and_forward(reviewer, pending_run):
    maria = pending_run(input_data=patient("Maria", "Lopez")).review_items.get()
    john = pending_run(input_data=patient("John", "Smith")).review_items.get()
    client = login(reviewer)
    lopez = client.post(QUEUE, {"q": "Lopez"})["Location"]
    smith = client.post(QUEUE, {"q": "Smith"})["Location"]
    assert lopez != smith
    assert shown(client.get(lopez)) == [maria.pk]  # back
    assert shown(client.get(smith)) == [john.pk]  # forward
    assert client.post(QUEUE, {"q": "Lopez"})["Location"] == lopez  # the same search, once


def test_an_empty_search_clears_it(reviewer, many):
    client = login(reviewer)
    assert client.post(QUEUE, {"q": "  ", "status": "open"})["Location"] == f"{QUEUE}?status=open"
    assert client.post(QUEUE, {"q": ""})["Location"] == QUEUE


def test_a_session_keeps_its_latest_searches_only(reviewer, open_item):
    client = login(reviewer)
    urls = [client.post(QUEUE, {"q": f"name {n}"})["Location"] for n in range(25)]
    assert client.get(urls[0]).context["search_gone"]
    assert client.get(urls[-20]).context["filters"].q == "name 5"
    assert len(client.session["searches"]) == 20


def test_a_search_url_in_another_session_names_no_one(reviewer, colleague, pending_run):
    pending_run(input_data=patient("Maria", "Lopez"))
    url = login(reviewer).post(QUEUE, {"q": "Lopez"})["Location"]
    response = login(colleague).get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "That search is no longer kept" in html
    assert 'name="q" value=""' in html
    assert response.context["filters"].q == ""


def test_a_url_that_names_the_term_is_turned_into_a_token(reviewer, pending_run):
    """Old bookmarks and links keep working, and the address bar and history lose the name."""
    maria = pending_run(input_data=patient("Maria", "Lopez")).review_items.get()
    client = login(reviewer)
    response = client.get(QUEUE, {"q": "Lopez", "status": "open", "page": "3"})
    assert response.status_code == 302
    assert "Lopez" not in response["Location"]
    assert "page=" not in response["Location"]  # a new search starts on its first page
    assert shown(client.get(response["Location"])) == [maria.pk]


def test_the_filter_form_is_posted_with_its_csrf_token(reviewer, open_item):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    assert client.post(QUEUE, {"q": "Lopez"}).status_code == 403
    page = client.get(QUEUE).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    posted = client.post(QUEUE, {"q": "Lopez", "csrfmiddlewaretoken": token})
    assert posted.status_code == 302
    assert "csrfmiddlewaretoken" not in posted["Location"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("urgent", ["b", "c", "a"]),  # priority, then due soonest
        ("due", ["c", "a", "b"]),
        ("newest", ["a", "c", "b"]),
        ("oldest", ["b", "c", "a"]),
        ("bogus", ["b", "c", "a"]),
    ],
)
def test_sort(reviewer, many, sort, expected):
    now = timezone.now()
    a, b, c = many(3)
    ReviewItem.objects.filter(pk=a.pk).update(
        priority=10, due_at=now + timedelta(hours=2), opened_at=now - timedelta(minutes=1)
    )
    ReviewItem.objects.filter(pk=b.pk).update(
        priority=20, due_at=now + timedelta(hours=3), opened_at=now - timedelta(minutes=3)
    )
    ReviewItem.objects.filter(pk=c.pk).update(
        priority=10, due_at=now + timedelta(hours=1), opened_at=now - timedelta(minutes=2)
    )
    names = {a.pk: "a", b.pk: "b", c.pk: "c"}
    assert [names[pk] for pk in shown(login(reviewer).get(QUEUE, {"sort": sort}))] == expected


def test_pages_know_there_is_a_next_one_without_counting(reviewer, many):
    many(selectors.PAGE_SIZE + 1)
    client = login(reviewer)
    first = client.get(QUEUE)
    assert len(shown(first)) == selectors.PAGE_SIZE
    assert first.context["page"].has_next is True
    assert 'rel="next"' in first.content.decode()
    second = client.get(QUEUE, {"page": "2"})
    assert len(shown(second)) == 1
    assert second.context["page"].has_next is False
    html = second.content.decode()
    assert 'rel="next"' not in html
    assert 'rel="prev"' in html
    assert not set(shown(first)) & set(shown(second))


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2024-02-30T10:00:00"},  # well formed, not a date
        {"page": "²"},  # str.isdigit() says yes, int() says no
        {"queue": "²"},
    ],
)
def test_a_malformed_query_string_falls_back_to_defaults(reviewer, open_item, query):
    response = login(reviewer).get(QUEUE, query)
    assert response.status_code == 200
    assert shown(response) == [open_item.pk]


# --- Bounded queries ---------------------------------------------------------------------------


def _queries(client, django_assert_max_num_queries, bound: int):
    with django_assert_max_num_queries(bound) as captured:
        response = client.get(QUEUE)
    assert response.status_code == 200
    return [q["sql"] for q in captured.captured_queries]


# Session, user, the person's time zone, two for permissions, the page, the capped count, the
# audit row (three statements: the chain's head locked, the row, the head moved), the filters'
# choices (stored versions' steps, queues), the health banner and the top bar's unread
# notifications: fourteen today, with room for a session write.
QUERY_BOUND = 15


def test_the_queue_page_costs_a_bounded_number_of_queries(
    reviewer, colleague, many, django_assert_max_num_queries
):
    client = login(reviewer)
    client.get(QUEUE)  # the session's first request records activity
    items = many(5)
    services.item_claim(item=items[0], user=reviewer)
    services.item_claim(item=items[1], user=colleague)
    few = _queries(client, django_assert_max_num_queries, QUERY_BOUND)
    more = many(55)
    for item in more[:20]:
        services.item_claim(item=item, user=colleague)
    ReviewItem.objects.filter(pk__in=[i.pk for i in more[20:30]]).update(
        due_at=timezone.now() - timedelta(minutes=5)
    )
    lots = _queries(client, django_assert_max_num_queries, QUERY_BOUND)
    assert len(lots) == len(few), "\n".join(lots)
    # The only COUNT is the "new items" indicator's, and it is capped.
    counts = [sql for sql in lots if "COUNT(" in sql.upper()]
    assert all("LIMIT" in sql.upper() for sql in counts), counts


# --- New items, audit, background polling ------------------------------------------------------


def test_new_items_since_the_page_was_opened(reviewer, many):
    many(2)
    since = timezone.now()
    new = many(3)
    response = login(reviewer).get(QUEUE, {"since": since.isoformat()}, headers=BACKGROUND)
    assert response.context["page"].new_items == 3
    html = response.content.decode()
    assert "3 new items since you opened this page" in html
    # The page itself already lists them (most urgent first); the link reloads without `since`.
    assert set(shown(response)) >= {item.pk for item in new}


def test_no_new_items_indicator_without_new_items(reviewer, many):
    many(2)
    response = login(reviewer).get(QUEUE, {"since": timezone.now().isoformat()}, headers=HX)
    assert response.context["page"].new_items == 0
    assert "new item" not in response.content.decode()


def test_the_new_items_count_is_capped(reviewer, many, monkeypatch):
    monkeypatch.setattr(selectors, "NEW_ITEMS_CAP", 2)
    since = timezone.now() - timedelta(seconds=1)
    many(5)
    response = login(reviewer).get(QUEUE, {"since": since.isoformat()}, headers=HX)
    assert response.context["page"].new_items == 3  # the cap, plus one to say "more"


def test_a_normal_view_of_the_queue_is_audited(reviewer, many):
    items = many(2)
    login(reviewer).get(QUEUE, REMOTE_ADDR="10.1.2.3")
    audit = AuditEvent.objects.get(action="queue.viewed")
    assert audit.actor == reviewer
    assert audit.ip == "10.1.2.3"
    assert sorted(audit.detail["items"]) == sorted(item.pk for item in items)


def test_an_htmx_view_of_the_queue_is_audited_too(reviewer, open_item):
    login(reviewer).get(QUEUE, headers=HX)
    assert AuditEvent.objects.filter(action="queue.viewed", actor=reviewer).count() == 1


def test_polling_is_audited_once_per_rows_shown_whatever_the_client_says(reviewer, many):
    client = login(reviewer)
    views = AuditEvent.objects.filter(action="queue.viewed", actor=reviewer)
    assert client.get(QUEUE, headers=BACKGROUND).status_code == 200
    client.get(QUEUE, headers=BACKGROUND)
    assert views.count() == 1
    # New rows on the page are a new read.
    many(1)
    client.get(QUEUE, headers=BACKGROUND)
    assert views.count() == 2


# --- The Flows health banner -------------------------------------------------------------------


def test_the_banner_shows_while_flows_is_failing(reviewer, open_item):
    ApiHealth.objects.update_or_create(
        pk=1, defaults={"consecutive_failures": 3, "last_failure_at": timezone.now()}
    )
    html = login(reviewer).get(QUEUE).content.decode()
    assert 'id="flows-banner"' in html
    assert "The Flows service is not answering right now" in html
    # The technical detail is a supervisor's, never a reviewer's.
    assert "failed call" not in html and "answered 503" not in html


def test_a_supervisor_reads_the_banners_technical_detail(supervisor, open_item):
    ApiHealth.objects.update_or_create(
        pk=1,
        defaults={
            "consecutive_failures": 3,
            "last_failure_at": timezone.now(),
            "last_error": "GET /v1/flow-runs/0b5e answered 503",
        },
    )
    html = login(supervisor).get(QUEUE).content.decode()
    assert "The Flows service is not answering right now" in html
    assert "Technical detail: 3 failed calls since" in html
    assert "the last: GET /v1/flow-runs/0b5e answered 503" in html


def test_no_banner_while_flows_answers(reviewer, open_item):
    ApiHealth.objects.update_or_create(
        pk=1, defaults={"consecutive_failures": 0, "last_success_at": timezone.now()}
    )
    assert 'id="flows-banner"' not in login(reviewer).get(QUEUE).content.decode()
