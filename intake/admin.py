"""API clients in Django admin: created with a token shown once, revoked with an action."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from intake import services
from intake.models import ApiClient, StartedRun


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "token_hint", "is_active", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    fields = ["name", "token_hint", "is_active", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["token_hint", "is_active", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A client's name is fixed once its token is handed out: logs and audit name it.
        return [*self.readonly_fields, "name"] if obj is not None else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields if obj is not None else ["name"]

    def save_model(self, request: HttpRequest, obj: ApiClient, form: Any, change: bool) -> None:
        if change:
            return  # nothing of a client is editable once made
        created, token = services.client_create(name=obj.name, by=request.user)
        obj.pk, obj.token_hint = created.pk, created.token_hint
        # Shown by response_add on this one response, never stored anywhere (not in messages,
        # which travel in a cookie or the session).
        request._intake_token = token  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiClient, post_url_continue: str | None = None
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "client": obj,
            "token": getattr(request, "_intake_token", ""),
            "title": f"The token of {obj.name}",
        }
        return TemplateResponse(request, "admin/intake/apiclient/token.html", context)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the Runs a client started keep naming it

    @admin.action(description="Revoke the selected clients' tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> None:
        for api_client in queryset:
            services.client_revoke(api_client=api_client, by=request.user)
        messages.success(request, f"Revoked {len(queryset)} client(s); their tokens are refused.")


@admin.register(StartedRun)
class StartedRunAdmin(admin.ModelAdmin):
    """Read-only: what started which Run. A start whose outcome stayed unknown may be deleted by
    a superuser who has checked Flows, so that its key can start the Run again."""

    list_display = [
        "created_at",
        "template_id",
        "version",
        "source",
        "client",
        "external_id",
        "flow_run",
        "outcome_unknown",
    ]
    list_filter = ["source", "outcome_unknown", "client"]
    search_fields = ["external_id", "flow_run__flow_run_id", "template_id"]
    list_select_related = ["client", "flow_run"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser and (obj is None or obj.flow_run_id is None))
