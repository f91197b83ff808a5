"""State changes of the review queue: items open and close with the Run's pauses, staff claim,
draft, note and submit, and the outbox delivers submissions with Update Run.

Every change checks its source state against the maps in ``models.py``, writes the status with
its timestamp, appends an audit event, and defers side effects with ``transaction.on_commit``.
Races are settled by the database: conditional UPDATEs that must touch one row, unique
constraints, and ``select_for_update(skip_locked=True)`` for "get next".
"""

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

import flowspec
from audit import services as audit
from audit.models import AuditEvent
from flows_integration import client as flows_client
from flows_integration import services as integration
from flows_integration.models import (
    TERMINAL_STATUSES,
    FlowRun,
    RunStatus,
    TemplateVersion,
    WebhookEvent,
)
from flows_integration.services import health_record_failure, health_record_success
from flows_integration.signals import RunChange
from reviewqueue import next_item, notifications, roles
from reviewqueue.business_hours import (
    due_after_postponing,
    due_after_resuming_early,
    item_due_at,
    sla_clock,
)
from reviewqueue.models import (
    ACTIVE_STATUSES,
    ITEM_TRANSITIONS,
    SUBMISSION_TRANSITIONS,
    WORKABLE_STATUSES,
    Draft,
    ItemReason,
    ItemStatus,
    Note,
    NotificationKind,
    Queue,
    ReasonCode,
    ReasonKind,
    ReviewItem,
    Route,
    StaffPreferences,
    Submission,
    SubmissionStatus,
)
from reviewqueue.schema_forms import FIELDS, PART, READING
from reviewqueue.selectors import (
    barred,
    declined_by,
    earlier_answerer,
    items_visible_to,
    not_postponed,
    queues_visible_to,
    separation_reason,
)

logger = logging.getLogger(__name__)


class ReviewError(Exception):
    """An action that the item's current state does not allow; the message is for the user."""


class NotYourClaim(ReviewError):
    pass


class RunMovedOn(ReviewError):
    """The Run is no longer PENDING at the item's state: input is refused and kept as a draft."""


class SeparationOfDuties(ReviewError):
    """The item's route wants another person than those who answered the Run's other steps."""


class GetNextPaused(ReviewError):
    """A supervisor paused this person's "get next" (out sick, away)."""


class DraftTooLarge(ReviewError):
    """A draft past DRAFT_FIELDS_MAX, DRAFT_VALUE_MAX or DRAFT_TOTAL_MAX: nothing is kept."""


# --- Audit -----------------------------------------------------------------------------------


def audit_record(
    *,
    action: str,
    actor: Any = None,
    item: ReviewItem | None = None,
    flow_run_id: Any = None,
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append one audit event, named by its item and the item's Run."""
    return audit.audit_record(
        action=action, actor=actor, ip=ip, **_item_fields(item, flow_run_id), **detail
    )


def audit_read(
    *,
    action: str,
    actor: Any,
    item: ReviewItem | None = None,
    flow_run_id: Any = None,
    ip: str | None = None,
    **detail: Any,
) -> None:
    """Record that ``actor`` read patient data, unless they read exactly this a moment ago."""
    audit.audit_read(action=action, actor=actor, ip=ip, **_item_fields(item, flow_run_id), **detail)


def _item_fields(item: ReviewItem | None, flow_run_id: Any = None) -> dict[str, Any]:
    if item is None:
        return {"item_id": None, "flow_run_id": flow_run_id}
    return {"item_id": item.pk, "flow_run_id": flow_run_id or item.run_ref}


def signin_unlock(*, kind: str, value: str, user: Any, ip: str | None = None) -> int:
    """Let a locked-out username or address try to sign in again; audited. Returns how many
    attempt records were cleared (0: it was not locked, or its lock had already run out)."""
    from axes.utils import reset

    if kind not in ("username", "address"):
        raise ReviewError("Unlock a username or an address.")
    cleared = reset(username=value) if kind == "username" else reset(ip=value)
    audit_record(action="signin.unlocked", actor=user, ip=ip, kind=kind, value=value)
    return cleared


def _transition(item: ReviewItem, status: str) -> None:
    if status not in ITEM_TRANSITIONS[item.status]:
        raise ReviewError(f"This item is {item.get_status_display().lower()}.")
    now = timezone.now()
    item.status = status
    item.status_changed_at = now
    if status in ACTIVE_STATUSES:
        item.closed_at = None
    else:
        item.closed_at = now
    if status != ItemStatus.CLAIMED:
        item.lease_until = None
        if status in (ItemStatus.OPEN, ItemStatus.SUPERSEDED, ItemStatus.RESUMED):
            item.claimed_by = None


def _submission_transition(submission: Submission, status: str) -> None:
    if status not in SUBMISSION_TRANSITIONS[submission.status]:
        raise ReviewError(f"This submission is {submission.get_status_display().lower()}.")
    submission.status = status
    if status == SubmissionStatus.PENDING:
        submission.finished_at = None  # sent again
    else:
        submission.finished_at = timezone.now()
        submission.locked_until = None


# --- Opening and closing with the Run's pauses -----------------------------------------------


class Routing(NamedTuple):
    queue: Queue
    priority: int
    sla: timedelta | None  # the route's own SLA; None: the queue's


def route_for(run: FlowRun, state_id: str) -> Routing:
    """The queue, priority and SLA for a pause: the state's route, else the template's, else
    the default queue."""
    routes = Route.objects.filter(template_id=run.template_id, state_id__in=[state_id, ""])
    return _routed(list(routes.select_related("queue__calendar")), run, state_id, default_queue)


def _routed(
    routes: list[Route], run: FlowRun, state_id: str, default: Callable[[], Queue]
) -> Routing:
    """``route_for`` over routes already read (any of the template's)."""
    fitting = [route for route in routes if route.state_id in (state_id, "")]
    route = min(fitting, key=lambda r: r.state_id == "", default=None)
    if route is None:
        return Routing(default(), 0, None)
    return Routing(route.queue, _priority(route, run), route.sla)


def default_queue() -> Queue:
    """Made by a migration; made again here if a test database was flushed since."""
    return Queue.objects.get_or_create(
        is_default=True, defaults={"name": "Unrouted", "description": "Items that no route names."}
    )[0]


def _priority(route: Route, run: FlowRun) -> int:
    if route.priority_path:
        try:
            value = flowspec.resolve_path(route.priority_path, {"input": run.input_data})
        except flowspec.PathError:
            value = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return route.priority


def patient_name(input_data: Mapping[str, Any]) -> str:
    """The patient's name where the Run's input has one (``patient.firstName``/``lastName`` or
    ``patient.name``), for searching the queue."""
    patient = input_data.get("patient") if isinstance(input_data, Mapping) else None
    if not isinstance(patient, Mapping):
        return ""
    if isinstance(patient.get("name"), str):
        return patient["name"][:200]
    parts = [patient.get("firstName"), patient.get("lastName")]
    return " ".join(p for p in parts if isinstance(p, str))[:200]


def item_open(*, run: FlowRun, state_id: str) -> ReviewItem | None:
    """Open the item for a Run's new pause (the Run entered PENDING at ``state_id``).

    Idempotent: a second signal for the same pause finds the active item and does nothing.
    A Run whose version or state is unknown is not guessed: it waits in triage
    (``selectors.runs_in_triage``) until a person says which it is.
    """
    version = run.version
    if version is None or not state_id:
        logger.info("run %s waits in triage: its template or state is not known", run.flow_run_id)
        return None
    if version.callback_state(state_id) is None:
        logger.warning(
            "run %s waits in triage: %s has no callback state %r",
            run.flow_run_id,
            version,
            state_id,
        )
        return None
    # Only the latest episode can be active: an item opens after the one before has closed.
    latest = run.review_items.order_by("-episode").first()
    active = latest if latest is not None and latest.is_active else None
    if active is not None:
        if active.state_id == state_id and active.status != ItemStatus.DELIVERED:
            return None  # the same pause, announced twice
        # The Run moved from one pause to the next without us seeing it leave.
        item_close(run=run, new_status=RunStatus.PENDING)
        if active.status == ItemStatus.SENDING:
            return None  # its delivery task settles it, then opens this pause
    queue, priority, route_sla = route_for(run, state_id)
    try:
        with transaction.atomic():
            item = _new_item(
                run, version, state_id, (latest.episode if latest is not None else 0) + 1
            )
            item.queue, item.priority = queue, priority
            item.due_at = item_due_at(queue=queue, route_sla=route_sla, opened_at=item.opened_at)
            item.save(force_insert=True)
    except IntegrityError:
        # Two signals for the same pause at the same moment: the other one opened it.
        return None
    audit_record(action="item.opened", item=item, queue=queue.pk, state=state_id)
    return item


def _new_item(run: FlowRun, version: TemplateVersion, state_id: str, episode: int) -> ReviewItem:
    """An item for a Run's pause, not saved yet; its queue, priority and due time are the
    caller's (routed one by one, or from routes read for a whole chunk)."""
    now = timezone.now()
    return ReviewItem(
        run=run,
        episode=episode,
        version=version,
        state_id=state_id,
        opened_at=now,
        status_changed_at=now,
        patient_name=patient_name(run.input_data),
        run_ref=str(run.flow_run_id),
    )


def item_close(*, run: FlowRun, new_status: str) -> ReviewItem | None:
    """The Run left its pause. An item we delivered for is resumed; one still sending is left to
    its delivery task, which asks Get Run; anything else was superseded, its input kept."""
    item = (
        ReviewItem.objects.select_for_update()
        .filter(run=run, status__in=ACTIVE_STATUSES)
        .exclude(status=ItemStatus.SENDING)
        .first()
    )
    if item is None:
        _nudge_sending(run)
        return None
    unconfirmed = (
        item.submissions.filter(status=SubmissionStatus.FAILED, maybe_sent=True).first()
        if item.status == ItemStatus.NEEDS_ATTENTION
        else None
    )
    if unconfirmed is not None:
        # Retries ran out not knowing whether the answer arrived; the Run leaving the pause
        # after it was sent says it did (as Get Run would, see ``_pause_left``).
        _answer_arrived(unconfirmed, item, settled_by="the Run moved on")
        _transition(item, ItemStatus.RESUMED)
        action = "item.resumed"
    elif item.status == ItemStatus.DELIVERED:
        _transition(item, ItemStatus.RESUMED)
        action = "item.resumed"
    else:
        _transition(item, ItemStatus.SUPERSEDED)
        action = "item.superseded"
        _failed_input_to_draft(item)
    item.save()
    audit_record(action=action, item=item, run_status=new_status)
    return item


def _open_current_pause(run: FlowRun, *, settled: ReviewItem) -> None:
    """A pause that arrived while ``settled`` was still sending gets its item once that settles.

    A mirror still showing ``settled``'s own state is not a new pause but a mirror that has not
    caught up (a 409 says the Run moved on): opening it would put an answered pause back in the
    queue. ``item_open`` reads a second signal for the same state the same way.
    """
    if (
        run.status == RunStatus.PENDING
        and run.state_id != settled.state_id
        and not run.review_items.filter(status__in=ACTIVE_STATUSES).exists()
    ):
        item_open(run=run, state_id=run.state_id)


def _nudge_sending(run: FlowRun) -> None:
    for submission_id in Submission.objects.filter(
        item__run=run, item__status=ItemStatus.SENDING, status=SubmissionStatus.PENDING
    ).values_list("pk", flat=True):
        transaction.on_commit(partial(_enqueue_delivery, submission_id), robust=True)


def _failed_input_to_draft(item: ReviewItem) -> None:
    """Input that never reached the Run stays with its author: the draft saved at submit is
    deleted only once a submission is delivered."""
    failed = item.submissions.filter(status=SubmissionStatus.FAILED).first()
    if failed is not None:
        _submission_transition(failed, SubmissionStatus.REFUSED)
        failed.save()


def on_runs_status_changed(*, changes: list[RunChange], **_: Any) -> None:
    """``runs_status_changed`` receiver (a reconcile chunk): ``item_open`` and ``item_close``
    set-wise, a fixed number of statements per chunk. The rare cases they treat specially (an
    item still sending or needing attention, a Run moving between pauses) go one by one."""
    closing = [c for c in changes if c.old_status == RunStatus.PENDING]
    if closing:
        _items_close_many(closing)
    pausing = [c for c in changes if c.new_status == RunStatus.PENDING]
    if pausing:
        _items_open_many(pausing)


def _items_close_many(changes: list[RunChange]) -> None:
    new_status = {change.run.pk: change.new_status for change in changes}
    runs = {change.run.pk: change.run for change in changes}
    active = ReviewItem.objects.select_for_update().filter(
        run_id__in=list(runs), status__in=ACTIVE_STATUSES
    )
    closed: list[ReviewItem] = []
    sending: list[int] = []
    for item in active.order_by("pk"):
        if item.status == ItemStatus.SENDING:
            sending.append(item.run_id)
        elif (
            item.status == ItemStatus.NEEDS_ATTENTION
            or new_status[item.run_id] == RunStatus.PENDING
        ):
            # A submission to settle, or a Run that moved to another pause: the careful way.
            item_close(run=runs[item.run_id], new_status=new_status[item.run_id])
        else:
            _transition(
                item,
                ItemStatus.RESUMED
                if item.status == ItemStatus.DELIVERED
                else ItemStatus.SUPERSEDED,
            )
            closed.append(item)
    if closed:
        ReviewItem.objects.bulk_update(
            closed, ["status", "status_changed_at", "closed_at", "lease_until", "claimed_by"]
        )
        audit.append(
            audit.audit_event(
                action="item.resumed" if item.status == ItemStatus.RESUMED else "item.superseded",
                **_item_fields(item),
                detail={"run_status": new_status[item.run_id]},
            )
            for item in closed
        )
    for submission_id in Submission.objects.filter(
        item__run_id__in=sending, item__status=ItemStatus.SENDING, status=SubmissionStatus.PENDING
    ).values_list("pk", flat=True):
        transaction.on_commit(partial(_enqueue_delivery, submission_id), robust=True)


def _items_open_many(changes: list[RunChange]) -> None:
    run_ids = [change.run.pk for change in changes]
    versions = TemplateVersion.objects.in_bulk({change.run.version_id for change in changes})
    active = {
        item.run_id: item
        for item in ReviewItem.objects.filter(run_id__in=run_ids, status__in=ACTIVE_STATUSES)
    }
    episodes = dict(
        ReviewItem.objects.filter(run_id__in=run_ids)
        .values_list("run_id")
        .annotate(latest=Max("episode"))
        .values_list("run_id", "latest")
    )
    routes: dict[int, list[Route]] = {}
    for route in Route.objects.filter(
        template_id__in={version.template_id for version in versions.values()}
    ).select_related("queue__calendar"):
        routes.setdefault(route.template_id, []).append(route)
    unrouted = cache(default_queue)  # read once per chunk, if at all
    clock_of = cache(sla_clock)  # a business calendar read once per queue and chunk
    new: list[ReviewItem] = []
    for change in changes:
        run, state_id = change.run, change.state_id
        version = versions.get(run.version_id)
        if version is None or not state_id or version.callback_state(state_id) is None:
            continue  # in triage (see item_open)
        standing = active.get(run.pk)
        if standing is not None:
            if standing.state_id == state_id and standing.status != ItemStatus.DELIVERED:
                continue  # the same pause, announced twice
            item_open(run=run, state_id=state_id)  # the next pause: the careful way
            continue
        item = _new_item(run, version, state_id, episodes.get(run.pk, 0) + 1)
        queue, priority, route_sla = _routed(
            routes.get(version.template_id, []), run, state_id, unrouted
        )
        item.queue, item.priority = queue, priority
        item.due_at = item_due_at(
            queue=queue, route_sla=route_sla, opened_at=item.opened_at, clock=clock_of(queue)
        )
        new.append(item)
    if not new:
        return
    try:
        with transaction.atomic():  # a savepoint: a webhook's refresh may have opened one
            ReviewItem.objects.bulk_create(new)
    except IntegrityError:
        for item in new:
            item_open(run=item.run, state_id=item.state_id)
        return
    audit.append(
        audit.audit_event(
            action="item.opened",
            **_item_fields(item),
            detail={"queue": item.queue_id, "state": item.state_id},
        )
        for item in new
    )


def on_run_status_changed(
    *, run: FlowRun, old_status: str, new_status: str, state_id: str, **_: Any
) -> None:
    """``run_status_changed`` receiver: sent inside the mirror's transaction, so an item opens
    or closes atomically with the mirror row it follows."""
    if new_status == RunStatus.PENDING:
        item_open(run=run, state_id=state_id)
    elif old_status == RunStatus.PENDING:
        item_close(run=run, new_status=new_status)


# --- Triage ----------------------------------------------------------------------------------


def run_triage(
    *,
    run: FlowRun,
    version: TemplateVersion,
    state_id: str,
    user: Any,
    remember: bool = False,
    ip: str | None = None,
) -> ReviewItem | None:
    """A supervisor or flow admin says which version (and pause) a Run in triage is; its item
    opens. With ``remember``, later Runs waiting at that state are taken for the same version."""
    if not roles.can_triage(user):
        raise ReviewError("Only a supervisor or a flow admin can say which template a Run is.")
    with transaction.atomic():
        try:
            assigned = integration.run_assign(
                run, version=version, state_id=state_id, remember_by=user if remember else None
            )
        except integration.NotWaiting as exc:
            raise ReviewError(f"This Run is no longer waiting for input. {exc}") from None
        item = assigned.review_items.filter(status__in=ACTIVE_STATUSES).first()
        audit_record(
            action="run.triaged",
            actor=user,
            item=item,
            flow_run_id=str(run.flow_run_id),
            ip=ip,
            version=version.pk,
            state=state_id,
            remembered=remember,
        )
    return item


# --- Claims ----------------------------------------------------------------------------------


def lease_length() -> timedelta:
    return timedelta(minutes=settings.REVIEW_LEASE_MINUTES)


def item_claim(*, item: ReviewItem, user: Any, ip: str | None = None) -> ReviewItem:
    """Claim an open item (or renew one's own claim). One conditional UPDATE settles a race:
    of N people claiming at once exactly one row update succeeds. The same UPDATE refuses
    someone whom the item's route keeps from it (separation of duties, ``selectors.barred``)."""
    now = timezone.now()
    # The claim and its audit row commit together: a claim is never made unaudited.
    with transaction.atomic():
        taken = (
            ReviewItem.objects.filter(pk=item.pk)
            .filter(
                Q(status=ItemStatus.OPEN)
                | Q(status=ItemStatus.CLAIMED, claimed_by=user)
                | Q(status=ItemStatus.CLAIMED, lease_until__lt=now)
            )
            .filter(~barred(user))
            .filter(not_postponed())
            .update(
                status=ItemStatus.CLAIMED,
                claimed_by=user,
                lease_until=now + lease_length(),
                status_changed_at=now,
            )
        )
        item.refresh_from_db()
        if not taken:
            if reason := separation_reason(item, user):
                raise SeparationOfDuties(reason)
            if item.status == ItemStatus.CLAIMED and item.claimed_by is not None:
                raise ReviewError(f"{roles.display_name(item.claimed_by)} is working on this item.")
            if item.status == ItemStatus.OPEN and item.is_postponed:
                raise ReviewError(_postponed_message(item))
            raise ReviewError(f"This item is {item.get_status_display().lower()}.")
        audit_record(action="item.claimed", actor=user, item=item, ip=ip)
    return item


def item_get_next(*, user: Any, ip: str | None = None) -> ReviewItem | None:
    """Claim the next open item that ``user`` may take, by their queues' strategies
    (``next_item``), atomically.

    ``skip_locked`` lets concurrent callers pass over rows another transaction is claiming, so
    eight people pressing "get next" at once get eight different items without waiting. Items
    that ``user`` answered another step of, where the route wants another person, are passed
    over too: never handed out only to be refused. A supervisor may have paused ``user``'s "get
    next" (``reviewer_pause``): then nothing is handed out, and GetNextPaused says why.
    """
    now = timezone.now()
    # The person's preferences row exists before the transaction: locked in it, it orders
    # this claim and a supervisor's pause (which releases every claim) one after the other.
    StaffPreferences.objects.get_or_create(user=user)
    with transaction.atomic():
        preferences = StaffPreferences.objects.select_for_update().get(user=user)
        if preferences.get_next_paused_at is not None:
            raise GetNextPaused(_paused_message(preferences))
        candidates = (
            items_visible_to(user)
            .filter(status=ItemStatus.OPEN)
            .filter(~barred(user))
            # Not before its postponement ends, and never back to whoever declined it.
            .filter(not_postponed())
            .filter(~declined_by(user))
        )
        item = next_item.pick(candidates, user=user, queues=queues_visible_to(user))
        if item is None:
            return None
        _transition(item, ItemStatus.CLAIMED)
        item.claimed_by = user
        item.lease_until = now + lease_length()
        item.save(update_fields=["status", "status_changed_at", "claimed_by", "lease_until"])
        audit_record(action="item.claimed", actor=user, item=item, ip=ip, via="get_next")
    return item


def item_release(
    *, item: ReviewItem, user: Any, ip: str | None = None, detail: Mapping[str, Any] | None = None
) -> ReviewItem:
    """Give a claimed item back to the queue (its holder, or a supervisor). ``detail``: more
    for its audit event (a bulk move says so)."""
    released = ReviewItem.objects.filter(pk=item.pk, status=ItemStatus.CLAIMED)
    if not roles.is_supervisor(user):
        released = released.filter(claimed_by=user)
    with transaction.atomic():
        # The holder as it is now (the caller's copy may be older), released and audited
        # together.
        holder = ReviewItem.objects.select_for_update().get(pk=item.pk).claimed_by_id
        count = released.update(
            status=ItemStatus.OPEN,
            claimed_by=None,
            lease_until=None,
            status_changed_at=timezone.now(),
        )
        item.refresh_from_db()
        if not count:
            raise NotYourClaim("Only the person holding this item can release it.")
        audit_record(
            action="item.released", actor=user, item=item, ip=ip, holder=holder, **(detail or {})
        )
    return item


def item_reassign(
    *,
    item: ReviewItem,
    to: Any,
    by: Any,
    ip: str | None = None,
    detail: Mapping[str, Any] | None = None,
    notice: bool = True,
) -> ReviewItem:
    """A supervisor hands a workable item to someone (who must be able to see its queue, and
    whom its route does not keep from it: separation of duties, checked in the UPDATE), who is
    notified unless they took it themselves. ``detail``: more for its audit event (a bulk move
    says so); ``notice=False``: the caller notifies once for many items (a bulk move)."""
    if not roles.is_supervisor(by):
        raise ReviewError("Only a supervisor can reassign items.")
    if not items_visible_to(to).filter(pk=item.pk).exists():
        raise ReviewError(f"{roles.display_name(to)} does not work in the {item.queue} queue.")
    _refuse_if_away(to)
    now = timezone.now()
    with transaction.atomic():  # reassigned and audited together
        # A postponement the move ends early gives its unspent time back, as resuming early
        # does (read under the row lock, so the UPDATE below ends exactly this one).
        postponed_until = (
            ReviewItem.objects.select_for_update()
            .filter(pk=item.pk, postponed_until__gt=now)
            .values_list("postponed_until", flat=True)
            .first()
        )
        count = (
            ReviewItem.objects.filter(pk=item.pk, status__in=WORKABLE_STATUSES)
            .filter(~barred(to))
            .update(
                status=ItemStatus.CLAIMED,
                claimed_by=to,
                lease_until=now + lease_length(),
                status_changed_at=now,
                # Handed to someone to work on now: a postponement ends with it.
                postponed_until=None,
            )
        )
        item.refresh_from_db()
        if not count:
            if reason := separation_reason(item, to, you=False):
                raise SeparationOfDuties(reason)
            raise ReviewError(f"This item is {item.get_status_display().lower()}.")
        moved = {}
        if postponed_until is not None:
            moved = _due_moved(item, due_after_resuming_early, until=postponed_until)
        audit_record(
            action="item.reassigned",
            actor=by,
            item=item,
            ip=ip,
            to=to.pk,
            **(detail or {}),
            **moved,
        )
        if notice and to.pk != by.pk:
            notifications.notify(
                users=[to],
                kind=NotificationKind.ASSIGNED,
                item=item,
                text=f"{roles.display_name(by)} assigned {notifications.item_label(item)} to you.",
            )
    return item


# Why a supervisor moves work, as codes: the audit keeps the code, and no free text that could
# hold a patient's details travels with a bulk move.
MOVE_REASONS = {
    "workload": "Workload",
    "out_sick": "Out sick",
    "skill": "Skill",
    "other": "Other",
}
# At most this many items move in one action ("all matching this filter" takes the first ones).
MOVE_MAX = 500


@dataclass(frozen=True)
class Moved:
    """What a bulk move did: the items moved, and those it could not move grouped by why."""

    to: Any  # None: back to the queue
    moved: list[ReviewItem]
    refused: list[tuple[str, list[ReviewItem]]]

    @property
    def summary(self) -> str:
        """In words: "3 moved to Alice; 2 not: Bob answered an earlier step of these Runs…"."""
        where = f"to {roles.display_name(self.to)}" if self.to is not None else "to the queue"
        said = f"{len(self.moved)} moved {where}"
        if not self.refused:
            return f"{said}."
        count = sum(len(items) for _, items in self.refused)
        reasons = "; ".join(f"{why} ({_runs_named(items)})" for why, items in self.refused)
        return f"{said}; {count} not: {reasons}."


def _runs_named(items: list[ReviewItem], shown: int = 10) -> str:
    """The items as the queue's rows name them: their Run's id, first 8 characters."""
    names = ", ".join(item.run_ref[:8] for item in items[:shown])
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"Run{'s' if len(items) > 1 else ''} {names}{more}"


def items_reassign_bulk(
    *,
    item_ids: Collection[int],
    to: Any | None,
    by: Any,
    reason: str,
    ip: str | None = None,
) -> Moved:
    """A supervisor moves many items at once: to ``to``, or back to the queue (``to=None``),
    with a reason code (``MOVE_REASONS``).

    Each item goes through the one-item action (``item_reassign``, ``item_release``) with its
    checks: the person works in the item's queue, separation of duties, a workable status. Those
    it refuses are reported, grouped by why, never skipped in silence; each one moved is audited
    as its one-item action with ``via="bulk"`` and the reason code. Ids of items ``by`` may not
    see are ignored. The rows are locked in id order first, so two supervisors moving
    overlapping selections at once wait for each other instead of deadlocking, and each item's
    check and move see the row as it is.
    """
    if not roles.is_supervisor(by):
        raise ReviewError("Only a supervisor can move items.")
    if reason not in MOVE_REASONS:
        raise ReasonInvalid("reason", "Choose one of the reasons in the list.")
    if len(item_ids) > MOVE_MAX:
        raise ReviewError(f"At most {MOVE_MAX} items move at once.")
    detail = {"via": "bulk", "reason": reason}
    moved: list[ReviewItem] = []
    refused: dict[str, list[ReviewItem]] = {}
    with transaction.atomic():
        locked = list(
            items_visible_to(by)
            .filter(pk__in=list(item_ids))
            .select_for_update()
            .select_related("queue", "version")
            .order_by("pk")
        )
        for item in locked:
            try:
                if to is None:
                    item_release(item=item, user=by, ip=ip, detail=detail)
                elif item.status == ItemStatus.CLAIMED and item.claimed_by_id == to.pk:
                    raise ReviewError(f"already with {roles.display_name(to)}")
                else:
                    item_reassign(item=item, to=to, by=by, ip=ip, detail=detail, notice=False)
            except ReviewError as exc:
                refused.setdefault(_refusal(exc, item, to), []).append(item)
            else:
                moved.append(item)
        if to is not None and moved and to.pk != by.pk:
            # One notice for the whole move, not one per item.
            _moved_notify(to=to, by=by, items=moved)
    return Moved(to=to, moved=moved, refused=list(refused.items()))


def _moved_notify(*, to: Any, by: Any, items: list[ReviewItem]) -> None:
    if len(items) == 1:
        text = f"{roles.display_name(by)} moved {notifications.item_label(items[0])} to you."
    else:
        text = f"{roles.display_name(by)} moved {len(items)} items to you."
    notifications.notify(
        users=[to],
        kind=NotificationKind.ASSIGNED,
        item=items[0] if len(items) == 1 else None,
        text=text,
    )


def _refusal(exc: ReviewError, item: ReviewItem, to: Any | None) -> str:
    """Why ``item`` did not move, worded for a group of items (the one-item messages name one)."""
    if isinstance(exc, SeparationOfDuties):
        return (
            f"{roles.display_name(to)} answered an earlier step of these Runs; another person "
            "must take these steps"
        )
    if isinstance(exc, NotYourClaim):
        # A supervisor releases any claim: the item is not claimed (any more).
        if item.status == ItemStatus.OPEN:
            return "already in the queue"
        return f"{item.get_status_display().lower()}, not claimed"
    return str(exc).rstrip(".").replace("This item is ", "")


def lease_renew(*, item: ReviewItem, user: Any) -> bool:
    """Extend the holder's live lease while they work; False when it is not theirs any more."""
    now = timezone.now()
    return bool(
        ReviewItem.objects.filter(
            pk=item.pk, status=ItemStatus.CLAIMED, claimed_by=user, lease_until__gt=now
        ).update(lease_until=now + lease_length())
    )


def leases_expire() -> int:
    """Return items whose lease ran out to the queue, one audit event each."""
    expired = 0
    stale = ReviewItem.objects.filter(status=ItemStatus.CLAIMED, lease_until__lt=timezone.now())
    for item in stale.only("pk", "claimed_by", "run_ref")[:1000]:
        with transaction.atomic():
            # Conditional: the holder may have renewed or submitted since the list was read.
            count = ReviewItem.objects.filter(
                pk=item.pk, status=ItemStatus.CLAIMED, lease_until__lt=timezone.now()
            ).update(
                status=ItemStatus.OPEN,
                claimed_by=None,
                lease_until=None,
                status_changed_at=timezone.now(),
            )
            if count:
                audit_record(action="item.lease_expired", item=item, holder=item.claimed_by_id)
                expired += 1
    return expired


# --- Declining and postponing -----------------------------------------------------------------

POSTPONE_MAX = timedelta(days=90)


class ReasonInvalid(ReviewError):
    """Input of a decline or postponement that cannot be taken; ``field`` names the form field
    ("code", "text" or "until") the message belongs to. Nothing was changed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _postponed_message(item: ReviewItem) -> str:
    from reviewqueue.present import moment

    return (
        f"This item is postponed until {moment(item.postponed_until)}; a supervisor can bring "
        "it back sooner."
    )


def _reason_checked(*, item: ReviewItem, kind: str, code: str, text: str) -> ReasonCode | None:
    """The queue's active reason ``code`` for ``kind`` (required when the queue has any), and a
    note that fits its column; ReasonInvalid otherwise."""
    codes = {reason.code: reason for reason in item.queue.reason_codes.filter(kind=kind)}
    active = [reason for reason in codes.values() if reason.active]
    verb = {
        ReasonKind.DECLINE: "declining",
        ReasonKind.POSTPONE: "postponing",
        ReasonKind.RETURN: "returning",
    }[ReasonKind(kind)]
    if len(text) > ItemReason.TEXT_MAX:
        raise ReasonInvalid(
            "text",
            f"A note can be at most {ItemReason.TEXT_MAX} characters; this one has {len(text)}.",
        )
    if "\x00" in text:
        raise ReasonInvalid("text", "The note contains a character that cannot be stored (NUL).")
    if not code:
        if active:
            raise ReasonInvalid("code", f"Choose a reason for {verb} this item.")
        return None
    reason = codes.get(code)
    if reason is None or not reason.active:
        listed = ", ".join(f"“{r.title}”" for r in active) or "none"
        raise ReasonInvalid(
            "code",
            f"“{code[:40]}” is not one of the {item.queue} queue's reasons for {verb} "
            f"(they are: {listed}).",
        )
    return reason


def _until_checked(until: Any) -> Any:
    from reviewqueue.present import moment

    now = timezone.now()
    if until is None:
        raise ReasonInvalid("until", "Say until when: a date and a time.")
    if until <= now:
        raise ReasonInvalid("until", f"That time has passed: choose one after now ({moment(now)}).")
    if until > now + POSTPONE_MAX:
        raise ReasonInvalid(
            "until",
            f"An item can be postponed at most {POSTPONE_MAX.days} days ahead: until "
            f"{moment(now + POSTPONE_MAX)} at the latest.",
        )
    return until


def _give_back(
    *, item: ReviewItem, user: Any, kind: str, code: str, text: str, until: Any = None
) -> tuple[ReviewItem, ItemReason]:
    """The claimant hands the item back to the queue with a reason. Under the item's row lock
    (the caller's transaction): a release, a reassignment or a lease sweep in between leaves the
    item no longer theirs, and then nothing changes. Someone else is told so before anything
    about their input."""
    locked = ReviewItem.objects.select_for_update().select_related("queue").get(pk=item.pk)
    if locked.status != ItemStatus.CLAIMED or locked.claimed_by_id != user.pk:
        raise NotYourClaim(
            f"Only the person holding this item can {ReasonKind(kind).label.lower()} it."
        )
    if kind == ReasonKind.POSTPONE:
        until = _until_checked(until)
    reason = _reason_checked(item=locked, kind=kind, code=code, text=text)
    _transition(locked, ItemStatus.OPEN)
    locked.postponed_until = until
    locked.save(
        update_fields=[
            "status",
            "status_changed_at",
            "closed_at",
            "claimed_by",
            "lease_until",
            "postponed_until",
        ]
    )
    given = ItemReason.objects.create(
        item=locked, kind=kind, code=code, reason=reason, text=text, by=user, until=until
    )
    return locked, given


def item_decline(
    *, item: ReviewItem, user: Any, code: str = "", text: str = "", ip: str | None = None
) -> ItemReason:
    """The claimant says "not mine": the item goes back to the queue, and "get next" does not
    hand it to them again (``selectors.declined_by``). Audited with the code, never the note."""
    text = text.strip()
    with transaction.atomic():
        locked, given = _give_back(
            item=item, user=user, kind=ReasonKind.DECLINE, code=code, text=text
        )
        audit_record(action="item.declined", actor=user, item=locked, ip=ip, reason=code)
    item.refresh_from_db()
    return given


def item_postpone(
    *,
    item: ReviewItem,
    user: Any,
    until: Any,
    code: str = "",
    text: str = "",
    ip: str | None = None,
) -> ItemReason:
    """The claimant puts the item aside until ``until`` (at most ``POSTPONE_MAX`` ahead): back
    in the queue, but neither offered nor claimable before then. It comes back by itself when
    the time passes (``selectors.not_postponed``); a supervisor can bring it back sooner."""
    text = text.strip()
    with transaction.atomic():
        locked, given = _give_back(
            item=item, user=user, kind=ReasonKind.POSTPONE, code=code, text=text, until=until
        )
        moved = _due_moved(locked, due_after_postponing, until=until)
        audit_record(
            action="item.postponed",
            actor=user,
            item=locked,
            ip=ip,
            reason=code,
            until=until.isoformat(),
            **moved,
        )
    item.refresh_from_db()
    return given


def _due_moved(
    item: ReviewItem, rule: Callable[..., datetime], *, until: datetime
) -> dict[str, str]:
    """Where the queue's SLA clock stops while an item is postponed, move the locked ``item``'s
    due time by ``rule`` (``business_hours.due_after_postponing`` or ``..._resuming_early``);
    the audit detail that says so ({} when nothing moved)."""
    if not item.queue.sla_paused_while_postponed:
        return {}
    due_at = rule(clock=sla_clock(item.queue), due_at=item.due_at, now=timezone.now(), until=until)
    if due_at == item.due_at:
        return {}
    item.due_at = due_at
    item.save(update_fields=["due_at"])
    return {"due": due_at.isoformat()}


def item_resume_early(*, item: ReviewItem, user: Any, ip: str | None = None) -> ReviewItem:
    """Bring a postponed item back before its time: a supervisor, or whoever postponed it."""
    with transaction.atomic():
        locked = ReviewItem.objects.select_for_update().get(pk=item.pk)
        if locked.status != ItemStatus.OPEN or not locked.is_postponed:
            raise ReviewError("This item is not postponed.")
        postponer = locked.reasons.filter(kind=ReasonKind.POSTPONE).order_by("-at", "-pk").first()
        if not roles.is_supervisor(user) and (postponer is None or postponer.by_id != user.pk):
            raise ReviewError("Only a supervisor or whoever postponed it can bring it back.")
        until = locked.postponed_until
        assert until is not None
        locked.postponed_until = None
        locked.save(update_fields=["postponed_until"])
        moved = _due_moved(locked, due_after_resuming_early, until=until)
        audit_record(
            action="item.resumed_early",
            actor=user,
            item=locked,
            ip=ip,
            until=until.isoformat(),
            **moved,
        )
    item.refresh_from_db()
    return item


def item_return(
    *, item: ReviewItem, user: Any, code: str = "", text: str = "", ip: str | None = None
) -> ItemReason:
    """The holder sends the item back for rework to whoever answered the Run's earlier pause
    (``selectors.earlier_answerer``): it is claimed for them, as a supervisor's assignment is,
    and marked returned to them, so that a queue whose strategy is "returned to me first" offers
    it to them first again should the claim lapse. They are told; the audit keeps the code,
    never the note.

    Refused, with nothing changed, when there is nobody to return it to, when that person may
    not take this step (separation of duties: a sign-off goes back through the template, see
    docs/supervisors.md), does not work in its queue or is away."""
    text = text.strip()
    with transaction.atomic():
        locked = (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("queue", "version")
            .get(pk=item.pk)
        )
        if locked.status != ItemStatus.CLAIMED or locked.claimed_by_id != user.pk:
            raise NotYourClaim("Only the person holding this item can return it.")
        to = earlier_answerer(locked)
        if to is None:
            raise ReviewError(
                "Nobody answered an earlier step of this Run in Flowdesk, so there is nobody to "
                "return it to. Decline it to give it back to the queue."
            )
        if to.pk == user.pk:
            raise ReviewError(
                "You answered this Run's earlier step yourself. Decline it to give it back to "
                "the queue."
            )
        _refuse_if_away(to)
        if not items_visible_to(to).filter(pk=locked.pk).exists():
            raise ReviewError(
                f"{roles.display_name(to)} does not work in the {locked.queue} queue any more; "
                "a supervisor can assign it to someone who does."
            )
        reason = _reason_checked(item=locked, kind=ReasonKind.RETURN, code=code, text=text)
        now = timezone.now()
        returned = (
            ReviewItem.objects.filter(pk=locked.pk)
            .filter(~barred(to))
            .update(
                claimed_by=to,
                lease_until=now + lease_length(),
                status_changed_at=now,
                returned_to=to,
            )
        )
        if not returned:
            raise SeparationOfDuties(
                f"{separation_reason(locked, to, you=False)} So it cannot be returned to them: "
                "decline it, or answer it so that the Run goes back a step."
            )
        given = ItemReason.objects.create(
            item=locked, kind=ReasonKind.RETURN, code=code, reason=reason, text=text, by=user
        )
        audit_record(action="item.returned", actor=user, item=locked, ip=ip, to=to.pk, reason=code)
        why = f": {reason.title}" if reason is not None else ""
        notifications.notify(
            users=[to],
            kind=NotificationKind.RETURNED,
            item=locked,
            text=f"{roles.display_name(user)} returned {notifications.item_label(locked)} to you "
            f"for rework{why}.",
        )
    item.refresh_from_db()
    return given


# --- Away: a reviewer's "get next" paused -------------------------------------------------------


def _paused_message(preferences: StaffPreferences) -> str:
    from reviewqueue.present import moment

    by = preferences.get_next_paused_by
    who = roles.display_name(by) if by is not None else "A supervisor"
    return (
        f"{who} paused your “Get next” on {moment(preferences.get_next_paused_at)}. Ask a "
        "supervisor to resume it when you are back."
    )


def _refuse_if_away(user: Any) -> None:
    """Work is not handed to someone whose "get next" is paused: they are away."""
    if StaffPreferences.objects.filter(user=user, get_next_paused_at__isnull=False).exists():
        raise ReviewError(f"{roles.display_name(user)} is away: their “Get next” is paused.")


def reviewer_pause(*, reviewer: Any, by: Any, ip: str | None = None) -> int:
    """A supervisor pauses ``reviewer``'s "get next" (out sick): nothing more is handed or
    assigned to them, and every item they hold goes back to the queue, each release audited.
    Returns how many went back. Locks the reviewer's preferences row, as "get next" does, so a
    claim racing the pause is either refused or released with the others."""
    if not roles.is_supervisor(by):
        raise ReviewError("Only a supervisor can pause someone's “Get next”.")
    StaffPreferences.objects.get_or_create(user=reviewer)
    with transaction.atomic():
        preferences = StaffPreferences.objects.select_for_update().get(user=reviewer)
        if preferences.get_next_paused_at is not None:
            raise ReviewError(f"{roles.display_name(reviewer)}'s “Get next” is already paused.")
        preferences.get_next_paused_at = timezone.now()
        preferences.get_next_paused_by = by
        preferences.save(update_fields=["get_next_paused_at", "get_next_paused_by"])
        held = ReviewItem.objects.filter(status=ItemStatus.CLAIMED, claimed_by=reviewer)
        released = 0
        for item in held.order_by("pk"):
            item_release(item=item, user=by, ip=ip, detail={"via": "get_next_paused"})
            released += 1
        audit.audit_record(
            action="reviewer.get_next_paused",
            actor=by,
            ip=ip,
            reviewer=reviewer.pk,
            released=released,
        )
    return released


def reviewer_resume(*, reviewer: Any, by: Any, ip: str | None = None) -> None:
    """A supervisor ends the pause: ``reviewer`` gets work again."""
    if not roles.is_supervisor(by):
        raise ReviewError("Only a supervisor can resume someone's “Get next”.")
    with transaction.atomic():
        paused = StaffPreferences.objects.filter(
            user=reviewer, get_next_paused_at__isnull=False
        ).update(get_next_paused_at=None, get_next_paused_by=None)
        if not paused:
            raise ReviewError(f"{roles.display_name(reviewer)}'s “Get next” is not paused.")
        audit.audit_record(
            action="reviewer.get_next_resumed", actor=by, ip=ip, reviewer=reviewer.pk
        )


# --- Drafts and notes ------------------------------------------------------------------------


def draft_save(
    *,
    item: ReviewItem,
    user: Any,
    data: Mapping[str, list[str]],
    reading: tuple[str, int] | None = None,
) -> Draft:
    """Keep what the holder has typed (values as typed) and renew their lease."""
    if not item.lease_held_by(user):
        raise NotYourClaim("Claim this item to save a draft.")
    draft = draft_keep(item=item, user=user, data=data, reading=reading)
    lease_renew(item=item, user=user)
    return draft


DRAFT_SKIPS = frozenset({"csrfmiddlewaretoken", PART, FIELDS, READING})
# A draft keeps whatever is posted, field names included, so without limits one request could
# store megabytes per item and person. The largest demo form posts a few dozen values of a few
# hundred characters; an array form at its 100 rows stays well inside these.
DRAFT_FIELDS_MAX = 1_000  # values, as Django's DATA_UPLOAD_MAX_NUMBER_FIELDS counts them
DRAFT_VALUE_MAX = 20_000  # characters in one value (a long free-text answer)
DRAFT_TOTAL_MAX = 100_000  # characters in all names and values together


def draft_keep(
    *,
    item: ReviewItem,
    user: Any,
    data: Mapping[str, list[str]],
    reading: tuple[str, int] | None = None,
) -> Draft:
    """Store ``user``'s input for ``item`` whatever the claim: input is never thrown away.

    ``reading`` says which reading of the page these values are (page load, count). A re-render
    and an autosave of one page are in flight side by side and arrive in either order; the draft
    keeps the latest reading, not the one that happened to arrive last.
    """
    # PostgreSQL's jsonb holds no NUL character; a draft keeps everything else as typed, but
    # not the request's own controls (the CSRF token, which fieldset to re-render).
    fields = {
        k.replace("\x00", ""): [value.replace("\x00", "") for value in v]
        for k, v in data.items()
        if k not in DRAFT_SKIPS
    }
    _draft_check(fields)
    page, count = reading or ("", None)
    values = {"data": fields, "saved_at": timezone.now(), "page_load": page, "reading": count}
    with transaction.atomic():
        draft, created = Draft.objects.select_for_update().get_or_create(
            item=item, user=user, defaults=values
        )
        if created or draft.is_later_than(reading):
            return draft
        for name, value in values.items():
            setattr(draft, name, value)
        draft.save(update_fields=list(values))
    return draft


def _draft_check(fields: Mapping[str, list[str]]) -> None:
    """DraftTooLarge unless ``fields`` is within the draft limits (checked before anything is
    written, so a refused draft leaves the stored one as it was)."""
    values = [value for name_values in fields.values() for value in name_values]
    if len(values) > DRAFT_FIELDS_MAX:
        raise DraftTooLarge(
            f"This draft has {len(values):,} values; a draft keeps at most {DRAFT_FIELDS_MAX:,}."
        )
    longest = max(map(len, values), default=0)
    if longest > DRAFT_VALUE_MAX:
        raise DraftTooLarge(
            f"A field holds {longest:,} characters; a draft keeps at most {DRAFT_VALUE_MAX:,} "
            "per field. Shorten it."
        )
    total = sum(map(len, fields)) + sum(map(len, values))
    if total > DRAFT_TOTAL_MAX:
        raise DraftTooLarge(
            f"This draft holds {total:,} characters; a draft keeps at most {DRAFT_TOTAL_MAX:,}."
        )


def draft_for(*, item: ReviewItem, user: Any) -> Draft | None:
    return Draft.objects.filter(item=item, user=user).first()


NOTE_MAX = Note._meta.get_field("body").max_length or 5_000


def note_add(*, item: ReviewItem, user: Any, body: str, ip: str | None = None) -> Note:
    body = body.strip()
    if not body:
        raise ReviewError("Write something first.")
    # The column is a TextField, whose max_length no database enforces: checked here.
    if len(body) > NOTE_MAX:
        raise ReviewError(
            f"A note can be at most {NOTE_MAX:,} characters; this one has {len(body):,}."
        )
    if "\x00" in body:
        raise ReviewError("The note contains a character that cannot be stored (NUL).")
    note = Note.objects.create(item=item, author=user, body=body)
    audit_record(action="note.added", actor=user, item=item, ip=ip, note=note.pk)
    return note


# --- Submitting and delivering ---------------------------------------------------------------


def submission_create(
    *,
    item: ReviewItem,
    user: Any,
    answer: dict[str, Any],
    form_data: Mapping[str, list[str]],
    ip: str | None = None,
    reading: tuple[str, int] | None = None,
) -> Submission:
    """Accept the holder's validated answer: the submission (the outbox row) and the item's move
    to SENDING commit together; delivery starts on commit.

    Refused, with the input kept as a draft, when the Run is no longer PENDING at the item's
    state. A second submit (double click, another tab, a replay) finds the item already SENDING.
    """
    try:
        with transaction.atomic():
            locked = ReviewItem.objects.select_for_update().select_related("run").get(pk=item.pk)
            # A replay after the first submit went out (sent, delivered, or waiting for a
            # supervisor) is "already submitted", not "claim it again".
            if locked.status in (
                ItemStatus.SENDING,
                ItemStatus.DELIVERED,
                ItemStatus.NEEDS_ATTENTION,
            ):
                raise ReviewError("This answer has already been submitted.")
            run = locked.run
            if not locked.is_active:
                # Superseded (or resumed): the Run left this pause; claiming again cannot help.
                raise RunMovedOn(
                    "The Run is no longer waiting at this step. Your input is kept as a draft."
                )
            if not locked.lease_held_by(user):
                holder = locked.claimed_by
                if locked.status == ItemStatus.CLAIMED and holder is not None and holder != user:
                    raise NotYourClaim(f"{roles.display_name(holder)} is working on this item.")
                raise NotYourClaim("Your claim on this item has ended. Claim it again to submit.")
            # Held since before an answer of theirs to another step (or before the route asked
            # for another person): refused here too. The item's row lock and the one active item
            # per Run keep any other answer to this Run from being made meanwhile.
            if reason := separation_reason(locked, user):
                raise SeparationOfDuties(reason)
            if run.status != RunStatus.PENDING or run.state_id != locked.state_id:
                raise RunMovedOn(
                    f"The Run is no longer waiting at this step ({run.get_status_display()}). "
                    "Your input is kept as a draft."
                )
            _transition(locked, ItemStatus.SENDING)
            locked.save()
            submission = Submission.objects.create(
                item=locked, submitted_by=user, input=answer, claimed_at=_claim_began(locked, user)
            )
            draft_keep(item=locked, user=user, data=form_data, reading=reading)
            audit_record(
                action="item.submitted", actor=user, item=locked, ip=ip, submission=submission.pk
            )
            transaction.on_commit(lambda: _enqueue_delivery(submission.pk), robust=True)
    except RunMovedOn:
        # The promise above ("kept as a draft") is the service's, not only the view's: the
        # block rolled back, so the input is kept here, after it.
        draft_keep(item=item, user=user, data=form_data, reading=reading)
        raise
    item.refresh_from_db()
    return submission


def _claim_began(item: ReviewItem, user: Any) -> datetime | None:
    """When ``user``'s latest claim of ``item`` began (the audit trail's claims index), for the
    handle time kept with an answer; None if they never claimed it (it was reassigned to them)."""
    claims = AuditEvent.objects.filter(action="item.claimed", item_id=item.pk, actor=user)
    return claims.order_by("-at").values_list("at", flat=True).first()


def _enqueue_delivery(submission_id: int, countdown: float = 0) -> None:
    from reviewqueue import tasks

    # No publish retries: with the broker down the outbox sweep sends it later.
    tasks.deliver_submission.apply_async(args=(submission_id,), countdown=countdown, retry=False)


@dataclass(frozen=True)
class Delivery:
    outcome: str  # "delivered", "rejected", "refused", "retry", "failed", "busy"
    submission: Submission | None = None


def submission_deliver(submission_id: int) -> Delivery:
    """Send one submission with Update Run; safe to run twice (a task may).

    The submission is held with a lease (``locked_until``) so two workers never send it at once.
    ``maybe_sent`` is set before each call: when a call's outcome is unknown (timeout, lost
    response, killed worker), the next attempt asks Get Run first and sends again only when the
    Run is known to wait at the item's pause still (``_pause_left``). When nothing settles it,
    it asks again later, and after the last try a supervisor decides: sent again to a Run that
    waits at a later pause, the answer would be taken for that pause's.
    """
    now = timezone.now()
    held = Submission.objects.filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=now),
        pk=submission_id,
        status=SubmissionStatus.PENDING,
    ).update(locked_until=now + timedelta(seconds=settings.FLOWS_READ_TIMEOUT * 3 + 30))
    if not held:
        return Delivery("busy")
    submission = Submission.objects.select_related("item__run").get(pk=submission_id)
    item = submission.item
    run = item.run
    run_id = str(run.flow_run_id)
    sending = False
    try:
        if submission.maybe_sent:
            info = flows_client.get_run(run_id)
            health_record_success()
            left = _pause_left(item, submission, info)
            if left:
                return _delivered(submission)
            if left is None:
                return _unconfirmed(submission, item)
        elif (
            item.status != ItemStatus.SENDING
            or run.status != RunStatus.PENDING
            or (run.state_id and run.state_id != item.state_id)
        ):
            # The Run left its pause before we sent anything (see ``item_close``). Nothing of
            # ours can have arrived (``maybe_sent`` is clear), so someone else moved it, and
            # Update Run names no state: sent now, our answer would be taken for whatever
            # pause the Run waits in next. (A blank state is unknown, not another pause:
            # without Sohar's stateId a sync may not know it.)
            return _refused(submission)
        _set(submission, maybe_sent=True, attempts=submission.attempts + 1)
        sending = True
        flows_client.update_run(run_id, submission.input)
    except flows_client.FlowsError as exc:
        return _delivery_failed(submission, exc, sending=sending)
    health_record_success()
    return _delivered(submission)


def _pause_left(
    item: ReviewItem, submission: Submission, info: flows_client.RunInfo
) -> bool | None:
    """Whether the Run has left the pause ``item`` answers since ``submission`` was made: True or
    False when a signal settles it, None when none does.

    Get Run's status, and its ``stateId`` where the server sends one (our engine). Sohar's says
    only PENDING, so then: a webhook received since the submission that puts the Run past this
    pause (finished, or at a state that comes only after it), else the template's state order:
    with no pause after this one, a PENDING Run can only be waiting here.
    """
    if info.status != RunStatus.PENDING:
        return True
    if info.state_id:
        return info.state_id != item.state_id
    spec = item.version.spec
    after = spec.states_after(item.state_id)
    only_after = after - spec.states_before(item.state_id)
    for status, state_id in WebhookEvent.objects.filter(
        flow_run_id=item.run.flow_run_id, received_at__gte=submission.created_at
    ).values_list("status", "state_id"):
        if status in TERMINAL_STATUSES or state_id in only_after:
            return True
    if not after & {state.id for state in spec.callback_states()}:
        return False
    return None


def _unconfirmed(submission: Submission, item: ReviewItem) -> Delivery:
    """An answer whose reply was lost, and nothing yet says whether it arrived: never sent again
    blindly. Asked again after a back-off (a webhook may settle it meanwhile); after the last
    try a supervisor decides, with the facts."""
    spec = item.version.spec
    after = spec.states_after(item.state_id)
    later = [state.title for state in spec.callback_states() if state.id in after]
    pause = item.version.callback_state(item.state_id)
    title = pause.title if pause is not None else item.state_id
    facts = (
        "Update Run's reply was lost. Get Run says the Run is waiting for input but not at which "
        f"step, and no webhook since this answer says it left “{title}”. It may wait at a later "
        f"step ({', '.join(later)}), where this answer must not be sent."
    )[:500]
    _set(submission, attempts=submission.attempts + 1)
    if submission.attempts >= settings.REVIEW_SUBMIT_ATTEMPTS:
        return _failed(submission, error=facts, status=None)
    delay = _backoff(submission.attempts)
    _set(
        submission,
        last_error=facts,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        locked_until=None,
    )
    audit_record(
        action="submission.unconfirmed",
        item=item,
        submission=submission.pk,
        attempt=submission.attempts,
    )
    transaction.on_commit(lambda: _enqueue_delivery(submission.pk, delay), robust=True)
    return Delivery("retry", submission)


def _answer_arrived(
    submission: Submission,
    item: ReviewItem,
    *,
    settled_by: str,
    actor: Any = None,
    ip: str | None = None,
) -> None:
    """Record that an answer whose outcome was unknown reached the Run (caller holds the item)."""
    _submission_transition(submission, SubmissionStatus.DELIVERED)
    submission.maybe_sent = False
    submission.save()
    Draft.objects.filter(item=item).delete()
    audit_record(
        action="submission.delivered",
        actor=actor,
        item=item,
        ip=ip,
        submission=submission.pk,
        settled_by=settled_by,
    )


def _set(submission: Submission, **values: Any) -> None:
    for name, value in values.items():
        setattr(submission, name, value)
    Submission.objects.filter(pk=submission.pk).update(**values)


def _delivered(submission: Submission) -> Delivery:
    with transaction.atomic():
        item = (
            ReviewItem.objects.select_for_update().select_related("run").get(pk=submission.item_id)
        )
        _submission_transition(submission, SubmissionStatus.DELIVERED)
        submission.maybe_sent = False
        submission.last_error = ""
        submission.save()
        if item.status == ItemStatus.SENDING:
            # The mirror may already show the Run past its pause (the webhook won the race).
            run_moved = item.run.status != RunStatus.PENDING or item.run.state_id != item.state_id
            _transition(item, ItemStatus.RESUMED if run_moved else ItemStatus.DELIVERED)
            item.save()
        Draft.objects.filter(item=item).delete()
        audit_record(action="submission.delivered", item=item, submission=submission.pk)
        _open_current_pause(item.run, settled=item)
        # Webhooks say the Run moved; asking now shows "Run resumed" without waiting for them.
        flow_run_id = str(item.run.flow_run_id)
        transaction.on_commit(lambda: _enqueue_refresh(flow_run_id), robust=True)
    return Delivery("delivered", submission)


def _enqueue_refresh(flow_run_id: str) -> None:
    from flows_integration import tasks as integration_tasks

    integration_tasks.refresh_run.apply_async(args=(flow_run_id,), retry=False)


def _refused(submission: Submission) -> Delivery:
    with transaction.atomic():
        item = (
            ReviewItem.objects.select_for_update().select_related("run").get(pk=submission.item_id)
        )
        _submission_transition(submission, SubmissionStatus.REFUSED)
        submission.save()
        if item.status in (ItemStatus.SENDING, ItemStatus.NEEDS_ATTENTION):
            _transition(item, ItemStatus.SUPERSEDED)
            item.save()
        audit_record(action="submission.refused", item=item, submission=submission.pk)
        _open_current_pause(item.run, settled=item)
        # After a 409 the mirror still shows the pause we answered: bring it up to date (its
        # signal then opens the Run's next pause, if there is one).
        flow_run_id = str(item.run.flow_run_id)
        transaction.on_commit(lambda: _enqueue_refresh(flow_run_id), robust=True)
    return Delivery("refused", submission)


def _delivery_failed(
    submission: Submission, exc: flows_client.FlowsError, *, sending: bool
) -> Delivery:
    """``sending``: Update Run failed (else the Get Run asked before it)."""
    if sending and exc.status == 400:
        return _rejected(submission, exc)
    if sending and exc.status == 409:
        # Our engine: the Run is not PENDING. Nothing of ours was applied by this call.
        _set(submission, maybe_sent=False)
        return _refused(submission)
    if sending:
        maybe_sent = exc.outcome_unknown
    else:
        # Get Run failed: the earlier Update Run's outcome is as unknown as before, so the
        # next attempt must ask again (clearing it would send the input a second time). The
        # try counts, or an API down for good would never end in "needs attention".
        maybe_sent = submission.maybe_sent
        _set(submission, attempts=submission.attempts + 1)
    if not exc.retryable or submission.attempts >= settings.REVIEW_SUBMIT_ATTEMPTS:
        if exc.retryable:
            health_record_failure(exc)
        if sending:
            _set(submission, maybe_sent=exc.outcome_unknown)
        return _failed(submission, error=str(exc), status=exc.status)
    health_record_failure(exc)
    # A 429 or 503 may say when to come back; never sooner than that.
    delay = max(_backoff(submission.attempts), exc.retry_after or 0)
    _set(
        submission,
        maybe_sent=maybe_sent,
        last_error=str(exc)[:500],
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        locked_until=None,
    )
    audit_record(
        action="submission.retry",
        item=submission.item,
        submission=submission.pk,
        attempt=submission.attempts,
        error=exc.status,
    )
    transaction.on_commit(lambda: _enqueue_delivery(submission.pk, delay), robust=True)
    return Delivery("retry", submission)


def _backoff(attempt: int) -> float:
    """The client's back-off (jittered, so a recovered API is not stampeded), on our settings."""
    return flows_client.backoff_delay(
        attempt, base=settings.REVIEW_SUBMIT_BACKOFF, cap=settings.REVIEW_SUBMIT_BACKOFF_MAX
    )


def _rejected(submission: Submission, exc: flows_client.FlowsError) -> Delivery:
    """A 400: the Run refused the input. The same reviewer gets the item back, claimed, with the
    server's error on the field it names."""
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=submission.item_id)
        _submission_transition(submission, SubmissionStatus.REJECTED)
        submission.maybe_sent = False
        submission.last_error = str(exc)[:500]
        submission.field_errors = [[exc.param or "", exc.message]]
        submission.save()
        if item.status == ItemStatus.SENDING:
            _transition(item, ItemStatus.CLAIMED)
            item.claimed_by = submission.submitted_by
            item.lease_until = timezone.now() + lease_length()
            item.save()
        audit_record(
            action="submission.rejected", item=item, submission=submission.pk, param=exc.param
        )
    return Delivery("rejected", submission)


def _failed(submission: Submission, *, error: str, status: int | None) -> Delivery:
    """Retries are over: a supervisor decides. ``maybe_sent`` stays as it is: an answer that may
    have arrived is never called refused or superseded (``item_close`` settles it)."""
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=submission.item_id)
        _submission_transition(submission, SubmissionStatus.FAILED)
        submission.last_error = error[:500]
        submission.save()
        if item.status == ItemStatus.SENDING:
            _transition(item, ItemStatus.NEEDS_ATTENTION)
            item.save()
            _attention_notify(item, submission)
        audit_record(
            action="submission.failed",
            item=item,
            submission=submission.pk,
            error=status,
            outcome_unknown=submission.maybe_sent,
        )
    return Delivery("failed", submission)


def _attention_notify(item: ReviewItem, submission: Submission) -> None:
    """An item needs attention: its queue's supervisors decide, and the person who answered
    learns that their answer is waiting (told first, so that a submitter who supervises gets
    the notice worded for them, and ``notify`` sends them no second one)."""
    label = notifications.item_label(item)
    notifications.notify(
        users=[submission.submitted_by],
        kind=NotificationKind.NEEDS_ATTENTION,
        item=item,
        text=f"Your answer to {label} could not be delivered; a supervisor will see to it.",
    )
    notifications.notify(
        users=notifications.supervisors_of(item),
        kind=NotificationKind.NEEDS_ATTENTION,
        item=item,
        text=f"{label} needs attention: its answer could not be delivered.",
    )


def submission_retry(
    *, item: ReviewItem, user: Any, ip: str | None = None, arrived: bool | None = None
) -> Submission:
    """A supervisor sends a failed submission again (the API is back), or, when it is not known
    whether it arrived, says whether it did: ``arrived=True`` records it delivered,
    ``arrived=False`` sends it again as never sent. Without a decision, an unconfirmed answer is
    asked about first, as any unknown outcome is."""
    if not roles.is_supervisor(user):
        raise ReviewError("Only a supervisor can send this again.")
    with transaction.atomic():
        locked = ReviewItem.objects.select_for_update().select_related("run").get(pk=item.pk)
        submission = locked.submissions.filter(status=SubmissionStatus.FAILED).first()
        if locked.status != ItemStatus.NEEDS_ATTENTION or submission is None:
            raise ReviewError("There is nothing to send again.")
        if arrived is not None and not submission.maybe_sent:
            raise ReviewError("This answer never reached the Flows service: send it again.")
        if arrived:
            _answer_arrived(submission, locked, settled_by="a supervisor", actor=user, ip=ip)
            run_moved = (
                locked.run.status != RunStatus.PENDING or locked.run.state_id != locked.state_id
            )
            _transition(locked, ItemStatus.RESUMED if run_moved else ItemStatus.DELIVERED)
            locked.save()
            flow_run_id = str(locked.run.flow_run_id)
            transaction.on_commit(lambda: _enqueue_refresh(flow_run_id), robust=True)
            item.refresh_from_db()
            return submission
        if arrived is False:
            submission.maybe_sent = False
        _transition(locked, ItemStatus.SENDING)
        locked.save()
        _submission_transition(submission, SubmissionStatus.PENDING)
        submission.attempts = 0
        submission.next_attempt_at = timezone.now()
        submission.save()
        audit_record(
            action="submission.resent", actor=user, item=locked, ip=ip, decided_not_arrived=arrived
        )
        transaction.on_commit(lambda: _enqueue_delivery(submission.pk), robust=True)
    item.refresh_from_db()
    return submission


def outbox_sweep() -> int:
    """Re-send submissions whose time has come and that no worker holds (broker outage, a lost
    task, a worker killed mid-call)."""
    now = timezone.now()
    due = list(
        Submission.objects.filter(status=SubmissionStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .values_list("pk", flat=True)[:500]
    )
    for submission_id in due:
        _enqueue_delivery(submission_id)
    return len(due)
