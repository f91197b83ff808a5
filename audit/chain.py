"""The audit trail's hash chain, as plain functions (the migration that copies old rows uses
them too, so they must not change meaning).

Each event's ``link`` is SHA-256 over the previous event's link and the event's own content in
one canonical JSON form. Changing an event breaks its own link; removing one breaks the next;
swapping two breaks the first of them. The last link and the number of events are kept apart
(``AuditChainHead``), so cutting events off the end is seen as well.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def canonical(
    *,
    at: datetime,
    actor_id: int | None,
    action: str,
    item_id: int | None,
    flow_run_id: Any,
    ip: str | None,
    detail: Any,
) -> bytes:
    """The event's content, the same bytes before and after a round trip through the database."""
    content = {
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor_id,
        "action": action,
        "item": item_id,
        "run": str(flow_run_id) if flow_run_id is not None else None,
        "ip": ip,
        "detail": detail,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_of(event: Any) -> bytes:
    """``canonical`` of an event row (the model's, or a migration's historical one)."""
    return canonical(
        at=event.at,
        actor_id=event.actor_id,
        action=event.action,
        item_id=event.item_id,
        flow_run_id=event.flow_run_id,
        ip=event.ip,
        detail=event.detail,
    )


def link(previous: str, content: bytes) -> str:
    return hashlib.sha256(previous.encode() + content).hexdigest()
