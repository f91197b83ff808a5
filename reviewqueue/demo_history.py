"""Two weeks of finished work for `make run`'s demo, so the supervisors' dashboard means something
on first start: Runs whose pauses were claimed, answered and delivered by the demo reviewers, some
late, some declined, postponed or returned with the queues' reason codes, a few answers rejected
by Flows, and two items needing attention.

These are mirror rows only, of Runs the embedded engine never ran. Every Run is terminal
(COMPLETE, a few ERROR): reconcile refreshes only non-terminal Runs
(``flows_integration.services._reconcile_runs``) and webhooks come only for the engine's own
Runs, so nothing ever asks the engine about them. Their ids are fixed (``history_run_ids``), which
is how a second ``load_demo`` sees the history is there and adds nothing.

The two items needing attention are the one liberty taken: their Runs are COMPLETE too, where a
real mirror would still show them waiting (PENDING) until someone decides. A PENDING mirror row
of a Run the engine never had would be asked about by every reconcile pass, and fail each time.
A supervisor who decides "it arrived" settles one as it would any other (the item is resumed);
sent again, it is refused, as an answer to a Run that has moved on is.

Timestamps are computed from one ``now`` handed in, and the audit events (claims, answers,
deliveries: the dashboard reads handle time from the claims) are written through
``audit.services`` with those past times, in time order, chained like any other event.
"""

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.models import AuditEvent
from flows_integration import services as integration
from flows_integration.models import FlowRun, RunStatus, TemplateVersion
from reviewqueue.business_hours import item_due_at, sla_clock
from reviewqueue.models import (
    ItemReason,
    ItemStatus,
    Queue,
    ReasonCode,
    ReasonKind,
    ReviewItem,
    Route,
    Submission,
    SubmissionStatus,
)

DAYS = 14
RUNS = 260
SEED = 12
# The Runs whose answer waits for a supervisor now (items needing attention), and their templates.
ATTENTION_RUNS = {7: "prior-authorization", 91: "billing-write-off"}
# The share of Runs started in the last day, whatever day of the week it is: the dashboard's
# hourly charts are never empty on a Monday morning.
LAST_DAY = 0.12
_NAMESPACE = uuid.UUID("5d0c6a52-6f2e-4c1b-9a57-0d3c1e2f4a12")

# Each template's pauses in order, and who of the demo reviewers answers them.
FLOWS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "prior-authorization": [
        ("clinical-review", ("alice", "bob")),
        ("supervisor-signoff", ("maria",)),
    ],
    "coverage-check": [("collect-member-id", ("alice", "bob"))],
    "billing-write-off": [
        ("request-write-off", ("alice",)),
        ("manager-approval", ("maria",)),
        ("post-adjustment", ("alice",)),
    ],
}
# How many of the Runs are of each template.
MIX = {"prior-authorization": 0.42, "coverage-check": 0.38, "billing-write-off": 0.20}

# Obviously made up: nobody is called this.
FIRST_NAMES = ["Demo", "Sample", "Testy", "Example", "Placeholder", "Fictional", "Mock", "Dummy"]
LAST_NAMES = ["Patient", "Person", "McTestface", "Notreal", "Madeup", "Pretend", "Lorem", "Ipsum"]

ANSWERS: dict[str, dict[str, Any]] = {
    "clinical-review": {
        "decision": "approve",
        "diagnosisCodes": [{"code": "M17.11", "primary": True}],
        "criteria": {"guideline": "interqual", "met": True},
        "reviewer": {"name": "Demo Reviewer", "credential": "RN"},
    },
    "supervisor-signoff": {"signoff": "upheld", "signedBy": "Demo Director"},
    "collect-member-id": {"payerId": "60054", "memberId": "DEMO1234"},
    "request-write-off": {"reason": "small-balance", "amount": 12.5, "adjustmentCode": "CO-45"},
    "manager-approval": {"decision": "approve", "approvedAmount": 12.5},
    "post-adjustment": {"adjustmentId": "ADJ-DEMO", "statementSuppressed": True},
}


def history_run_ids() -> list[uuid.UUID]:
    """The fixed ids of the history's Runs (the same on every database)."""
    return [uuid.uuid5(_NAMESPACE, f"run-{n}") for n in range(RUNS)]


def history_exists() -> bool:
    return FlowRun.objects.filter(flow_run_id=history_run_ids()[0]).exists()


@dataclass
class _Event:
    at: datetime
    action: str
    actor: Any = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Answer:
    by: Any
    at: datetime
    status: str
    finished_at: datetime | None
    maybe_sent: bool = False
    error: str = ""
    field_errors: list[Any] = field(default_factory=list)
    pk: int | None = None


@dataclass
class _Reason:
    kind: str
    code: str
    by: Any
    at: datetime
    until: datetime | None = None


@dataclass
class _Item:
    """One pause of a history Run, with what happened to it in order."""

    item: ReviewItem
    events: list[_Event] = field(default_factory=list)
    answers: list[_Answer] = field(default_factory=list)
    reasons: list[_Reason] = field(default_factory=list)


def demo_history_ensure(*, now: datetime) -> int:
    """Create the demo's finished work of the ``DAYS`` days before ``now``, on first load only;
    returns the number of items made (0 when the history is there already, or when the demo's
    template versions are not known here)."""
    if history_exists():
        return 0
    versions = _versions_ensure()
    if versions is None:
        return 0
    users = {u.username: u for u in get_user_model().objects.filter(username__in=_reviewers())}
    if set(users) != _reviewers():
        return 0
    routes = Route.objects.select_related("template", "queue__calendar")
    codes: dict[tuple[int, str], list[ReasonCode]] = {}
    for code in ReasonCode.objects.filter(active=True).order_by("queue", "kind", "order"):
        codes.setdefault((code.queue_id, code.kind), []).append(code)
    world = _World(
        rng=random.Random(SEED),
        now=now,
        users=users,
        routes={(r.template.template_id, r.state_id): r for r in routes},
        codes=codes,
        clocks={r.queue_id: sla_clock(r.queue) for r in routes},
    )
    with transaction.atomic():
        runs, planned = [], []
        for n, run_id in enumerate(history_run_ids()):
            template_id = world.rng.choices(list(MIX), weights=list(MIX.values()))[0]
            template_id = ATTENTION_RUNS.get(n, template_id)
            run, items = _run_plan(world, n, run_id, versions[template_id])
            runs.append(run)
            planned.append(items)
        FlowRun.objects.bulk_create(runs)
        for run, items in zip(runs, planned, strict=True):
            for plan in items:
                plan.item.run = run
        flat = [plan for items in planned for plan in items]
        ReviewItem.objects.bulk_create([plan.item for plan in flat])
        _answers_create(flat)
        _reasons_create(flat, codes)
        _audit(flat)
    return len(flat)


@dataclass
class _World:
    """What every Run of the history is made from: one random sequence (seeded, so every demo
    database tells the same story), one ``now``, the demo's people, routes and reason codes."""

    rng: random.Random
    now: datetime
    users: dict[str, Any]
    routes: dict[tuple[str, str], Route]
    codes: dict[tuple[int, str], list[ReasonCode]]
    clocks: dict[int, Any]

    def route(self, template_id: str, state_id: str) -> Route:
        return self.routes.get((template_id, state_id)) or self.routes[template_id, ""]

    def code(self, queue: Queue, kind: str) -> str:
        choices = self.codes.get((queue.pk, kind))
        return self.rng.choice(choices).code if choices else ""


def _reviewers() -> set[str]:
    return {name for steps in FLOWS.values() for _, people in steps for name in people}


def _versions_ensure() -> dict[str, TemplateVersion] | None:
    """The latest stored version of each demo template. On a fresh database Flowdesk has stored
    none yet (it copies a version when it first sees one of its Runs): copy the embedded
    engine's, as ``version_ensure`` would over HTTP, read by app label since the review queue
    never imports the engine. None when neither has them."""
    found: dict[str, TemplateVersion] = {}
    engine = (
        apps.get_model("flows_engine", "TemplateVersion")
        if apps.is_installed("flows_engine")
        else None
    )
    for template_id in FLOWS:
        stored = TemplateVersion.objects.filter(template__template_id=template_id)
        if not stored.exists() and engine is not None:
            for remote in engine.objects.filter(template__template_id=template_id).order_by(
                "number"
            ):
                integration.version_store(
                    template_id=template_id,
                    number=remote.number,
                    source=json.dumps(remote.document, indent=2),
                    name=remote.template.name,
                )
        latest = stored.order_by("-number").first()
        if latest is None:
            return None
        found[template_id] = latest
    return found


def _start(rng: random.Random, now: datetime) -> datetime:
    """When a Run started: weekdays busier than weekends, office hours busier than nights."""
    if rng.random() < LAST_DAY:
        return now - timedelta(hours=1) - timedelta(seconds=rng.randrange(23 * 3600))
    while True:
        day = rng.randrange(DAYS)
        hour = rng.choices(range(24), weights=[1] * 7 + [4] * 11 + [1] * 6)[0]
        local = timezone.localtime(now) - timedelta(days=day)
        at = local.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
        busy = at.weekday() < 5 or rng.random() < 0.3
        if busy and at < now - timedelta(hours=1):
            return at


def _minutes(rng: random.Random, median: float) -> timedelta:
    """A skewed duration: most near ``median`` minutes, a long tail."""
    return timedelta(minutes=max(0.5, rng.lognormvariate(0, 0.7) * median))


def _run_plan(
    world: _World, n: int, run_id: uuid.UUID, version: TemplateVersion
) -> tuple[FlowRun, list[_Item]]:
    rng, template_id = world.rng, version.template.template_id
    first, last = FIRST_NAMES[n % 8], f"{LAST_NAMES[(n // 8) % 8]}-{n:03d}"
    input_data = {
        "patient": {
            "firstName": first,
            "lastName": last,
            "dateOfBirth": f"19{50 + n % 50}-01-01",
            "memberId": f"DEMO{n:05d}",
        },
        "payerId": "60054",
    }
    steps = FLOWS[template_id]
    if template_id == "coverage-check" and rng.random() < 0.3:
        # The payer said the coverage is inactive: a second pause, in the same queue.
        steps = [*steps, ("coverage-inactive", ("alice", "bob"))]
    # Two Runs wait for a supervisor now; a few others errored after their first step.
    attention = n in ATTENTION_RUNS
    errored = not attention and n % 29 == 3
    if attention or errored:
        steps = steps[:1]
    started = _start(rng, world.now)
    at = started + timedelta(seconds=rng.randrange(5, 40))
    plans: list[_Item] = []
    for episode, (state_id, people) in enumerate(steps, start=1):
        route = world.route(template_id, state_id)
        earlier = plans[-1].answers[-1].by if plans else None
        plan = _item_plan(
            world,
            route,
            state_id,
            [world.users[p] for p in people],
            earlier,
            opened_at=at,
            attention=attention,
            rejected=(n * 10 + episode) % 37 == 5,
        )
        item = plan.item
        item.episode, item.version, item.priority = episode, version, route.priority
        item.patient_name, item.run_ref = f"{first} {last}", str(run_id)
        plans.append(plan)
        at = (item.closed_at or plan.answers[-1].at) + timedelta(seconds=rng.randrange(2, 30))
    status = RunStatus.ERROR if errored else RunStatus.COMPLETE
    for plan in plans:
        if plan.item.closed_at is not None:
            moved_to = status if plan is plans[-1] else RunStatus.PENDING
            plan.events.append(
                _Event(plan.item.closed_at, "item.resumed", detail={"run_status": moved_to})
            )
    latest = max(event.at for plan in plans for event in plan.events)
    overflow = max(at, latest) - (world.now - timedelta(minutes=5))
    if overflow > timedelta(0):
        # Started too late to have finished by now: the same story, earlier.
        for plan in plans:
            _shift(plan, -overflow)
        started, at = started - overflow, at - overflow
    run = FlowRun(
        flow_run_id=run_id,
        template=version.template,
        version=version,
        status=status,
        input_data=input_data,
        errors=[{"status": 502, "param": None, "error": "payer_unavailable", "state": None}]
        if errored
        else [],
        remote_created_at=started,
        remote_updated_at=at,
        created_at=started,
        synced_at=at,
    )
    return run, plans


def _item_plan(
    world: _World,
    route: Route,
    state_id: str,
    people: list[Any],
    earlier: Any,
    *,
    opened_at: datetime,
    attention: bool,
    rejected: bool,
) -> _Item:
    rng, queue = world.rng, route.queue
    due_at = item_due_at(
        queue=queue, route_sla=route.sla, opened_at=opened_at, clock=world.clocks[queue.pk]
    )
    item = ReviewItem(queue=queue, state_id=state_id, opened_at=opened_at, due_at=due_at)
    opened = _Event(opened_at, "item.opened", detail={"queue": queue.pk, "state": state_id})
    plan = _Item(item, [opened])
    # Waiting in the queue: mostly well within the SLA, one in eight past it; what opens after
    # hours mostly waits for the morning (the queues' depth at midnight).
    wait = _minutes(rng, 50) if rng.random() > 0.12 else (due_at - opened_at) + _minutes(rng, 60)
    local = timezone.localtime(opened_at)
    if (local.hour >= 18 or local.hour < 7) and rng.random() < 0.6:
        morning = (local + timedelta(hours=7)).replace(hour=8, minute=0, second=0)
        wait = max(wait, morning - local + _minutes(rng, 30))
    at = opened_at + wait
    who = rng.choice(people)
    roll = rng.random()
    others = [p for p in people if p != who]
    if earlier is not None and earlier in others and roll < 0.5:
        # Back for rework to whoever answered the step before (claimed for them).
        plan.events.append(_Event(at, "item.claimed", who))
        at += _minutes(rng, 5)
        code = world.code(queue, ReasonKind.RETURN)
        plan.reasons.append(_Reason(ReasonKind.RETURN, code, who, at))
        plan.events.append(_Event(at, "item.returned", who, {"to": earlier.pk, "reason": code}))
        item.returned_to = who = earlier
        at += _minutes(rng, 30)
    elif roll < 0.07 and others:
        # Not mine: declined, and someone else takes it.
        plan.events.append(_Event(at, "item.claimed", who))
        at += _minutes(rng, 3)
        code = world.code(queue, ReasonKind.DECLINE)
        plan.reasons.append(_Reason(ReasonKind.DECLINE, code, who, at))
        plan.events.append(_Event(at, "item.declined", who, {"reason": code}))
        at += _minutes(rng, 20)
        who = rng.choice(others)
        plan.events.append(_Event(at, "item.claimed", who))
    elif roll < 0.11:
        # Put aside until the records come, then finished by the same person.
        plan.events.append(_Event(at, "item.claimed", who))
        at += _minutes(rng, 4)
        until = at + timedelta(hours=rng.choice([1, 2, 3]))
        code = world.code(queue, ReasonKind.POSTPONE)
        plan.reasons.append(_Reason(ReasonKind.POSTPONE, code, who, at, until))
        plan.events.append(
            _Event(at, "item.postponed", who, {"reason": code, "until": until.isoformat()})
        )
        at = until + _minutes(rng, 15)
        plan.events.append(_Event(at, "item.claimed", who))
    else:
        plan.events.append(_Event(at, "item.claimed", who))
    # Claim to submit: the handle time the dashboard shows.
    at += _minutes(rng, 9 if len(people) > 1 else 5)
    if rejected:
        # Flows refused the first answer (400): back to the same person, fixed and sent again.
        done = at + timedelta(seconds=rng.randrange(1, 4))
        plan.answers.append(
            _Answer(
                who,
                at,
                SubmissionStatus.REJECTED,
                done,
                error="400 invalid input",
                field_errors=[["memberId", "does not match the payer's format"]],
            )
        )
        at = done + _minutes(rng, 4)
    if attention:
        # Retries ran out not knowing whether the answer arrived: a supervisor decides.
        done = at + timedelta(minutes=rng.randrange(20, 40))
        plan.answers.append(
            _Answer(
                who,
                at,
                SubmissionStatus.FAILED,
                done,
                maybe_sent=True,
                error="Update Run timed out: it is not known whether the answer arrived.",
            )
        )
        item.status, item.status_changed_at, item.claimed_by = (
            ItemStatus.NEEDS_ATTENTION,
            done,
            who,
        )
        return plan
    delivered = at + timedelta(seconds=rng.randrange(1, 5))
    plan.answers.append(_Answer(who, at, SubmissionStatus.DELIVERED, delivered))
    item.status = ItemStatus.RESUMED
    item.closed_at = item.status_changed_at = delivered + timedelta(seconds=rng.randrange(1, 4))
    return plan


def _shift(plan: _Item, by: timedelta) -> None:
    item = plan.item
    item.opened_at += by
    item.due_at += by
    item.status_changed_at += by
    if item.closed_at is not None:
        item.closed_at += by
    for event in plan.events:
        event.at += by
        if "until" in event.detail:
            event.detail["until"] = (datetime.fromisoformat(event.detail["until"]) + by).isoformat()
    for answer in plan.answers:
        answer.at += by
        if answer.finished_at is not None:
            answer.finished_at += by
    for reason in plan.reasons:
        reason.at += by
        if reason.until is not None:
            reason.until += by


def _claim_before(plan: _Item, answer: _Answer) -> datetime | None:
    """The submitter's latest claim at or before the answer, as submission_create keeps it."""
    claims = [
        event.at
        for event in plan.events
        if event.action == "item.claimed" and event.actor == answer.by and event.at <= answer.at
    ]
    return max(claims, default=None)


def _answers_create(plans: list[_Item]) -> None:
    rows = []
    for plan in plans:
        for answer in plan.answers:
            rows.append(
                Submission(
                    item=plan.item,
                    submitted_by=answer.by,
                    input=ANSWERS.get(plan.item.state_id, {}),
                    status=answer.status,
                    created_at=answer.at,
                    attempts=8 if answer.status == SubmissionStatus.FAILED else 1,
                    next_attempt_at=answer.at,
                    maybe_sent=answer.maybe_sent,
                    last_error=answer.error,
                    field_errors=answer.field_errors,
                    finished_at=answer.finished_at,
                    claimed_at=_claim_before(plan, answer),
                )
            )
    Submission.objects.bulk_create(rows)
    made = iter(rows)
    for plan in plans:
        for answer in plan.answers:
            answer.pk = next(made).pk
            plan.events.extend(_answer_events(plan, answer))


def _answer_events(plan: _Item, answer: _Answer) -> Iterator[_Event]:
    yield _Event(answer.at, "item.submitted", answer.by, {"submission": answer.pk})
    assert answer.finished_at is not None
    if answer.status == SubmissionStatus.DELIVERED:
        yield _Event(answer.finished_at, "submission.delivered", detail={"submission": answer.pk})
    elif answer.status == SubmissionStatus.REJECTED:
        yield _Event(
            answer.finished_at,
            "submission.rejected",
            detail={"submission": answer.pk, "param": "memberId"},
        )
    else:
        yield _Event(
            answer.finished_at,
            "submission.failed",
            detail={"submission": answer.pk, "error": None, "outcome_unknown": True},
        )


def _reasons_create(plans: list[_Item], codes: dict[tuple[int, str], list[ReasonCode]]) -> None:
    by_code = {(c.queue_id, c.kind, c.code): c for found in codes.values() for c in found}
    ItemReason.objects.bulk_create(
        ItemReason(
            item=plan.item,
            kind=reason.kind,
            code=reason.code,
            reason=by_code.get((plan.item.queue_id, reason.kind, reason.code)),
            by=reason.by,
            at=reason.at,
            until=reason.until,
        )
        for plan in plans
        for reason in plan.reasons
    )


def _audit(plans: list[_Item]) -> None:
    """The history's events, through the audit trail's own chaining, in time order: each made
    by ``audit_event`` and given its past time before it is chained (the time is part of what
    the link covers)."""
    events: list[AuditEvent] = []
    for plan in plans:
        for event in plan.events:
            row = audit.audit_event(
                action=event.action,
                actor=event.actor,
                item_id=plan.item.pk,
                flow_run_id=plan.item.run_ref,
                detail=event.detail,
            )
            row.at = event.at
            events.append(row)
    events.sort(key=lambda row: row.at)
    audit.append(events)
