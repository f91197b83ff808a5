"""Escalation: an item that nears its due time, and again once it is overdue, rises in priority
and its queue's supervisors (and whoever holds it) are told. Each step happens once per item,
with one audit event (``item.escalated``, ``stage`` near_due or overdue).

Beat runs ``items_escalate`` every minute (``tasks.escalate_items``). Two runs may overlap (a slow
one and the next): the conditional UPDATE on the step's timestamp settles which one escalates.

Priority rises by ``PRIORITY_STEP`` per step, so an overdue item always stands two steps above
where it opened, whether or not a run caught it near its due time first: one that is already
overdue when first seen (it opened overdue, or beat was down) takes both steps at once, with
one notice, "overdue".
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Case, DateTimeField, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from reviewqueue.business_hours import Clock, sla_clock
from reviewqueue.models import (
    WORKABLE_STATUSES,
    ItemStatus,
    NotificationKind,
    Queue,
    ReviewItem,
)
from reviewqueue.notifications import item_label, notify, supervisors_of
from reviewqueue.services import audit_record

NEAR_DUE = "near_due"
OVERDUE = "overdue"
PRIORITY_STEP = 1
# Items escalated per stage and run: a first run over a backlog (or after beat was down) goes
# on in the next minute's run rather than past the task's time limit.
BATCH_MAX = 500


def items_escalate(*, now: datetime | None = None, batch: int = BATCH_MAX) -> int:
    """Escalate the workable items (open, postponed too, or claimed) that are overdue, then
    those near their due time on their queue's SLA clock; returns how many steps were taken."""
    now = now or timezone.now()
    workable = ReviewItem.objects.filter(status__in=WORKABLE_STATUSES)
    overdue = workable.filter(due_at__lt=now, escalated_overdue_at=None)
    near_due = workable.filter(_near_due(now), due_at__gte=now, escalated_near_due_at=None)
    supervisors: dict[int, list[Any]] = {}  # queue id → its supervisors, read once per run
    escalated = 0
    for stage, items in ((OVERDUE, overdue), (NEAR_DUE, near_due)):
        for item in _oldest_due_first(items, batch):
            escalated += item_escalate(item=item, stage=stage, now=now, supervisors=supervisors)
    return escalated


def _near_due(now: datetime) -> Q:
    """Items due within their queue's ``warn_before`` of ``now``, counted on the queue's clock.
    For each queue the clock gives the instant ``warn_before`` from now (business hours skip
    nights, weekends and holidays), so the database compares ``due_at`` with it and reads only
    the rows to escalate. Queues sharing an instant share one condition."""
    clocks: dict[tuple[str, int | None], Clock] = {}  # one reading of each calendar per run
    queue_ids_by_threshold: dict[datetime, list[int]] = {}
    for queue in Queue.objects.select_related("calendar"):
        key = (queue.sla_clock, queue.calendar_id)
        if key not in clocks:
            clocks[key] = sla_clock(queue)
        threshold = clocks[key].add(now, queue.warn_before)
        queue_ids_by_threshold.setdefault(threshold, []).append(queue.pk)
    condition = Q(pk__in=[])
    for threshold, queue_ids in queue_ids_by_threshold.items():
        condition |= Q(queue_id__in=queue_ids, due_at__lte=threshold)
    return condition


def _oldest_due_first(items: QuerySet[ReviewItem], batch: int) -> Iterable[ReviewItem]:
    return items.select_related("version", "claimed_by").order_by("due_at", "pk")[:batch]


def item_escalate(
    *,
    item: ReviewItem,
    stage: str,
    now: datetime,
    supervisors: dict[int, list[Any]] | None = None,
) -> int:
    """Take one escalation step for ``item`` as read: raise its priority, tell its queue's
    supervisors and its holder, audit it. Returns 1, or 0 when another run took the step first
    or the item changed since it was read: no longer workable (answered, closed), or given a
    new due time (postponed on a clock that stops), which the next run looks at afresh."""
    if supervisors is None:
        supervisors = {}
    with transaction.atomic():
        # Conditional: of two overlapping runs, one touches the row and the other nothing.
        still = ReviewItem.objects.filter(
            pk=item.pk, status__in=WORKABLE_STATUSES, due_at=item.due_at
        )
        if stage == OVERDUE:
            taken = still.filter(escalated_overdue_at=None).update(
                escalated_overdue_at=now,
                escalated_near_due_at=Coalesce(
                    "escalated_near_due_at", Value(now, output_field=DateTimeField())
                ),
                # Both steps at once when the near-due one was never taken.
                priority=F("priority")
                + Case(
                    When(escalated_near_due_at=None, then=Value(2 * PRIORITY_STEP)),
                    default=Value(PRIORITY_STEP),
                ),
            )
        else:
            taken = still.filter(escalated_near_due_at=None).update(
                escalated_near_due_at=now, priority=F("priority") + PRIORITY_STEP
            )
        if not taken:
            return 0
        item.refresh_from_db(fields=["priority", "status", "claimed_by"])
        if item.queue_id not in supervisors:
            supervisors[item.queue_id] = list(supervisors_of(item))
        holder = item.claimed_by if item.status == ItemStatus.CLAIMED else None
        label = item_label(item)
        notify(
            users=[*supervisors[item.queue_id], holder],
            kind=NotificationKind.OVERDUE if stage == OVERDUE else NotificationKind.NEAR_DUE,
            item=item,
            text=f"{label} is overdue." if stage == OVERDUE else f"{label} is due soon.",
        )
        audit_record(
            action="item.escalated",
            item=item,
            stage=stage,
            priority=item.priority,
            due=item.due_at.isoformat(),
        )
    return 1
