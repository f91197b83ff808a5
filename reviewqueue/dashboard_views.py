"""The supervisors' dashboard: counts only, each linking to the queue page's list it counts.

It shows no patient data (numbers, queue names and colleagues' names), so reading it writes no
audit row, unlike the queue and item pages.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reviewqueue import dashboard_selectors, roles

REFRESH_SECONDS = 60


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Queues and people at a glance; htmx refreshes the numbers every minute."""
    if not roles.is_supervisor(request.user):
        raise Http404
    filters = dashboard_selectors.DashboardFilters.from_query(request.GET)
    context = {
        "filters": filters,
        "board": dashboard_selectors.dashboard(filters=filters),
        "periods": dashboard_selectors.PERIODS,
        "age_labels": dashboard_selectors.AGE_LABELS.values(),
        "refresh_seconds": REFRESH_SECONDS,
    }
    if getattr(request, "htmx", False):
        return render(request, "reviewqueue/dashboard.html#dashboard-numbers", context)
    return render(request, "reviewqueue/dashboard.html", context)
