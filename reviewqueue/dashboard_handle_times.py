"""Handle times of the supervisors' dashboard: claim to submit of each answer delivered in a
period, as percentiles per queue, per person and overall, and how they read.

Handle time runs from the submitter's latest claim at or before the answer, which the answer
keeps (``Submission.claimed_at``, set when it is made), so rework after a 400 counts and time
spent by someone who released the item does not (docs/supervisors.md, "Handle time"). The
completed-work and throughput exports read the same column.
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import DurationField, ExpressionWrapper, F


@dataclass(frozen=True)
class HandleTimes:
    """Claim to submit of the period's answers: (median, p90) per queue, the median per person,
    and how many answers had a claim to measure from."""

    queues: dict[int, tuple[timedelta | None, timedelta | None]]
    people: dict[int, timedelta | None]
    samples: int


def handle_times(in_period: Any) -> HandleTimes:
    """Claim to submit of each answer delivered in the period: from the submitter's latest claim
    at or before the answer, which the answer keeps (``Submission.claimed_at``); an answer with
    no such claim (the item was reassigned to its submitter) has no handle time.

    One query on PostgreSQL, from the delivered answers' index alone: the percentiles are
    ``percentile_cont`` over grouping sets per queue, per person and overall, so no answer
    crosses the wire, however long the period. SQLite has no ``percentile_cont``: there the
    durations are read and ``percentile`` (the same interpolation) runs in Python."""
    durations = in_period.annotate(
        handle=ExpressionWrapper(F("created_at") - F("claimed_at"), output_field=DurationField())
    ).values_list("item__queue_id", "submitted_by_id", "handle")
    if connection.vendor != "postgresql":
        per_queue: dict[int, list[timedelta]] = defaultdict(list)
        per_person: dict[int, list[timedelta]] = defaultdict(list)
        for queue_id, user_id, handle in durations:
            if handle is not None:
                per_queue[queue_id].append(handle)
                per_person[user_id].append(handle)
        return HandleTimes(
            queues={
                pk: (percentile(times, 0.5), percentile(times, 0.9))
                for pk, times in per_queue.items()
            },
            people={pk: percentile(times, 0.5) for pk, times in per_person.items()},
            samples=sum(len(times) for times in per_queue.values()),
        )
    try:
        inner, params = durations.query.sql_with_params()
    except EmptyResultSet:  # filtered by an unknown template: no answers
        return HandleTimes(queues={}, people={}, samples=0)
    grouped = f"""
        SELECT GROUPING(queue_id, user_id), queue_id, user_id, count(handle),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY handle),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY handle)
        FROM ({inner}) AS answers (queue_id, user_id, handle)
        GROUP BY GROUPING SETS ((queue_id), (user_id), ())
    """
    # No "WHERE handle IS NOT NULL": the aggregates skip NULLs anyway.
    queues: dict[int, tuple[timedelta | None, timedelta | None]] = {}
    people: dict[int, timedelta | None] = {}
    samples = 0
    # (Without JIT: ``dashboard`` turns it off for all its statements.)
    with connection.cursor() as cursor:
        cursor.execute(grouped, params)
        # GROUPING() is a bit mask of the columns left out: 1 = user, 2 = queue, 3 = both.
        for left_out, queue_id, user_id, n, median, p90 in cursor.fetchall():
            if left_out == 1:
                queues[queue_id] = (median, p90)
            elif left_out == 2:
                people[user_id] = median
            else:
                samples = n
    return HandleTimes(queues=queues, people=people, samples=samples)


def percentile(values: Iterable[timedelta], fraction: float) -> timedelta | None:
    """Linear interpolation between the closest ranks, as PostgreSQL's ``percentile_cont``:
    the median of [1, 2, 3, 4] is 2.5; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def duration_text(value: timedelta | None) -> str:
    """A handle time as people read it: 45 s, 12 min, 1 h 05 min, 2 d 3 h; — for none."""
    if value is None:
        return "—"
    seconds = round(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
