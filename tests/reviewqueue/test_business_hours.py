"""SLA clocks: open time added and measured over a business calendar (weekday hours, a lunch
break, weekends, US public holidays, the site's days off, DST in New York), items' due times on
their queue's clock (the route's SLA first), the clock stopping while an item is postponed, and
the admin's refusal of a business clock that cannot count.

Personas: alice the reviewer (holds the item), sam a supervisor.
"""

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from audit.models import AuditEvent
from reviewqueue import services
from reviewqueue.business_hours import (
    CALENDAR_HOURS,
    BusinessHours,
    CalendarNeverOpen,
    business_hours,
    item_due_at,
    public_holidays,
    sla_clock,
)
from reviewqueue.models import (
    BusinessCalendar,
    DayOff,
    OpeningHours,
    Queue,
    ReviewItem,
    Route,
    SlaClock,
)
from tests.reviewqueue.test_items_follow_reconcile import reconcile_chunk, running

NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)
NINE_TO_FIVE = ((time(9), time(17)),)
WEEKDAYS_NINE_TO_FIVE = (NINE_TO_FIVE,) * 5 + ((), ())


def ny(day: str, clock: str = "00:00") -> datetime:
    """A New York wall time: ny("2026-11-20", "16:00")."""
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=NEW_YORK)


def office(**values) -> BusinessHours:
    """Mon-Fri 9-17 in New York, US public holidays: the billing office, without a database."""
    fields = {
        "name": "Billing office",
        "zone": NEW_YORK,
        "weekly": WEEKDAYS_NINE_TO_FIVE,
        "public_holidays": public_holidays("US"),
        **values,
    }
    return BusinessHours(**fields)


# --- Adding open time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "duration", "due"),
    [
        # Inside the hours, on one day.
        (ny("2026-11-16", "10:00"), 3 * H, ny("2026-11-16", "13:00")),
        # Before opening: the clock starts at 9.
        (ny("2026-11-16", "07:00"), H, ny("2026-11-16", "10:00")),
        # After closing: the next morning.
        (ny("2026-11-16", "18:00"), H, ny("2026-11-17", "10:00")),
        # Work that fits exactly ends at closing time, not at the next opening.
        (ny("2026-11-20", "16:00"), H, ny("2026-11-20", "17:00")),
        # Friday afternoon to Monday morning: the weekend does not count.
        (ny("2026-11-20", "16:00"), 2 * H, ny("2026-11-23", "10:00")),
        # Saturday: nothing counts before Monday 9:00.
        (ny("2026-11-21", "12:00"), 30 * timedelta(minutes=1), ny("2026-11-23", "09:30")),
        # Thanksgiving (Thursday 2026-11-26) is a US public holiday.
        (ny("2026-11-25", "16:00"), 2 * H, ny("2026-11-27", "10:00")),
        # A week of work from Monday 9:00 is Friday 17:00; one with Veterans Day (Wednesday
        # 2026-11-11) takes a day more; two weeks skip Thanksgiving.
        (ny("2026-11-30", "09:00"), 40 * H, ny("2026-12-04", "17:00")),
        (ny("2026-11-09", "09:00"), 40 * H, ny("2026-11-16", "17:00")),
        (ny("2026-11-16", "09:00"), 80 * H, ny("2026-11-30", "17:00")),
    ],
)
def test_open_time_is_added_over_weekday_hours_weekends_and_holidays(start, duration, due):
    assert office().add(start, duration) == due


def test_no_time_added_is_the_start_itself_open_or_closed():
    hours = office()
    for start in (ny("2026-11-16", "10:00"), ny("2026-11-21", "12:00")):
        assert hours.add(start, timedelta(0)) == start
        assert hours.between(start, start) == timedelta(0)


def test_a_lunch_break_does_not_count():
    hours = office(weekly=(((time(9), time(12)), (time(13), time(17))),) * 5 + ((), ()))
    assert hours.add(ny("2026-11-16", "11:00"), 2 * H) == ny("2026-11-16", "14:00")
    assert hours.add(ny("2026-11-16", "12:30"), H) == ny("2026-11-16", "14:00")
    assert hours.between(ny("2026-11-16", "08:00"), ny("2026-11-16", "18:00")) == 7 * H


def test_overlapping_stretches_typed_in_the_admin_count_once(db):
    calendar = BusinessCalendar.objects.create(name="Overlap", time_zone="America/New_York")
    for opens, closes in ((time(9), time(12)), (time(11), time(17))):
        OpeningHours.objects.create(calendar=calendar, weekday=0, opens=opens, closes=closes)
    hours = business_hours(calendar)
    assert hours.between(ny("2026-11-16"), ny("2026-11-17")) == 8 * H


def test_public_holidays_of_a_state_count_only_with_that_subdivision():
    lincolns_birthday = ny("2026-02-12", "09:00")  # a New York State holiday, a Thursday
    assert office().add(lincolns_birthday, H) == ny("2026-02-12", "10:00")
    new_york = office(public_holidays=public_holidays("US", "NY"))
    assert new_york.add(lincolns_birthday, H) == ny("2026-02-13", "10:00")


def test_no_country_means_no_public_holidays():
    assert office(public_holidays=None).add(ny("2026-11-26", "09:00"), H) == ny(
        "2026-11-26", "10:00"
    )


# --- DST: the hours are wall-clock hours in the calendar's zone -------------------------------


def test_across_the_spring_change_the_office_still_opens_at_nine_new_york_time():
    # Sunday 2026-03-08 New York moves from EST (UTC-5) to EDT (UTC-4).
    due = office().add(ny("2026-03-06", "16:00"), 2 * H)
    assert due == ny("2026-03-09", "10:00")
    assert due.astimezone(UTC) == datetime(2026, 3, 9, 14, tzinfo=UTC)


def test_a_stretch_over_the_change_counts_the_hours_that_really_pass():
    # Open around the clock's change on both change days: 0:00-8:00 is 7 real hours in spring
    # and 9 in autumn.
    early = office(weekly=((),) * 6 + (((time(0), time(8)),),))  # Sundays only
    assert early.between(ny("2026-03-08"), ny("2026-03-09")) == 7 * H
    assert early.between(ny("2026-11-01"), ny("2026-11-02")) == 9 * H
    assert early.add(ny("2026-03-08"), 7 * H) == ny("2026-03-08", "08:00")
    assert early.add(ny("2026-11-01"), 9 * H) == ny("2026-11-01", "08:00")


# --- Measuring open time, the inverse of adding -----------------------------------------------


def test_open_time_between_two_instants():
    hours = office()
    # Friday 16:00 to Tuesday 12:00: one hour on Friday, Monday's eight, three on Tuesday.
    assert hours.between(ny("2026-11-20", "16:00"), ny("2026-11-24", "12:00")) == 12 * H
    # ...with Thanksgiving in the way.
    assert hours.between(ny("2026-11-25", "16:00"), ny("2026-11-27", "10:00")) == 2 * H
    # Backwards is nothing, not a negative time.
    assert hours.between(ny("2026-11-24"), ny("2026-11-20")) == timedelta(0)


@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=1, max_value=200 * 60),
)
def test_measuring_between_a_start_and_its_due_time_gives_back_what_was_added(start, minutes):
    hours = office(weekly=(((time(9), time(12)), (time(13), time(17, 30))),) * 5 + ((), ()))
    duration = timedelta(minutes=minutes)
    due = hours.add(start, duration)
    assert due > start
    assert hours.between(start, due) == duration
    # ...and the due time is the earliest instant with that much open time behind it.
    assert hours.between(start, due - timedelta(seconds=1)) < duration


# --- Reading a calendar ------------------------------------------------------------------------


@pytest.fixture
def billing_office(db):
    """Mon-Fri 9-17 in New York, US holidays, and the site's own day off on Monday 2026-11-23."""
    calendar = BusinessCalendar.objects.create(
        name="Billing office", time_zone="America/New_York", country="US"
    )
    OpeningHours.objects.bulk_create(
        OpeningHours(calendar=calendar, weekday=day, opens=time(9), closes=time(17))
        for day in range(5)
    )
    DayOff.objects.create(calendar=calendar, date=date(2026, 11, 23), name="Staff training")
    return calendar


def test_a_calendar_is_read_with_its_hours_days_off_and_holidays(billing_office):
    hours = business_hours(billing_office)
    # Friday 16:00 + 4 hours: Friday's last hour, the weekend, the day off, then Tuesday 9-12.
    assert hours.add(ny("2026-11-20", "16:00"), 4 * H) == ny("2026-11-24", "12:00")
    assert hours.is_closed(date(2026, 11, 26))  # Thanksgiving
    assert not hours.is_closed(date(2026, 11, 25))


def test_a_blank_time_zone_is_the_sites(billing_office, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    billing_office.time_zone = ""
    hours = business_hours(billing_office)
    berlin = ZoneInfo("Europe/Berlin")
    assert hours.add(datetime(2026, 11, 16, 8, tzinfo=berlin), H) == datetime(
        2026, 11, 16, 10, tzinfo=berlin
    )


def test_a_calendar_without_opening_hours_is_refused_not_looped_over(db):
    calendar = BusinessCalendar.objects.create(name="Never open")
    with pytest.raises(CalendarNeverOpen, match="no opening hours"):
        business_hours(calendar)


def test_a_calendar_closed_for_years_is_refused_not_looped_over(billing_office):
    hours = office(weekly=(NINE_TO_FIVE,) + ((),) * 6)  # Mondays only...
    mondays = frozenset(date(2026, 11, 16) + timedelta(weeks=n) for n in range(120))
    closed = office(weekly=hours.weekly, days_off=mondays)  # ...each of them a day off
    with pytest.raises(CalendarNeverOpen, match="closed for over"):
        closed.add(ny("2026-11-16"), H)


def test_an_unknown_country_or_subdivision_is_refused_on_its_field(db):
    with pytest.raises(ValidationError) as refused:
        BusinessCalendar(name="X", country="XX").full_clean()
    assert "country" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        BusinessCalendar(name="X", country="US", subdivision="ZZ").full_clean()
    assert "ZZ" in refused.value.message_dict["subdivision"][0]
    BusinessCalendar(name="X", country="US", subdivision="NY").full_clean()


# --- A queue's clock and its items' due times --------------------------------------------------


@pytest.fixture
def business_queue(clinical_queue, billing_office):
    """The clinical queue on the billing office's business hours, 4 hours to answer."""
    clinical_queue.sla_clock = SlaClock.BUSINESS
    clinical_queue.calendar = billing_office
    clinical_queue.save()
    return clinical_queue


def test_a_business_clock_without_a_calendar_with_hours_is_refused_on_the_calendar(
    clinical_queue,
):
    clinical_queue.sla_clock = SlaClock.BUSINESS
    with pytest.raises(ValidationError) as refused:
        clinical_queue.full_clean()
    assert "needs a business calendar" in refused.value.message_dict["calendar"][0]
    clinical_queue.calendar = BusinessCalendar.objects.create(name="Empty")
    with pytest.raises(ValidationError) as refused:
        clinical_queue.full_clean()
    assert "“Empty” has no opening hours" in refused.value.message_dict["calendar"][0]


def test_a_queue_whose_calendar_cannot_count_falls_back_to_calendar_hours_and_says_so(
    clinical_queue, caplog
):
    # Saved past Queue.clean (the shell, a fixture): items must still open with a due time.
    clinical_queue.sla_clock = SlaClock.BUSINESS
    clinical_queue.calendar = BusinessCalendar.objects.create(name="Empty")
    with caplog.at_level(logging.ERROR):
        assert sla_clock(clinical_queue) is CALENDAR_HOURS
    assert "falls back to calendar hours" in caplog.text


def test_an_item_is_due_its_queues_sla_on_calendar_hours(item, clinical_queue):
    assert item.due_at == item.opened_at + clinical_queue.sla


@time_machine.travel(ny("2026-11-20", "16:00"), tick=False)
def test_an_item_is_due_its_queues_sla_in_business_hours(business_queue, pending_run):
    item = pending_run().review_items.get()
    assert item.due_at == ny("2026-11-24", "12:00")


@time_machine.travel(ny("2026-11-20", "16:00"), tick=False)
def test_a_routes_sla_wins_over_the_queues(business_queue, pending_run, prior_auth_version):
    Route.objects.filter(template=prior_auth_version.template).update(sla=2 * H)
    item = pending_run().review_items.get()
    assert item.due_at == ny("2026-11-24", "10:00")
    # ...and a state's route over the template's.
    Route.objects.create(
        template=prior_auth_version.template,
        state_id="clinical-review",
        queue=business_queue,
        sla=30 * timedelta(minutes=1),
    )
    assert item_due_at(
        queue=business_queue,
        route_sla=services.route_for(item.run, "clinical-review").sla,
        opened_at=item.opened_at,
    ) == ny("2026-11-20", "16:30")


@time_machine.travel(ny("2026-11-20", "16:00"), tick=False)
def test_a_reconcile_chunk_gives_the_same_due_times_as_one_by_one(
    business_queue, prior_auth_version
):
    runs = running(prior_auth_version, 3)
    reconcile_chunk(runs, "PENDING", "clinical-review")
    due = set(ReviewItem.objects.filter(run__in=runs).values_list("due_at", flat=True))
    assert due == {ny("2026-11-24", "12:00")}


def test_a_chunk_reads_a_business_calendar_once(business_queue, prior_auth_version):
    from tests.reviewqueue.test_items_follow_reconcile import statements

    assert statements(prior_auth_version, 2) == statements(prior_auth_version, 20)


# --- The clock stops while an item is postponed ------------------------------------------------


@pytest.fixture
def pausing(clinical_queue):
    clinical_queue.sla_paused_while_postponed = True
    clinical_queue.save()
    return clinical_queue


def claimed_at(moment: datetime, pending_run, reviewer) -> ReviewItem:
    with time_machine.travel(moment, tick=False):
        return services.item_claim(item=pending_run().review_items.get(), user=reviewer)


def postpone(item, reviewer, *, at: datetime, until: datetime) -> ReviewItem:
    with time_machine.travel(at, tick=False):
        services.item_postpone(item=item, user=reviewer, until=until)
    item.refresh_from_db()
    return item


def resume(item, user, *, at: datetime) -> ReviewItem:
    with time_machine.travel(at, tick=False):
        services.item_resume_early(item=item, user=user)
    item.refresh_from_db()
    return item


T0 = datetime(2026, 11, 16, 14, tzinfo=UTC)


def test_a_postponement_ended_by_a_reassignment_gives_back_its_unspent_part(
    pausing, pending_run, reviewer, colleague, supervisor
):
    item = claimed_at(T0, pending_run, reviewer)
    item = postpone(item, reviewer, at=T0 + H, until=T0 + 3 * H)
    assert item.due_at == T0 + 6 * H
    # Handed to bob one hour into the two: that hour is spent, the other comes back.
    with time_machine.travel(T0 + 2 * H, tick=False):
        services.item_reassign(item=item, to=colleague, by=supervisor)
    item.refresh_from_db()
    assert (item.claimed_by, item.postponed_until, item.due_at) == (colleague, None, T0 + 5 * H)
    reassigned = AuditEvent.objects.get(action="item.reassigned")
    assert reassigned.detail["due"] == (T0 + 5 * H).isoformat()


def test_a_postponed_item_keeps_its_time_left_and_gets_back_the_unspent_part(
    pausing, pending_run, reviewer, supervisor
):
    item = claimed_at(T0, pending_run, reviewer)
    assert item.due_at == T0 + 4 * H
    # One hour in, postponed for two: three hours left, from T0+3h.
    item = postpone(item, reviewer, at=T0 + H, until=T0 + 3 * H)
    assert item.due_at == T0 + 6 * H
    # Back after one of the two hours: the other comes back off the due time.
    item = resume(item, supervisor, at=T0 + 2 * H)
    assert item.due_at == T0 + 5 * H
    postponed, resumed = AuditEvent.objects.filter(
        action__in=["item.postponed", "item.resumed_early"]
    ).order_by("pk")
    assert postponed.detail["due"] == (T0 + 6 * H).isoformat()
    assert resumed.detail["due"] == (T0 + 5 * H).isoformat()


def test_without_the_pause_postponing_leaves_the_due_time(
    clinical_queue, pending_run, reviewer, supervisor
):
    item = claimed_at(T0, pending_run, reviewer)
    item = postpone(item, reviewer, at=T0 + H, until=T0 + 3 * H)
    assert item.due_at == T0 + 4 * H
    assert resume(item, supervisor, at=T0 + 2 * H).due_at == T0 + 4 * H
    assert "due" not in AuditEvent.objects.get(action="item.postponed").detail


def test_an_overdue_item_stays_overdue_when_postponed_and_brought_back(
    pausing, pending_run, reviewer, supervisor
):
    item = claimed_at(T0, pending_run, reviewer)
    item = postpone(item, reviewer, at=T0 + 5 * H, until=T0 + 8 * H)
    assert item.due_at == T0 + 4 * H
    assert resume(item, supervisor, at=T0 + 6 * H).due_at == T0 + 4 * H


def test_in_business_hours_only_open_time_spent_postponed_moves_the_due_time(
    business_queue, pausing, pending_run, reviewer, supervisor
):
    item = claimed_at(ny("2026-11-20", "16:00"), pending_run, reviewer)
    assert item.due_at == ny("2026-11-24", "12:00")
    # Postponed over the weekend and the day off: only Friday's last half hour passes while it
    # is put aside, so it is due half an hour later.
    item = postpone(item, reviewer, at=ny("2026-11-20", "16:30"), until=ny("2026-11-23", "10:00"))
    assert item.due_at == ny("2026-11-24", "12:30")
    # Tuesday: postponed 10:00-14:00 with 2.5 hours left; brought back at 11:00.
    with time_machine.travel(ny("2026-11-24", "09:55"), tick=False):
        services.item_claim(item=item, user=reviewer)
    item = postpone(item, reviewer, at=ny("2026-11-24", "10:00"), until=ny("2026-11-24", "14:00"))
    assert item.due_at == ny("2026-11-24", "16:30")
    item = resume(item, supervisor, at=ny("2026-11-24", "11:00"))
    assert item.due_at == ny("2026-11-24", "13:30")


# --- The admin ---------------------------------------------------------------------------------


def queue_form(queue: Queue, **values) -> dict:
    return {
        "name": queue.name,
        "description": "",
        "sla": "04:00:00",
        "sla_clock": SlaClock.CALENDAR,
        "warn_before": "00:30:00",
        "next_item_strategy": queue.next_item_strategy,
        "routes-TOTAL_FORMS": "0",
        "routes-INITIAL_FORMS": "0",
        "reason_codes-TOTAL_FORMS": "0",
        "reason_codes-INITIAL_FORMS": "0",
        **values,
    }


def test_the_queue_admin_refuses_business_hours_without_a_calendar_on_that_field(
    admin_client, clinical_queue, billing_office
):
    change = reverse("admin:reviewqueue_queue_change", args=[clinical_queue.pk])
    page = admin_client.get(change).text
    assert "SLA and escalation" in page and "SLA clock stops while postponed" in page

    response = admin_client.post(change, queue_form(clinical_queue, sla_clock="business"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["calendar"]
    assert "needs a business calendar" in errors[0]

    response = admin_client.post(
        change,
        queue_form(
            clinical_queue,
            sla_clock="business",
            calendar=billing_office.pk,
            sla_paused_while_postponed="on",
        ),
    )
    assert response.status_code == 302
    clinical_queue.refresh_from_db()
    assert (clinical_queue.sla_clock, clinical_queue.calendar) == ("business", billing_office)


def calendar_form(calendar: BusinessCalendar, hours: list[OpeningHours], **values) -> dict:
    data = {
        "name": calendar.name,
        "time_zone": calendar.time_zone,
        "country": calendar.country,
        "subdivision": "",
        "opening_hours-TOTAL_FORMS": str(len(hours)),
        "opening_hours-INITIAL_FORMS": str(len(hours)),
        "days_off-TOTAL_FORMS": "0",
        "days_off-INITIAL_FORMS": "0",
    }
    for n, row in enumerate(hours):
        data |= {
            f"opening_hours-{n}-id": str(row.pk),
            f"opening_hours-{n}-calendar": str(calendar.pk),
            f"opening_hours-{n}-weekday": str(row.weekday),
            f"opening_hours-{n}-opens": row.opens.strftime("%H:%M"),
            f"opening_hours-{n}-closes": row.closes.strftime("%H:%M"),
        }
    return data | values


def test_the_calendar_admin_keeps_hours_while_a_queue_counts_on_them(
    admin_client, business_queue, billing_office
):
    change = reverse("admin:reviewqueue_businesscalendar_change", args=[billing_office.pk])
    page = admin_client.get(change).text
    assert "Opening hours" in page and "Days off" in page
    hours = list(billing_office.opening_hours.all())
    every_row_deleted = {f"opening_hours-{n}-DELETE": "on" for n in range(len(hours))}

    response = admin_client.post(change, calendar_form(billing_office, hours, **every_row_deleted))
    assert response.status_code == 200
    assert "Queues count business hours on this calendar (Clinical review)" in response.text
    assert billing_office.opening_hours.count() == 5

    business_queue.sla_clock = SlaClock.CALENDAR
    business_queue.save()
    response = admin_client.post(change, calendar_form(billing_office, hours, **every_row_deleted))
    assert response.status_code == 302
    assert not billing_office.opening_hours.exists()


def test_the_route_admin_shows_the_routes_sla(admin_client, prior_auth_version):
    assert "SLA" in admin_client.get(reverse("admin:reviewqueue_route_changelist")).text


def test_the_demos_billing_queue_runs_on_the_billing_offices_hours_idempotently(db):
    from reviewqueue import demo

    demo.demo_queues_ensure()
    demo.demo_queues_ensure()
    billing = Queue.objects.get(name="Billing")
    calendar = BusinessCalendar.objects.get(name="Billing office")
    assert (billing.sla_clock, billing.calendar, billing.sla) == ("business", calendar, 8 * H)
    assert (calendar.time_zone, calendar.country) == ("America/New_York", "US")
    assert calendar.opening_hours.count() == 5
    billing.full_clean()
    # Put back on calendar hours by an admin, it stays there when the demo loads again.
    billing.sla_clock = SlaClock.CALENDAR
    billing.save()
    demo.demo_queues_ensure()
    billing.refresh_from_db()
    assert billing.sla_clock == SlaClock.CALENDAR
