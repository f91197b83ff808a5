"""Notifications: what one person should know about an item (assigned to them, returned to them,
due soon, overdue, needs attention), in the app and, for the kinds they opted into, by e-mail.

A notification's text names the item as the queue does (its Run's short id and its step), never
patient data: an e-mail carries that text and a link, nothing more.

The database is the outbox: ``notify`` writes the rows in the caller's transaction and, once it
commits, enqueues one e-mail task per row whose person asked for that kind by e-mail. The task
claims the row (``emailed_at``) with a conditional UPDATE before it sends, so a task that runs
twice sends once; ``notifications_email_sweep`` (beat) enqueues what a broker outage left behind.
"""

import logging
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from reviewqueue.models import Notification, NotificationKind, ReviewItem, StaffPreferences
from reviewqueue.selectors import state_title

logger = logging.getLogger(__name__)

# The header shows at most this many ("99+"): counting stops there, so a person with thousands
# unread costs the page no more than one with a hundred.
UNREAD_SHOWN = 99
PAGE_SIZE = 50
# The sweep re-sends e-mails of notifications this recent only: older news is stale by e-mail
# (the page still has it), and a person who opts in today is not sent last month's.
EMAIL_SWEEP_WINDOW = timedelta(hours=1)
# ...and leaves the newest ones to the tasks enqueued on commit.
EMAIL_SWEEP_GRACE = timedelta(minutes=2)


def item_label(item: ReviewItem) -> str:
    """How a notification names an item: "Run 1a2b3c4d, Sign-off" (no patient data)."""
    return f"Run {item.run_ref[:8]}, {state_title(item.version.document, item.state_id)}"


def notify(
    *, users: Iterable[Any], kind: NotificationKind, item: ReviewItem | None, text: str
) -> list[Notification]:
    """One notification per person (each person once, however often they are named), in the
    caller's transaction; after it commits, an e-mail to each who asked for ``kind`` by e-mail.

    A person who still has this kind of notice about this item unread gets no second one (an
    item reassigned back and forth, a supervisor who is also the submitter): one unread line
    says it. ``text`` must name the item by ``item_label``, never by patient data.
    """
    people: dict[int, Any] = {}
    for user in users:
        if user is not None:
            people.setdefault(user.pk, user)
    if item is not None and people:
        for user_id in Notification.objects.filter(
            user_id__in=list(people), kind=kind, item=item, read_at__isnull=True
        ).values_list("user_id", flat=True):
            people.pop(user_id, None)
    if not people:
        return []
    rows = Notification.objects.bulk_create(
        Notification(user=user, kind=kind, item=item, text=text[:300]) for user in people.values()
    )
    wanted = _email_wanted(kind, people.values())
    to_email = [row.pk for row in rows if row.user_id in wanted]
    if to_email:
        transaction.on_commit(partial(_enqueue_emails, to_email), robust=True)
    return rows


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


def _email_wanted(kind: str, users: Iterable[Any]) -> set[int]:
    """Of ``users``, the ids of those with an e-mail address who asked for ``kind`` by e-mail.
    Read in Python: SQLite has no JSON ``contains`` for the list of kinds."""
    with_address = {user.pk for user in users if user.email}
    return {
        user_id
        for user_id, kinds in StaffPreferences.objects.filter(user_id__in=with_address).values_list(
            "user_id", "email_notifications"
        )
        if isinstance(kinds, list) and kind in kinds
    }


def _enqueue_emails(notification_ids: list[int]) -> None:
    from reviewqueue import tasks  # tasks import the services, which import this module

    for notification_id in notification_ids:
        # No publish retries: with the broker down the sweep enqueues it later.
        tasks.email_notification.apply_async(args=(notification_id,), retry=False)


def notification_email(notification_id: int) -> bool:
    """E-mail one notification to its person, at most once: True when this call sent it.

    The row is claimed with a conditional UPDATE before the e-mail goes out, so two runs of the
    task (a redelivered message, the sweep racing the on-commit task) send it once; an e-mail
    that then fails to send is not sent again (the notification is still on the page). The
    person's choice is read again here: they may have opted out since.
    """
    notification = Notification.objects.select_related("user").filter(pk=notification_id).first()
    if notification is None or notification.emailed_at is not None:
        return False
    user = notification.user
    if not user.is_active or user.pk not in _email_wanted(notification.kind, [user]):
        return False
    claimed = Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    if claimed != 1:
        return False
    subject, body = email_content(notification)
    try:
        send_mail(subject, body, None, [user.email])
    except Exception:
        # Its id only: the address is personal data, the text needs no repeating.
        logger.exception("Notification %s: the e-mail could not be sent", notification.pk)
        return False
    return True


def email_content(notification: Notification) -> tuple[str, str]:
    """The e-mail's subject and body: the notification's text and a link, nothing else (no
    patient data: the text names items by Run short id and step)."""
    text = " ".join(notification.text.split())
    subject = f"Flowdesk: {text}"
    if len(subject) > 150:
        subject = subject[:149] + "…"
    kind = NotificationKind(notification.kind).label
    body = (
        f"{text}\n\n"
        f"Open it in Flowdesk: {absolute_url(notification_target(notification))}\n\n"
        f"You get this e-mail because you asked for e-mails about “{kind}”. To stop them, "
        f"change your preferences: {absolute_url(reverse('reviewqueue:preferences'))}\n"
    )
    return subject, body


def absolute_url(path: str) -> str:
    """``path`` on this site, for links that leave it (e-mail): ``FLOWDESK_BASE_URL``."""
    return f"{settings.FLOWDESK_BASE_URL}{path}"


def notification_target(notification: Notification) -> str:
    """Where a notification leads: its item, else the person's own items in the queue (a bulk
    move names no one item)."""
    if notification.item_id is not None:
        return reverse("reviewqueue:item", args=[notification.item_id])
    return reverse("reviewqueue:queue") + "?assignee=me"


def notifications_email_sweep() -> int:
    """Enqueue the e-mails a broker outage kept from their on-commit task: notifications of
    the last hour, not e-mailed, whose person asked for them. The task settles duplicates."""
    now = timezone.now()
    waiting = Notification.objects.filter(
        emailed_at__isnull=True,
        created_at__gte=now - EMAIL_SWEEP_WINDOW,
        created_at__lt=now - EMAIL_SWEEP_GRACE,
        user__is_active=True,
    ).exclude(user__email="")
    rows = list(waiting.values_list("pk", "kind", "user_id")[:1000])
    kinds = dict(
        StaffPreferences.objects.filter(
            user_id__in={user_id for _, _, user_id in rows}
        ).values_list("user_id", "email_notifications")
    )
    due = [
        pk
        for pk, kind, user_id in rows
        if isinstance(kinds.get(user_id), list) and kind in kinds[user_id]
    ]
    if due:
        _enqueue_emails(due)
    return len(due)


# --- Reading ---------------------------------------------------------------------------------


def unread_count(user: Any) -> int:
    """The header's number: at most ``UNREAD_SHOWN + 1`` (shown "99+"). One query that reads
    at most 100 entries of the partial index ``notification_unread_idx`` (user, created_at): no
    COUNT, whose cost would grow with a person's unread notifications."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True).order_by()
    return len(unread.values_list("created_at", flat=True)[: UNREAD_SHOWN + 1])


def notifications_page(user: Any, page: int) -> tuple[list[Notification], bool]:
    """One page of ``user``'s notifications, newest first, and whether there is a next (one
    row more is fetched instead of counting them all)."""
    start = (page - 1) * PAGE_SIZE
    rows = list(
        Notification.objects.filter(user=user).order_by("-created_at", "-pk")[
            start : start + PAGE_SIZE + 1
        ]
    )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def notification_open(*, user: Any, notification_id: int) -> Notification | None:
    """Mark one of ``user``'s notifications read (it stays read if it was); None when it is
    not theirs (or not there)."""
    notification = Notification.objects.filter(pk=notification_id, user=user).first()
    if notification is not None and notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=notification.read_at
        )
    return notification


def notifications_read_all(*, user: Any) -> int:
    """Mark all of ``user``'s notifications read; how many were unread."""
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )
