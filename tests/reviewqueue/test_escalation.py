"""Escalation on a frozen clock: an item near its due time, then overdue, rises in priority and
its queue's supervisors and its holder are told, each step once and audited once; nights,
weekends, public holidays and the site's days off do not count on a business clock.

Personas: alice the reviewer (holds the item), bob her colleague, charlie an outsider, sam a
supervisor.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings

from audit.models import AuditEvent
from reviewqueue import selectors, services, tasks
from reviewqueue.escalation import NEAR_DUE, OVERDUE, item_escalate, items_escalate
from reviewqueue.models import (
    BusinessCalendar,
    DayOff,
    ItemStatus,
    Notification,
    NotificationKind,
    OpeningHours,
    ReviewItem,
    SlaClock,
)

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
MINUTE = timedelta(minutes=1)


def ny(day: str, clock: str = "00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=NEW_YORK)


def escalate_at(moment: datetime) -> int:
    with time_machine.travel(moment, tick=False):
        return items_escalate()


def told(item: ReviewItem) -> list[tuple[str, str]]:
    """(kind, username) of each notification about ``item``, in order."""
    return [
        (n.kind, n.user.username)
        for n in Notification.objects.filter(item=item).select_related("user").order_by("pk")
    ]


@pytest.fixture
def billing_office():
    """Mon-Fri 9-17 in New York, US public holidays (Thanksgiving is Thursday 2026-11-26), and
    the site's own day off the day after."""
    calendar = BusinessCalendar.objects.create(
        name="Billing office", time_zone="America/New_York", country="US"
    )
    OpeningHours.objects.bulk_create(
        OpeningHours(calendar=calendar, weekday=day, opens=time(9), closes=time(17))
        for day in range(5)
    )
    DayOff.objects.create(calendar=calendar, date=date(2026, 11, 27), name="Office closed")
    return calendar


@pytest.fixture
def business_queue(clinical_queue, billing_office):
    """The clinical queue on business hours: 4 hours to answer, warned 30 minutes before."""
    clinical_queue.sla_clock = SlaClock.BUSINESS
    clinical_queue.calendar = billing_office
    clinical_queue.save()
    return clinical_queue


@pytest.fixture
def everyone(reviewer, colleague, outsider, supervisor):
    return {"alice": reviewer, "bob": colleague, "charlie": outsider, "sam": supervisor}


def test_across_a_holiday_a_day_off_and_a_weekend_it_escalates_near_due_then_overdue_once_each(
    business_queue, pending_run, everyone
):
    with time_machine.travel(ny("2026-11-25", "16:00"), tick=False):
        item = pending_run().review_items.get()
        services.item_claim(item=item, user=everyone["alice"])
    # Wednesday's last hour, then Thanksgiving, the day off and the weekend: Monday 9-12.
    item.refresh_from_db()
    assert item.due_at == ny("2026-11-30", "12:00")

    quiet = [
        ny("2026-11-25", "16:45"),
        ny("2026-11-25", "23:00"),
        ny("2026-11-26", "12:00"),  # Thanksgiving
        ny("2026-11-27", "12:00"),  # the day off
        ny("2026-11-28", "12:00"),
        ny("2026-11-29", "23:59"),
        ny("2026-11-30", "09:00"),
        ny("2026-11-30", "11:29"),
    ]
    assert [escalate_at(moment) for moment in quiet] == [0] * len(quiet)
    item.refresh_from_db()
    assert (item.priority, item.escalated_near_due_at, item.escalated_overdue_at) == (
        50,
        None,
        None,
    )
    assert not Notification.objects.exists()

    # Half an hour of open time left: near due, once.
    assert escalate_at(ny("2026-11-30", "11:30")) == 1
    assert escalate_at(ny("2026-11-30", "11:45")) == 0
    assert escalate_at(ny("2026-11-30", "12:00")) == 0  # due, not yet overdue
    item.refresh_from_db()
    assert (item.priority, item.escalated_near_due_at) == (51, ny("2026-11-30", "11:30"))
    assert sorted(told(item)) == [("near_due", "alice"), ("near_due", "sam")]

    # Past the due time: overdue, once.
    assert escalate_at(ny("2026-11-30", "12:01")) == 1
    assert escalate_at(ny("2026-11-30", "13:00")) == 0
    assert escalate_at(ny("2026-12-01", "09:00")) == 0
    item.refresh_from_db()
    assert (item.priority, item.escalated_overdue_at) == (52, ny("2026-11-30", "12:01"))
    assert sorted(told(item)[2:]) == [("overdue", "alice"), ("overdue", "sam")]
    assert len(told(item)) == 4  # bob and charlie are told nothing

    escalated = AuditEvent.objects.filter(action="item.escalated").order_by("pk")
    assert [(event.item_id, event.detail["stage"]) for event in escalated] == [
        (item.pk, NEAR_DUE),
        (item.pk, OVERDUE),
    ]
    assert [event.detail["priority"] for event in escalated] == [51, 52]
    assert all(event.actor is None for event in escalated)


def test_near_due_counts_open_time_so_friday_evening_warns_of_monday_morning(
    business_queue, pending_run, supervisor
):
    # Opened Monday 2026-11-23 at 16:40: 4 hours of open time end Tuesday 12:40.
    with time_machine.travel(ny("2026-11-23", "16:40"), tick=False):
        item = pending_run().review_items.get()
    assert escalate_at(ny("2026-11-24", "12:09")) == 0
    assert escalate_at(ny("2026-11-24", "12:10")) == 1
    assert escalate_at(ny("2026-11-24", "12:41")) == 1  # overdue
    # Another, due Monday 2026-11-30 9:20: on Wednesday 16:50 only 30 open minutes are left
    # (Wednesday's last 10, Monday's first 20), so it warns then, not on Monday.
    business_queue.sla = 50 * MINUTE
    business_queue.save()
    with time_machine.travel(ny("2026-11-25", "16:30"), tick=False):
        other = pending_run().review_items.get()
    assert other.due_at == ny("2026-11-30", "09:20")
    assert escalate_at(ny("2026-11-25", "16:49")) == 0
    assert escalate_at(ny("2026-11-25", "16:50")) == 1
    other.refresh_from_db()
    assert other.escalated_near_due_at == ny("2026-11-25", "16:50")
    assert item.pk != other.pk


def test_an_item_already_overdue_escalates_once_as_overdue_with_both_steps(
    clinical_queue, pending_run, supervisor
):
    clinical_queue.sla = MINUTE
    clinical_queue.save()
    start = datetime(2026, 11, 16, 15, tzinfo=NEW_YORK)
    with time_machine.travel(start, tick=False):
        item = pending_run().review_items.get()

    assert escalate_at(start + 2 * MINUTE) == 1
    assert escalate_at(start + 3 * MINUTE) == 0
    item.refresh_from_db()
    assert item.escalated_near_due_at == item.escalated_overdue_at == start + 2 * MINUTE
    assert item.priority == 52  # two steps above where it opened, like any overdue item
    assert told(item) == [("overdue", "sam")]
    assert AuditEvent.objects.filter(action="item.escalated").count() == 1
    timeline = [entry.text for entry in selectors.timeline(item)]
    assert "Escalated: overdue; priority raised" in timeline


def test_a_calendar_clock_counts_every_minute(clinical_queue, pending_run, supervisor):
    start = ny("2026-11-28", "20:00")  # a Saturday night: calendar hours do not care
    with time_machine.travel(start, tick=False):
        item = pending_run().review_items.get()
    assert escalate_at(start + 3 * timedelta(hours=1) + 29 * MINUTE) == 0
    assert escalate_at(start + 3 * timedelta(hours=1) + 30 * MINUTE) == 1
    assert escalate_at(start + 4 * timedelta(hours=1) + MINUTE) == 1
    item.refresh_from_db()
    assert item.priority == 52


def test_two_overlapping_runs_escalate_once(clinical_queue, pending_run, supervisor):
    start = datetime(2026, 11, 16, 15, tzinfo=NEW_YORK)
    with time_machine.travel(start, tick=False):
        item = pending_run().review_items.get()
    stale = ReviewItem.objects.select_related("version").get(pk=item.pk)  # read by both runs
    now = start + 5 * timedelta(hours=1)

    assert item_escalate(item=stale, stage=OVERDUE, now=now) == 1
    assert item_escalate(item=stale, stage=OVERDUE, now=now) == 0
    assert item_escalate(item=stale, stage=NEAR_DUE, now=now) == 0  # taken with the overdue
    assert AuditEvent.objects.filter(action="item.escalated").count() == 1
    assert Notification.objects.count() == 1


def test_only_workable_items_escalate(clinical_queue, pending_run, supervisor):
    start = datetime(2026, 11, 16, 15, tzinfo=NEW_YORK)
    with time_machine.travel(start, tick=False):
        item = pending_run().review_items.get()
    ReviewItem.objects.filter(pk=item.pk).update(status=ItemStatus.SENDING)
    assert escalate_at(start + 5 * timedelta(hours=1)) == 0


def test_a_postponed_item_on_a_stopped_clock_does_not_escalate_while_put_aside(
    clinical_queue, pending_run, reviewer, supervisor
):
    clinical_queue.sla_paused_while_postponed = True
    clinical_queue.save()
    start = datetime(2026, 11, 16, 9, tzinfo=NEW_YORK)
    with time_machine.travel(start, tick=False):
        item = services.item_claim(item=pending_run().review_items.get(), user=reviewer)
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        services.item_postpone(item=item, user=reviewer, until=start + timedelta(days=2))
    assert escalate_at(start + timedelta(days=1)) == 0
    # Three hours were left when it was put aside: due three hours after it comes back.
    assert escalate_at(start + timedelta(days=2, hours=2, minutes=30)) == 1  # near due
    assert escalate_at(start + timedelta(days=2, hours=3, minutes=1)) == 1  # overdue


def test_notices_name_the_item_never_the_patient(clinical_queue, pending_run, supervisor):
    start = datetime(2026, 11, 16, 15, tzinfo=NEW_YORK)
    with time_machine.travel(start, tick=False):
        item = pending_run().review_items.get()
    escalate_at(start + 5 * timedelta(hours=1))
    notice = Notification.objects.get()
    assert notice.kind == NotificationKind.OVERDUE
    assert notice.text == f"Run {item.run_ref[:8]}, Clinical review is overdue."
    assert "Maria" not in notice.text and "Lopez" not in notice.text


def test_beat_runs_the_task_every_minute(clinical_queue, pending_run, supervisor):
    entry = settings.CELERY_BEAT_SCHEDULE["review-escalate"]
    assert (entry["task"], entry["schedule"]) == ("reviewqueue.tasks.escalate_items", 60.0)
    start = datetime(2026, 11, 16, 15, tzinfo=NEW_YORK)
    with time_machine.travel(start, tick=False):
        pending_run()
    with time_machine.travel(start + 5 * timedelta(hours=1), tick=False):
        assert tasks.escalate_items() == 1
        assert tasks.escalate_items() == 0
