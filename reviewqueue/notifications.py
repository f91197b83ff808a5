"""Notifications: what one person should know about an item (assigned to them, returned to them,
due soon, overdue, needs attention), in the app and, for the kinds they opted into, by e-mail.

A notification's text names the item as the queue does (its Run's short id and its step), never
patient data: an e-mail carries that text and a link, nothing more.
"""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Q, QuerySet

from reviewqueue.models import Notification, NotificationKind, ReviewItem
from reviewqueue.selectors import state_title


def item_label(item: ReviewItem) -> str:
    """How a notification names an item: "Run 1a2b3c4d, Sign-off" (no patient data)."""
    return f"Run {item.run_ref[:8]}, {state_title(item.version.document, item.state_id)}"


def notify(
    *, users: Iterable[Any], kind: NotificationKind, item: ReviewItem | None, text: str
) -> list[Notification]:
    """One notification per person (each person once, however often they are named)."""
    seen: set[int] = set()
    rows = []
    for user in users:
        if user is None or user.pk in seen:
            continue
        seen.add(user.pk)
        rows.append(Notification(user=user, kind=kind, item=item, text=text[:300]))
    return Notification.objects.bulk_create(rows)


def supervisors_of(item: ReviewItem) -> QuerySet[Any]:
    """The supervisors who see to ``item``'s queue: those in one of its teams, or, when none
    is, every supervisor (a queue is never left unwatched)."""
    permission = Permission.objects.get(
        content_type__app_label="reviewqueue", codename="supervise_item"
    )
    supervisors = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(
            Q(is_superuser=True)
            | Q(user_permissions=permission)
            | Q(groups__permissions=permission)
        )
        .distinct()
    )
    in_teams = supervisors.filter(groups__queues=item.queue_id).distinct()
    return in_teams if in_teams.exists() else supervisors
