"""Bad input at the review queue: over-long notes, drafts of any size, Runs too large to show,
and the demo loader in production. Each a clean 4xx (or a capped page), nothing stored."""

import time
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from reviewqueue import present, services
from reviewqueue.models import Draft, Note
from tests.reviewqueue.conftest import mirrored
from tests.reviewqueue.test_views_item import HX, login, typed, url

pytestmark = pytest.mark.django_db

# --- Notes -------------------------------------------------------------------------------------


def test_a_note_of_100000_characters_is_422_on_the_field_and_not_stored(reviewer, item):
    response = login(reviewer).post(url("item_note", item), {"body": "x" * 100_000}, headers=HX)
    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="notes"')
    assert "A note can be at most 5,000 characters; this one has 100,000." in html
    assert 'aria-invalid="true" aria-describedby="note-error"' in html
    assert not Note.objects.exists()


def test_a_note_of_100000_characters_without_htmx_is_flashed_and_not_stored(reviewer, item):
    client = login(reviewer)
    response = client.post(url("item_note", item), {"body": "x" * 100_000})
    assert response.status_code == 302
    assert "at most 5,000 characters" in client.get(response["Location"]).content.decode()
    assert not Note.objects.exists()


def test_a_note_of_exactly_the_limit_is_kept(reviewer, item):
    response = login(reviewer).post(url("item_note", item), {"body": "x" * 5_000}, headers=HX)
    assert response.status_code == 200
    assert len(Note.objects.get().body) == 5_000


# --- Drafts ------------------------------------------------------------------------------------

TOO_LARGE = {
    "one value too long": {"reviewer.name": ["x" * (services.DRAFT_VALUE_MAX + 1)]},
    "too many fields": {f"junk{i}": ["x"] for i in range(services.DRAFT_FIELDS_MAX + 1)},
    "too much in all": {f"junk{i}": ["x" * 15_000] for i in range(7)},
}


@pytest.mark.parametrize("extra", TOO_LARGE.values(), ids=TOO_LARGE.keys())
def test_a_draft_over_the_limits_is_422_and_keeps_the_stored_draft(
    reviewer, claimed_item, settings, extra
):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = None  # the service's own limit, not Django's
    client = login(reviewer)
    assert client.post(url("item_draft", claimed_item), typed(), headers=HX).status_code == 200
    before = Draft.objects.get().data

    response = client.post(url("item_draft", claimed_item), {**typed(), **extra}, headers=HX)

    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<span id="draft-state"')
    assert "a draft keeps at most" in html
    assert Draft.objects.get().data == before


def test_a_draft_with_more_fields_than_django_takes_is_400(reviewer, claimed_item):
    extra = {f"junk{i}": ["x"] for i in range(1_001)}
    response = login(reviewer).post(
        url("item_draft", claimed_item), {**typed(), **extra}, headers=HX
    )
    assert response.status_code == 400
    assert not Draft.objects.exists()


def test_a_form_re_render_over_the_limits_is_422_and_stores_nothing(reviewer, claimed_item):
    data = {**typed(), "junk": ["x" * (services.DRAFT_VALUE_MAX + 1)]}
    response = login(reviewer).post(url("item_form", claimed_item), data, headers=HX)
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#item-panel"
    assert "a draft keeps at most" in response.content.decode()
    assert not Draft.objects.exists()


def test_a_refused_submit_over_the_limits_is_422_and_stores_nothing(colleague, claimed_item):
    # Not Bob's claim: his input would be kept as his draft, but it is too large to keep.
    data = {**typed(), "junk": ["x" * (services.DRAFT_VALUE_MAX + 1)]}
    response = login(colleague).post(url("item_submit", claimed_item), data, headers=HX)
    assert response.status_code == 422
    assert "a draft keeps at most" in response.content.decode()
    assert not Draft.objects.exists()


# --- A Run too large to show in full -----------------------------------------------------------


def nested(depth: int) -> dict:
    data: dict = {"b": "bottom"}
    for _ in range(depth):
        data = {"a": data}
    return data


HUGE_INPUTS = {
    "one value of 2 MB": {"patient": {"firstName": "Maria", "notes": "y" * 2_000_000}},
    "a list of 400,000 scalars": {"procedureCodes": ["27447"] * 400_000},
    "100,000 values in an object": {"extra": {f"k{i}": "v" * 10 for i in range(100_000)}},
    "100,000 top-level values": {f"k{i}": "v" * 10 for i in range(100_000)},
    "objects nested 500 deep": {"deep": nested(500)},
}


@pytest.mark.parametrize("data", HUGE_INPUTS.values(), ids=HUGE_INPUTS.keys())
def test_a_huge_run_input_is_shown_capped_on_the_item_page(reviewer, pending_run, data):
    run = pending_run(input_data=data)
    item = run.review_items.get()
    started = time.monotonic()
    response = login(reviewer).get(url("item", item))
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    html = response.content.decode()
    assert len(html) < 200_000
    assert "(truncated, " in html or present.TOO_DEEP in html
    assert elapsed < 10  # a loaded machine; unbounded, the 2 MB page took far longer


def test_a_huge_run_is_shown_capped_on_the_run_page(flow_admin, prior_auth_version):
    run = mirrored(
        template=prior_auth_version.template,
        version=prior_auth_version,
        input_data={"patient": {"notes": "y" * 2_000_000}},
        output={"result": "z" * 2_000_000},
        state_results={"clinical-review": {"note": "w" * 2_000_000}},
    )
    response = login(flow_admin).get(f"/runs/{run.flow_run_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert len(html) < 100_000
    assert html.count(f"(truncated, {2_000_000 - present.SHOWN_CHARS:,} more characters)") >= 2


def test_shown_rows_cut_rows_and_values_and_say_how_much_is_left():
    data = {"a": "x" * 5_000, "b": list(range(3)), **{f"k{i}": i for i in range(300)}}
    rows = present.shown_rows({}, data)
    assert len(rows) == present.SHOWN_ROWS + 1
    assert rows[0] == ("A", "x" * 2_000 + "… (truncated, 3,000 more characters)")
    assert rows[1] == ("B", "0, 1, 2")
    assert rows[-1] == ("…", "(truncated, 102 more values)")
    assert present.rows({}, {"a": "x" * 5_000}) == [("A", "x" * 5_000)]  # unchanged elsewhere


# --- load_demo -----------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [(), ("--demo",)])
def test_load_demo_refuses_to_run_in_production(settings, args):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("load_demo", *args, stdout=StringIO())
    assert not get_user_model().objects.filter(username="alice").exists()
