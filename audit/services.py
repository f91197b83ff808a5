"""Writing to the audit trail, and checking it.

Every event is chained to the one before it under a lock on the chain's head row, taken inside
the caller's transaction: an action and its audit event commit together or not at all.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from audit import chain, context
from audit.models import AuditChainHead, AuditEvent

# A page polled every few seconds, or reloaded, is one read for the audit trail: the same person
# reading the same thing again within this window adds no row. Whether a read is recorded is
# never the client's to say.
READ_FOLDED_WITHIN = timedelta(minutes=5)


def audit_event(
    *,
    action: str,
    actor: Any = None,
    item_id: int | None = None,
    flow_run_id: Any = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """An unsaved event; actor and address default to the current request's (``audit.context``).
    ``detail`` takes ids, statuses and field names, never values."""
    current = context.current()
    if actor is None and ip is None:
        actor, ip = current.actor, current.ip
    return AuditEvent(
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        item_id=item_id,
        flow_run_id=flow_run_id,
        ip=ip,
        # Stored as it will read back, so the link is over what the database keeps.
        detail=json.loads(json.dumps(detail or {}, cls=DjangoJSONEncoder)),
    )


def append(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """Chain and store ``events``, in order."""
    events = list(events)
    if not events:
        return events
    # No savepoint of its own: a failure here fails the caller's transaction, and the three
    # statements are all an audited page pays.
    with transaction.atomic(savepoint=False):
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        for event in events:
            event.link = head.link = chain.link(head.link, event.content())
        # One INSERT, its rows numbered in the order given: the order they were chained in.
        AuditEvent.objects.bulk_create(events)
        head.events += len(events)
        head.save(update_fields=["link", "events"])
    return events


def audit_record(
    *,
    action: str,
    actor: Any = None,
    item_id: int | None = None,
    flow_run_id: Any = None,
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append one event (see ``audit_event``)."""
    event = audit_event(
        action=action, actor=actor, item_id=item_id, flow_run_id=flow_run_id, ip=ip, detail=detail
    )
    return append([event])[0]


def audit_read(
    *,
    action: str,
    actor: Any = None,
    item_id: int | None = None,
    flow_run_id: Any = None,
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent | None:
    """Record that someone read patient data, unless they read exactly this a moment ago."""
    event = audit_event(
        action=action, actor=actor, item_id=item_id, flow_run_id=flow_run_id, ip=ip, detail=detail
    )
    recent = AuditEvent.objects.filter(
        action=event.action,
        actor=event.actor,
        item_id=event.item_id,
        flow_run_id=event.flow_run_id,
        at__gte=timezone.now() - READ_FOLDED_WITHIN,
    )
    if any(seen.detail == event.detail for seen in recent.only("detail")):
        return None
    return append([event])[0]


@dataclass(frozen=True)
class ChainBreak:
    """Where the trail stops proving itself: the first event whose link does not follow, or
    (``event`` None) an end that is not where the head says."""

    event: AuditEvent | None
    reason: str


def verify_chain() -> tuple[int, ChainBreak | None]:
    """Walk every event in order; return how many were checked and the first break, if any."""
    previous, checked = chain.GENESIS, 0
    for event in AuditEvent.objects.order_by("pk").iterator(chunk_size=2000):
        expected = chain.link(previous, event.content())
        if event.link != expected:
            reason = (
                "its content was changed, or an event before it was removed or moved"
                if event.link
                else "it has no link"
            )
            return checked, ChainBreak(event, reason)
        previous, checked = event.link, checked + 1
    head = AuditChainHead.objects.filter(pk=1).first() or AuditChainHead()
    if (head.link, head.events) != (previous, checked):
        return checked, ChainBreak(
            None,
            f"the trail ends after {checked} events but the head records {head.events}: "
            "events were removed from its end",
        )
    return checked, None
