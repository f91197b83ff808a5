"""The supervisors' CSV reports (docs/supervisors.md, "Reports"): completed work, the current
queue, throughput per person. Supervisors only (404 for anyone else, as the dashboard); each
download is an audit event, whether or not it carries patient data."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.admin import VIEW_PATIENT_DATA
from config.client_ip import client_ip
from reviewqueue import report_selectors, roles, services
from reviewqueue.csv_export import csv_lines

# Reports with a column of patient data, shown only to those who hold VIEW_PATIENT_DATA.
WITH_PATIENT_DATA = frozenset({"completed", "queue"})


@login_required
@require_GET
def completed_export(request: HttpRequest) -> HttpResponseBase:
    """Answers delivered in the period, one row each."""
    return _export(request, report="completed")


@login_required
@require_GET
def queue_export(request: HttpRequest) -> HttpResponseBase:
    """Open and claimed items now."""
    return _export(request, report="queue")


@login_required
@require_GET
def throughput_export(request: HttpRequest) -> HttpResponseBase:
    """Per person: completed, median handle time and declines in the period."""
    return _export(request, report="throughput")


def _export(request: HttpRequest, *, report: str) -> HttpResponseBase:
    if not roles.is_supervisor(request.user):
        raise Http404
    try:
        filters = report_selectors.report_filters(request.GET)
    except report_selectors.FilterError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    patient_data = report in WITH_PATIENT_DATA and request.user.has_perm(VIEW_PATIENT_DATA)
    described = filters.described()
    services.audit_record(
        action="report.exported",
        actor=request.user,
        ip=client_ip(request),
        report=report,
        filters=described,
        patient_data=patient_data,
    )
    # Named after what it holds, so that two downloads side by side are told apart.
    scope = "-".join(str(value) for key, value in sorted(described.items()) if key != "queue")
    queue = f"-queue{filters.queue}" if filters.queue is not None else ""
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    name = f"flowdesk-{report}{queue}-{scope if report != 'queue' else 'now'}-{stamp}.csv"
    return StreamingHttpResponse(
        csv_lines(report_selectors.rows(report, filters=filters, patient_data=patient_data)),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
