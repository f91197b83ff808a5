"""A person's own notifications: the page, the top bar's unread count, opening one (read, then
its item) and marking all read. Only ever the signed-in person's: another's id is a 404.

Opening is a POST (GET changes nothing), so that neither a prefetching browser nor a link in
someone else's page marks anything read.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from reviewqueue import notifications


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _page_number(request: HttpRequest) -> int:
    page = request.GET.get("page", "1")
    return max(1, min(int(page), 10_000)) if page.isdecimal() and len(page) < 6 else 1


@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    """Mine, newest first, unread marked, paged."""
    page = _page_number(request)
    rows, has_next = notifications.notifications_page(request.user, page)
    context = {
        "rows": rows,
        "page": {"page": page, "has_next": has_next},
        "query": "",
    }
    return render(request, "reviewqueue/notifications.html", context)


@login_required
@require_GET
def notification_count(request: HttpRequest) -> HttpResponse:
    """The top bar's count, polled every minute (``base.html#unread-count``)."""
    return render(request, "base.html#unread-count")


@login_required
@require_POST
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one read and go where it leads (its item)."""
    notification = notifications.notification_open(user=request.user, notification_id=pk)
    if notification is None:
        raise Http404
    target = notifications.notification_target(notification)
    return HttpResponseClientRedirect(target) if _htmx(request) else redirect(target)


@login_required
@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    count = notifications.notifications_read_all(user=request.user)
    plural = "" if count == 1 else "s"
    messages.success(request, f"{count} notification{plural} marked read.")
    target = reverse("reviewqueue:notifications")
    return HttpResponseClientRedirect(target) if _htmx(request) else redirect(target)
