"""SLA clocks: how much time an item has, counted around the clock or in a calendar's business
hours, and when it is due.

A business calendar is read once (``business_hours``) into a value object that answers both
questions without the database: ``add`` (the instant a given amount of open time has passed) and
``between`` (the open time between two instants). Both walk open stretches, never minutes, so a
chunk of thousands of items opening at once costs a few microseconds each.

Opening hours are wall-clock times in the calendar's zone; every stretch is turned into UTC
instants before any arithmetic. (Python subtracts two datetimes sharing one tzinfo by their wall
clocks, which would count a DST day's 9:00-17:00 as 8 hours whatever happened at 2:00.)
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings

from reviewqueue.models import SlaClock

if TYPE_CHECKING:
    from reviewqueue.models import BusinessCalendar, Queue

logger = logging.getLogger(__name__)

ZERO = timedelta(0)
# A calendar closed this many days in a row is taken as never opening again (a year of days
# off): an answer "never" beats a loop that never ends.
CLOSED_DAYS_MAX = 2 * 366

Stretch = tuple[datetime, datetime]  # an open stretch as UTC instants, opens < closes


class CalendarNeverOpen(ValueError):
    """The calendar has no open time to count (no opening hours, or closed for years)."""


class Clock(Protocol):
    """A queue's SLA clock: calendar hours or a calendar's business hours."""

    def add(self, start: datetime, duration: timedelta) -> datetime: ...

    def between(self, start: datetime, end: datetime) -> timedelta: ...


class CalendarHours:
    """Around the clock: every second counts."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        return start + duration

    def between(self, start: datetime, end: datetime) -> timedelta:
        return max(end - start, ZERO)


CALENDAR_HOURS = CalendarHours()


@dataclass(frozen=True)
class BusinessHours:
    """A business calendar as plain values: opening stretches per weekday (Monday is 0), in
    ``zone``, and the dates it is closed on (its days off and public holidays)."""

    name: str
    zone: ZoneInfo
    weekly: tuple[tuple[tuple[time, time], ...], ...]
    days_off: frozenset[date] = frozenset()
    public_holidays: holidays.HolidayBase | None = None
    # date → its open stretches in UTC: items opening together ask about the same few days.
    _stretches: dict[date, tuple[Stretch, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if len(self.weekly) != 7 or not any(self.weekly):
            raise CalendarNeverOpen(
                f"The calendar “{self.name}” has no opening hours, so business hours cannot be "
                "counted on it."
            )

    def is_closed(self, day: date) -> bool:
        return (
            not self.weekly[day.weekday()]
            or day in self.days_off
            or (self.public_holidays is not None and day in self.public_holidays)
        )

    def stretches_on(self, day: date) -> tuple[Stretch, ...]:
        """The open stretches of the local date ``day``, as UTC instants (none when closed)."""
        cached = self._stretches.get(day)
        if cached is None:
            cached = (
                ()
                if self.is_closed(day)
                else tuple(self._utc(day, hours) for hours in self.weekly[day.weekday()])
            )
            self._stretches[day] = cached
        return cached

    def _utc(self, day: date, hours: tuple[time, time]) -> Stretch:
        # A wall time that does not exist (in the spring-forward gap) or exists twice (fall
        # back) takes zoneinfo's fold=0 reading: the offset before the change.
        opens, closes = hours
        return (
            datetime.combine(day, opens, tzinfo=self.zone).astimezone(UTC),
            datetime.combine(day, closes, tzinfo=self.zone).astimezone(UTC),
        )

    def stretches_from(self, start: datetime) -> Iterator[Stretch]:
        """The open stretches that end after ``start``, in order, the first cut to begin at
        ``start``; endless, but refuses a calendar closed for ``CLOSED_DAYS_MAX`` days."""
        start = start.astimezone(UTC)
        day = start.astimezone(self.zone).date()
        closed_days = 0
        while True:
            stretches = self.stretches_on(day)
            closed_days = 0 if stretches else closed_days + 1
            if closed_days > CLOSED_DAYS_MAX:
                raise CalendarNeverOpen(
                    f"The calendar “{self.name}” is closed for over {CLOSED_DAYS_MAX} days "
                    f"from {day:%Y-%m-%d}."
                )
            for opens, closes in stretches:
                if closes > start:
                    yield max(opens, start), closes
            day += timedelta(days=1)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which ``duration`` of open time has passed since ``start``. Work that
        fits exactly ends at a closing time (Friday 16:00 + 1 hour is Friday 17:00), not at the
        next opening."""
        if duration <= ZERO:
            return start
        left = duration
        for opens, closes in self.stretches_from(start):
            if left <= closes - opens:
                return opens + left
            left -= closes - opens
        raise AssertionError("stretches_from never ends")  # pragma: no cover

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The open time from ``start`` to ``end`` (nothing when ``end`` is not later)."""
        if end <= start:
            return ZERO
        total = ZERO
        end = end.astimezone(UTC)
        for opens, closes in self.stretches_from(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total


def business_hours(calendar: "BusinessCalendar") -> BusinessHours:
    """Read ``calendar`` (its opening hours and days off: two queries) into ``BusinessHours``.
    ``CalendarNeverOpen`` when it has no opening hours."""
    weekly: list[list[tuple[time, time]]] = [[] for _ in range(7)]
    for hours in calendar.opening_hours.order_by("weekday", "opens"):
        weekly[hours.weekday].append((hours.opens, hours.closes))
    return BusinessHours(
        name=calendar.name,
        zone=ZoneInfo(calendar.time_zone or settings.TIME_ZONE),
        weekly=tuple(_merged(day) for day in weekly),
        days_off=frozenset(calendar.days_off.values_list("date", flat=True)),
        public_holidays=public_holidays(calendar.country, calendar.subdivision),
    )


def _merged(stretches: list[tuple[time, time]]) -> tuple[tuple[time, time], ...]:
    """Overlapping stretches (9-12 and 11-17, typed in the admin) as one, counted once."""
    merged: list[tuple[time, time]] = []
    for opens, closes in sorted(stretches):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(closes, merged[-1][1]))
        else:
            merged.append((opens, closes))
    return tuple(merged)


def public_holidays(country: str, subdivision: str = "") -> holidays.HolidayBase | None:
    """The ``holidays`` package's public holidays of ``country`` (and ``subdivision``), or None
    for a blank country. Years are filled in as dates are asked about. A code the package does
    not know raises NotImplementedError (``holidays_check`` says so in words)."""
    if not country:
        return None
    return holidays.country_holidays(country, subdiv=subdivision or None)


def holidays_check(country: str, subdivision: str) -> dict[str, str]:
    """Field → message for a country or subdivision the ``holidays`` package does not know."""
    if not country:
        return {"subdivision": "Choose a country first."} if subdivision else {}
    supported = holidays.list_supported_countries()
    if country not in supported:
        return {"country": f"“{country}” is no country the holidays package knows (e.g. US)."}
    if subdivision and subdivision not in supported[country]:
        known = ", ".join(supported[country][:12]) + ("…" if len(supported[country]) > 12 else "")
        return {"subdivision": f"“{subdivision}” is no subdivision of {country} ({known})."}
    return {}


# --- A queue's clock and its items' due times --------------------------------------------------


def sla_clock(queue: "Queue") -> Clock:
    """The clock ``queue``'s SLA runs on. A business clock whose calendar cannot count (none, or
    one without opening hours: ``Queue.clean`` refuses both, the shell does not) falls back to
    calendar hours with an error in the log, so that items still open with a due time."""
    if queue.sla_clock != SlaClock.BUSINESS:
        return CALENDAR_HOURS
    if queue.calendar is None:
        logger.error("queue %s runs on business hours but has no calendar", queue.pk)
        return CALENDAR_HOURS
    try:
        return business_hours(queue.calendar)
    except CalendarNeverOpen as exc:
        logger.error("queue %s falls back to calendar hours: %s", queue.pk, exc)
        return CALENDAR_HOURS


def item_due_at(
    *,
    queue: "Queue",
    route_sla: timedelta | None,
    opened_at: datetime,
    clock: Clock | None = None,
) -> datetime:
    """When an item opened at ``opened_at`` is due: its route's SLA, else its queue's, on the
    queue's clock. Pass ``clock`` (``sla_clock(queue)``) when opening many items of a queue."""
    sla = route_sla if route_sla is not None else queue.sla
    return (clock or sla_clock(queue)).add(opened_at, sla)


# --- The clock stops while an item is postponed ------------------------------------------------


def due_after_postponing(
    *, clock: Clock, due_at: datetime, now: datetime, until: datetime
) -> datetime:
    """An item postponed at ``now`` until ``until`` keeps the SLA time it had left, which
    starts running again at ``until``. An overdue item stays overdue: no time is left to keep."""
    if due_at <= now:
        return due_at
    return clock.add(until, clock.between(now, due_at))


def due_after_resuming_early(
    *, clock: Clock, due_at: datetime, now: datetime, until: datetime
) -> datetime:
    """A postponement (until ``until``) that ends at ``now`` instead gives back the unspent part:
    the time left at ``until`` (``due_after_postponing`` put it after ``until``) runs from
    ``now``. A due time not after ``until`` was never moved on (overdue when postponed, or the
    queue's clock did not stop then) and stays."""
    if due_at <= until:
        return due_at
    return clock.add(now, clock.between(until, due_at))
