from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse

from audit.models import AuditEvent
from audit.services import audit_read

VIEW_PATIENT_DATA = "audit.view_patient_data"


class PatientDataAdmin(admin.ModelAdmin):
    """Admin pages of rows that carry patient data: shown only to people who hold
    ``audit.view_patient_data`` (a flow admin configures templates and routing without it), and
    every list and every row opened is an audit event, as on the staff pages."""

    # The field naming the row's Run, so the event can be found by Run.
    run_id_field = "flow_run_id"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(VIEW_PATIENT_DATA) and super().has_view_permission(
            request, obj
        )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if response.status_code == 200:
            audit_read(action="admin.list_viewed", model=self.opts.label_lower)
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200:
            row = self.get_object(request, unquote(object_id))
            audit_read(
                action="admin.viewed",
                flow_run_id=getattr(row, self.run_id_field, None),
                model=self.opts.label_lower,
                object_id=str(object_id),
            )
        return response


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail, append-only: nobody adds, edits or deletes it, an admin included."""

    list_display = ("at", "action", "actor", "flow_run_id", "ip")
    list_filter = ("action",)
    list_select_related = ("actor",)
    search_fields = ("=flow_run_id",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
