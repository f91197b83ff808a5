"""The audit report: compliance staff read and export the trail (``audit.view_auditevent``).
Reading it and exporting it are audit events themselves."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from config.client_ip import client_ip
from reviewqueue import roles, searches, services
from reviewqueue.audit_selectors import (
    ACTION_GROUPS,
    ACTION_TITLES,
    AuditFilters,
    action_title,
    audit_page,
    detail_text,
    export_rows,
)
from reviewqueue.csv_export import csv_lines


def _filters(request: HttpRequest) -> tuple[AuditFilters, bool]:
    if not request.user.has_perm(roles.READ_AUDIT):
        raise PermissionDenied
    query, search_gone = searches.search_query(request)
    return AuditFilters.from_query(query), search_gone


@login_required
@require_http_methods(["GET", "POST"])
def audit_report(request: HttpRequest) -> HttpResponse:
    """The trail, newest first, filtered; the patient's name is posted and kept out of the URL
    as the queue's search is (``searches``)."""
    if request.method == "POST" or "q" in request.GET:
        if not request.user.has_perm(roles.READ_AUDIT):
            raise PermissionDenied
        return searches.search_redirect(request, to="reviewqueue:audit")
    filters, search_gone = _filters(request)
    page = audit_page(filters)
    services.audit_read(
        action="audit.viewed",
        actor=request.user,
        ip=client_ip(request),
        page=filters.page,
        filters=filters.described(),
    )
    context = {
        "filters": filters,
        "search_gone": search_gone,
        "page": page,
        "rows": [(e, action_title(e.action), detail_text(e.detail)) for e in page.events],
        "action_groups": [(key, title) for key, (title, _) in ACTION_GROUPS.items()],
        "actions": sorted(ACTION_TITLES.items(), key=lambda pair: pair[1]),
        "query": searches.query_without(request.GET, "page"),
        "zone": timezone.get_current_timezone_name(),
    }
    return render(request, "reviewqueue/audit_report.html", context)


@login_required
@require_GET
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    """The same events as the report shows, every page of them, as CSV."""
    filters, _ = _filters(request)
    services.audit_record(
        action="audit.exported",
        actor=request.user,
        ip=client_ip(request),
        filters=filters.described(),
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return StreamingHttpResponse(
        csv_lines(export_rows(filters)),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="flowdesk-audit-{stamp}.csv"'},
    )
