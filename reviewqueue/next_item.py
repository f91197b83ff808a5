"""Which item "Get next" hands out: each queue's strategy (``Queue.next_item_strategy``) picks
that queue's next item; between queues, the most urgent of those picks goes first.

Every pick is ``select_for_update(skip_locked=True)`` on the item alone (``of=("self",)``: a
round robin joins the item's version, whose row must not be locked), so people pressing "Get
next" at once are handed different items without waiting for each other. The caller's
transaction holds the locks; this module changes nothing but a round robin's turn.
"""

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import F, QuerySet

from reviewqueue.models import NextItemStrategy, Queue, ReviewItem

MOST_URGENT = (F("priority").desc(), "due_at", "pk")


def pick(
    candidates: QuerySet[ReviewItem], *, user: Any, queues: Iterable[Queue]
) -> ReviewItem | None:
    """The item to hand ``user`` from ``candidates`` (items they may take now), by the
    strategies of ``queues`` (the queues they work). One query when every queue hands out the
    most urgent item first, the default."""
    by_strategy: dict[str, list[Queue]] = defaultdict(list)
    for queue in queues:
        by_strategy[queue.next_item_strategy].append(queue)
    if set(by_strategy) <= {NextItemStrategy.MOST_URGENT}:
        return _first(candidates, MOST_URGENT)

    picks: list[tuple[bool, ReviewItem]] = []  # (returned to ``user``, item)
    for strategy, strategy_queues in by_strategy.items():
        in_queues = candidates.filter(queue__in=[queue.pk for queue in strategy_queues])
        if strategy == NextItemStrategy.ROUND_ROBIN:
            found = [_round_robin(in_queues, queue) for queue in strategy_queues]
            picks += [(False, item) for item in found if item is not None]
        elif strategy == NextItemStrategy.RETURNED_FIRST:
            returned = _first(in_queues.filter(returned_to=user), MOST_URGENT)
            if returned is not None:
                picks.append((True, returned))
            elif (item := _first(in_queues, MOST_URGENT)) is not None:
                picks.append((False, item))
        elif strategy == NextItemStrategy.OLDEST:
            if (item := _first(in_queues, ("opened_at", "pk"))) is not None:
                picks.append((False, item))
        elif (item := _first(in_queues, MOST_URGENT)) is not None:
            picks.append((False, item))
    if not picks:
        return None
    # Returned to me (where the queue says so) first, then the most urgent pick.
    _, chosen = min(picks, key=lambda p: (not p[0], -p[1].priority, p[1].due_at, p[1].pk))
    if chosen.queue.next_item_strategy == NextItemStrategy.ROUND_ROBIN:
        # A plain UPDATE: the turn is bookkeeping, not configuration (no audit, no signal).
        Queue.objects.filter(pk=chosen.queue_id).update(
            last_served_template=chosen.version.template_id
        )
    return chosen


def _first(items: QuerySet[ReviewItem], order: tuple[Any, ...]) -> ReviewItem | None:
    return (
        items.select_for_update(skip_locked=True, of=("self",))
        .select_related("queue", "version")
        .order_by(*order)
        .first()
    )


def _round_robin(items: QuerySet[ReviewItem], queue: Queue) -> ReviewItem | None:
    """The most urgent item of the template after the one served last in ``queue`` (templates
    in id order, wrapping round), so that no template waits behind another's backlog."""
    in_queue = items.filter(queue=queue)
    order = ("version__template_id", *MOST_URGENT)
    last = queue.last_served_template_id
    if last is not None:
        after = _first(in_queue.filter(version__template_id__gt=last), order)
        if after is not None:
            return after
    return _first(in_queue, order)
