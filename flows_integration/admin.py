from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

import flowspec
from audit.admin import PatientDataAdmin
from flows_integration import client as flows_client
from flows_integration import publishing, services
from flows_integration.models import (
    ApiHealth,
    FlowRun,
    FlowTemplate,
    SyncPass,
    TemplateVersion,
    WebhookEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that sync writes; an admin may look, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = readonly_fields = ("number", "stored_at")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FlowTemplate)
class FlowTemplateAdmin(admin.ModelAdmin):
    list_display = ["template_id", "name", "created_at"]
    search_fields = ["template_id", "name"]
    readonly_fields = ["template_id", "created_at"]
    inlines = [VersionInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a template arrives with its first version


class VersionStoreForm(forms.ModelForm):
    """Store Flowdesk's copy of a version the Flows server runs; it publishes nothing."""

    template_id = forms.SlugField(help_text="The template's id on the Flows server.")
    number = forms.IntegerField(
        min_value=1,
        required=False,
        help_text="The version's number on the Flows server. Blank: the document's own "
        "metadata.version, else the server's latest. It must agree with both; nothing is "
        "renumbered.",
    )
    source = forms.CharField(
        label="Template document",
        strip=False,  # stored exactly as published
        required=False,
        widget=forms.Textarea(attrs={"rows": 28, "cols": 100, "spellcheck": "false"}),
        help_text="Paste the YAML (or JSON) exactly as published, or upload it below. Leave "
        "both empty to copy the document from the Flows server (Flowdesk's own engine offers "
        "it; Sohar's service does not, so paste or upload it there).",
    )
    upload = forms.FileField(required=False, help_text="Or upload the YAML file instead.")

    class Meta:
        model = TemplateVersion
        fields = ["source"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        template_id = cleaned.get("template_id")
        upload = cleaned.get("upload")
        source = cleaned.get("source") or ""
        if upload is not None:
            try:
                source = upload.read().decode()
            except UnicodeDecodeError:
                self.add_error("upload", "The file is not UTF-8 text.")
                return cleaned
        if source.strip():
            try:
                flowspec.load_template(source)
            except flowspec.TemplateInvalid as exc:
                self.add_error("source", [str(error) for error in exc.errors])
                return cleaned
        if not template_id or self.errors:
            return cleaned
        try:
            cleaned["copy"] = services.version_copy_resolve(
                template_id=template_id, number=cleaned.get("number"), source=source
            )
        except services.CopyRefused as exc:
            self.add_error(exc.field, exc.message)
        return cleaned


class PublishForm(forms.ModelForm):
    """A new version for the Flows server; Flowdesk stores its copy under the server's number."""

    field_order = ["template_id", "source"]

    template_id = forms.SlugField(
        max_length=FlowTemplate._meta.get_field("template_id").max_length,
        help_text="The template's id on the Flows server. A new id creates a template.",
    )
    source = forms.CharField(
        label="Template document",
        strip=False,  # published and stored exactly as written
        widget=forms.Textarea(attrs={"rows": 28, "cols": 100, "spellcheck": "false"}),
        help_text="YAML (or JSON), as described in docs/template-language.md. The server gives "
        "it the template's next number; if the document names its version (metadata.version), "
        "it must be that number, or nothing is published.",
    )

    class Meta:
        model = TemplateVersion
        fields = ["source"]


@admin.register(TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    """Flowdesk's copies of template versions, from which it renders forms for their Runs.

    Storing a copy publishes nothing: the Flows server runs what was published to it.
    Publishing (``publish_view``) does both in one step, where the server takes versions.
    """

    list_display = ["__str__", "template", "number", "stored_at"]
    list_filter = ["template"]
    readonly_fields = ("template", "number", "stored_at", "source")
    change_list_template = "admin/flows_integration/templateversion/change_list.html"
    add_form_template = "admin/flows_integration/templateversion/add_form.html"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is None:
            kwargs["form"] = VersionStoreForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("template_id", "number", "source", "upload")
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        extra = {"title": STORE_COPY, "publish_label": PUBLISH, **(extra_context or {})}
        return super().add_view(request, form_url, extra_context=extra)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        if object_id is not None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        # Adding asks the Flows server while validating. Django wraps the whole view in one
        # transaction, which on SQLite (transaction_mode IMMEDIATE) holds the write lock: the
        # embedded engine, answering in another thread of this server, could not write its
        # token and the page would hang. version_store opens its own transaction. (The
        # undecorated view is private to Django, so unknown to its stubs.)
        return self._changeform_view(  # type: ignore[attr-defined]
            request, object_id, form_url, extra_context
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra = {"store_copy_label": STORE_COPY, "publish_label": PUBLISH, **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        copy = form.cleaned_data["copy"]
        stored = services.version_store(
            template_id=form.cleaned_data["template_id"],
            number=copy.number,
            source=copy.source,
            name=copy.name,
        )
        obj.pk, obj.template, obj.number = stored.pk, stored.template, stored.number
        if copy.unchecked:
            messages.warning(
                request,
                f"{copy.unchecked}, so v{copy.number} was not checked against it: make sure "
                "it is the number the Flows server shows.",
            )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are immutable once stored

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list:
        return [
            path(
                "publish/",
                self.admin_site.admin_view(
                    require_http_methods(["GET", "POST"])(self.publish_view)
                ),
                name="flows_integration_templateversion_publish",
            ),
            path(
                "import/",
                self.admin_site.admin_view(require_POST(self.import_view)),
                name="flows_integration_templateversion_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        try:
            imported = services.templates_import()
        except flows_client.NotSupported:
            messages.error(
                request,
                "This Flows server does not list its templates: store each copy with "
                f"“{STORE_COPY}” and its document.",
            )
        except flows_client.FlowsError as exc:
            messages.error(request, f"The Flows server could not be asked: {exc}")
        else:
            names = ", ".join(str(version) for version in imported) or "nothing new"
            messages.success(request, f"Copied {names} from the Flows server.")
        return HttpResponseRedirect(reverse("admin:flows_integration_templateversion_changelist"))

    def publish_view(self, request: HttpRequest) -> HttpResponse:
        """Publish a new version to the Flows server and store Flowdesk's copy of it.

        Not wrapped in a transaction as Django's add view is: the publish call must not wait
        on a write lock of ours (see ``publishing.version_publish``).
        """
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PublishForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                published = publishing.version_publish(
                    template_id=form.cleaned_data["template_id"],
                    source=form.cleaned_data["source"],
                )
            except publishing.PublishRefused as exc:
                form.add_error(exc.field, exc.messages)
            else:
                return self._published(request, published)
        context = {
            **self.admin_site.each_context(request),
            "title": PUBLISH,
            "opts": self.opts,
            "form": form,
            "adminform": helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {}),
            "errors": form.errors,
            "has_view_permission": self.has_view_permission(request),
            "store_copy_label": STORE_COPY,
        }
        return TemplateResponse(
            request, "admin/flows_integration/templateversion/publish.html", context
        )

    def _published(self, request: HttpRequest, published: publishing.Published) -> HttpResponse:
        version = published.version
        if not published.previous:
            self.log_addition(request, version, [{"added": {}}])
        messages.success(
            request,
            f"Published {version} to the Flows server: new Runs of "
            f"{version.template.template_id} use version {version.number}. Flowdesk stored its "
            "copy for forms under the same number.",
        )
        return HttpResponseRedirect(reverse("admin:flows_integration_templateversion_changelist"))


STORE_COPY = "Store a template copy for forms"
PUBLISH = "Publish a new version to the Flows server"


@admin.register(FlowRun)
class FlowRunAdmin(PatientDataAdmin, ReadOnlyAdmin):
    list_display = ["flow_run_id", "template", "version", "status", "state_id", "synced_at"]
    list_filter = ["status", "state_unresolved", "template"]
    search_fields = ["flow_run_id"]
    list_select_related = ["template", "version__template"]
    show_full_result_count = False


@admin.register(WebhookEvent)
class WebhookEventAdmin(PatientDataAdmin, ReadOnlyAdmin):
    list_display = ["svix_id", "event_type", "flow_run_id", "status", "received_at", "processed_at"]
    list_filter = ["event_type", "status"]
    search_fields = ["svix_id", "flow_run_id"]
    show_full_result_count = False


@admin.register(ApiHealth)
class ConnectionAdmin(ReadOnlyAdmin):
    """The Flows connection page: which API and client Flowdesk uses, a test of its credentials,
    the webhook URL to register with Sohar, and when the last verified webhook came in."""

    def get_urls(self) -> list:
        return [
            path(
                "test/",
                self.admin_site.admin_view(require_POST(self.test_view)),
                name="flows_integration_apihealth_test",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        last_webhook = services.webhook_last_received_at()
        quiet = timedelta(minutes=settings.FLOWS_WEBHOOK_QUIET_MINUTES)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Flows connection",
            "api_url": settings.FLOWS_API_URL,
            "client_id": settings.FLOWS_CLIENT_ID,
            "embedded": settings.FLOWS_ENGINE_ENABLED
            and settings.FLOWS_API_URL.startswith(("http://127.0.0.1", "http://localhost")),
            "webhook_url": request.build_absolute_uri(reverse("flows_integration:webhook")),
            "event_types": settings.FLOWS_WEBHOOK_EVENT_TYPES,
            "last_webhook": last_webhook,
            "webhooks_quiet": last_webhook is None or timezone.now() - last_webhook > quiet,
            "quiet_minutes": settings.FLOWS_WEBHOOK_QUIET_MINUTES,
            "health": services.health_get(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/flows_integration/connection.html", context)

    def test_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        check = services.connection_check()
        (messages.success if check.ok else messages.error)(request, check.message)
        return HttpResponseRedirect(reverse("admin:flows_integration_apihealth_changelist"))


@admin.register(SyncPass)
class SyncPassAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "runs_checked",
        "runs_changed",
        "runs_failed",
        "throttled",
        "skipped",
        "duration_ms",
    ]
