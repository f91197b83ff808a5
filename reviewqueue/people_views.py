"""Supervisors' page of people: who holds how much, and whose "Get next" is paused (out sick,
away), with the buttons that pause and resume it (``services.reviewer_pause``)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.client_ip import client_ip
from reviewqueue import roles, services
from reviewqueue.models import ItemStatus, StaffPreferences


@dataclass(frozen=True)
class Person:
    user: Any
    name: str
    claims: int
    paused_at: datetime | None
    paused_by: str


def _supervisor(request: HttpRequest) -> None:
    if not roles.is_supervisor(request.user):
        raise Http404


def people() -> list[Person]:
    """Every active member of a team that works a queue, and anyone holding claims, by name."""
    users = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__queues__isnull=False) | Q(claimed_items__status=ItemStatus.CLAIMED))
        .distinct()
        .annotate(
            claims=Count(
                "claimed_items",
                filter=Q(claimed_items__status=ItemStatus.CLAIMED),
                distinct=True,
            )
        )
    )
    paused = {
        preferences.user_id: preferences
        for preferences in StaffPreferences.objects.filter(
            get_next_paused_at__isnull=False
        ).select_related("get_next_paused_by")
    }
    found = []
    for user in users:
        preferences = paused.get(user.pk)
        by = preferences.get_next_paused_by if preferences else None
        found.append(
            Person(
                user=user,
                name=roles.display_name(user),
                claims=user.claims,
                paused_at=preferences.get_next_paused_at if preferences else None,
                paused_by=roles.display_name(by) if by is not None else "",
            )
        )
    return sorted(found, key=lambda person: person.name.lower())


@login_required
@require_GET
def people_list(request: HttpRequest) -> HttpResponse:
    _supervisor(request)
    return render(request, "reviewqueue/people.html", {"people": people()})


@login_required
@require_POST
def person_pause(request: HttpRequest, pk: int) -> HttpResponse:
    """Pause someone's "Get next": their claims go back to the queue."""
    _supervisor(request)
    reviewer = get_object_or_404(get_user_model(), pk=pk, is_active=True)
    name = roles.display_name(reviewer)
    try:
        released = services.reviewer_pause(
            reviewer=reviewer, by=request.user, ip=client_ip(request)
        )
    except services.ReviewError as exc:
        messages.error(request, str(exc))
    else:
        went_back = f"{released} item{'s' if released != 1 else ''} went back to the queue"
        messages.success(request, f"{name}'s “Get next” is paused; {went_back}.")
    return redirect(reverse("reviewqueue:people") + f"#person-{reviewer.pk}")


@login_required
@require_POST
def person_resume(request: HttpRequest, pk: int) -> HttpResponse:
    _supervisor(request)
    reviewer = get_object_or_404(get_user_model(), pk=pk, is_active=True)
    try:
        services.reviewer_resume(reviewer=reviewer, by=request.user, ip=client_ip(request))
    except services.ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{roles.display_name(reviewer)} gets work again.")
    return redirect(reverse("reviewqueue:people") + f"#person-{reviewer.pk}")
