"""The audit report: compliance staff filter the trail by person, patient, Run, action and time,
and export it as CSV; reading and exporting it are audited, and a patient's name never reaches
a URL or the trail."""

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from reviewqueue import roles, services
from reviewqueue.audit_selectors import ACTION_TITLES

pytestmark = pytest.mark.django_db

REPORT = reverse("reviewqueue:audit")
EXPORT = reverse("reviewqueue:audit_export")


@pytest.fixture
def officer(client, django_user_model, role_groups):
    """Cora, compliance: reads the trail, works no queue."""
    cora = django_user_model.objects.create_user(
        "cora", password="cora-password-1", first_name="Cora", last_name="Diaz"
    )
    cora.groups.add(Group.objects.get(name=roles.COMPLIANCE))
    client.force_login(cora)
    return cora


@pytest.fixture
def two_patients(pending_run, reviewer):
    """Maria Lopez's Run, claimed and viewed by alice; and another patient's Run."""
    lopez = pending_run().review_items.get()
    other_input = {
        "patient": {"firstName": "Tom", "lastName": "Okafor", "dateOfBirth": "1960-02-02"}
    }
    okafor = pending_run(input_data=other_input).review_items.get()
    services.item_claim(item=lopez, user=reviewer)
    services.audit_record(action="item.viewed", actor=reviewer, item=okafor, ip="10.0.0.2")
    return lopez, okafor


def rows(response) -> list[tuple[str, str]]:
    """(what, run) of each row in the report's table."""
    return [(title, str(event.flow_run_id or "")) for event, title, _ in response.context["rows"]]


def test_only_compliance_reads_the_report(client, reviewer, supervisor):
    for person in (reviewer, supervisor):
        client.force_login(person)
        assert client.get(REPORT).status_code == 403
        assert client.get(EXPORT).status_code == 403
        assert client.post(REPORT, {"q": "Lopez"}).status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="audit.").exists()


def test_the_top_bar_links_to_it_for_compliance_only(client, officer, reviewer):
    assert f'href="{REPORT}"' in client.get(reverse("reviewqueue:runs")).content.decode()
    client.force_login(reviewer)
    assert f'href="{REPORT}"' not in client.get(reverse("reviewqueue:runs")).content.decode()


def test_a_patient_is_searched_without_their_name_in_any_url_or_event(
    client, officer, two_patients
):
    lopez, okafor = two_patients
    response = client.post(REPORT, {"q": "lopez", "action": "work"})
    assert response.status_code == 302
    assert "lopez" not in response.url.lower() and "action=work" in response.url
    page = client.get(response.url)
    assert page.status_code == 200
    shown = rows(page)
    assert ("Claimed", lopez.run_ref) in shown
    assert all(run == lopez.run_ref for _, run in shown)
    assert 'value="lopez"' in page.content.decode()  # the box keeps what was typed
    viewed = AuditEvent.objects.get(action="audit.viewed", actor=officer)
    assert viewed.detail["filters"]["patient_given"] is True
    assert "lopez" not in str(viewed.detail).lower()


def test_filters_by_person_run_action_and_day(client, officer, two_patients, reviewer):
    lopez, okafor = two_patients
    by_person = rows(client.get(REPORT, {"person": "ALICE"}))
    assert {what for what, _ in by_person} >= {"Claimed", "Item viewed"}
    by_run = rows(client.get(REPORT, {"run": okafor.run_ref}))
    assert by_run and all(run == okafor.run_ref for _, run in by_run)
    reads = rows(client.get(REPORT, {"action": "reads"}))
    assert ("Item viewed", okafor.run_ref) in reads and ("Claimed", lopez.run_ref) not in reads
    work = rows(client.get(REPORT, {"action": "work"}))
    assert ("Claimed", lopez.run_ref) in work and ("Item viewed", okafor.run_ref) not in work
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert rows(client.get(REPORT, {"start": tomorrow})) == []
    assert rows(client.get(REPORT, {"end": tomorrow, "person": "alice"})) == by_person


def test_a_filter_that_cannot_be_read_says_so_on_its_field_and_shows_nothing(
    client, officer, two_patients
):
    response = client.get(REPORT, {"run": "not-a-run", "start": "2026-02-30", "person": "alice"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "“not-a-run” is not a Run id" in html
    assert "“2026-02-30” is not a date" in html
    assert 'value="alice"' in html and 'value="not-a-run"' in html  # the input is kept
    assert rows(response) == []
    assert "Correct the filters above." in html


def test_reading_the_report_is_audited_and_a_reload_folds(client, officer):
    client.get(REPORT, {"action": "signin"})
    client.get(REPORT, {"action": "signin"})
    assert AuditEvent.objects.filter(action="audit.viewed", actor=officer).count() == 1
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        client.get(REPORT, {"action": "signin"})
    assert AuditEvent.objects.filter(action="audit.viewed", actor=officer).count() == 2


def test_the_export_has_every_matching_event_and_is_audited(
    client, officer, two_patients, django_user_model
):
    lopez, _ = two_patients
    # A name a spreadsheet would run as a formula.
    mallory = django_user_model.objects.create_user("mallory", first_name='=HYPERLINK("x")')
    services.audit_record(action="login", actor=mallory)
    response = client.get(EXPORT, {"person": "mallory"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0][:4] == ["time_utc", "login", "name", "action"]
    assert [row[1:4] for row in table[1:]] == [["mallory", '\'=HYPERLINK("x")', "login"]]
    exported = AuditEvent.objects.get(action="audit.exported", actor=officer)
    assert exported.detail["filters"]["person"] == "mallory"

    everything = client.get(EXPORT, {"run": lopez.run_ref})
    lines = list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode())))
    assert {row[5] for row in lines[1:]} == {lopez.run_ref}
    assert "item.claimed" in {row[3] for row in lines[1:]}


def test_a_search_in_the_url_is_moved_out_of_it(client, officer):
    response = client.get(REPORT, {"q": "Lopez"})
    assert response.status_code == 302 and "Lopez" not in response.url


def test_every_action_the_code_records_has_a_title():
    """The report names each kind of event in words: an action recorded anywhere in the code
    (``audit_record(action="...")``) without a title would show as its code."""
    root = Path(__file__).resolve().parents[2]
    recorded = set()
    for app in ("audit", "config", "flows_integration", "intake", "reviewqueue"):
        for source in (root / app).rglob("*.py"):
            recorded |= set(re.findall(r'\baction="([a-z_]+(?:\.[a-z_]+)*)"', source.read_text()))
    recorded -= {"store_true", "store_false", "append", "count"}  # argparse's, not the audit's
    assert len(recorded) > 40, "the scan found too few actions: has audit_record changed?"
    assert sorted(recorded - ACTION_TITLES.keys()) == []
