from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import retarget

from flows_integration.models import TemplateVersion
from reviewqueue.schema_forms import PART, FormSpec, SchemaForm, build_form


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "reviewqueue/home.html")


def _version_form(template_id: str, number: int, state_id: str) -> tuple[TemplateVersion, FormSpec]:
    """The stored version and the form of one of its states; 404 for anything unknown."""
    version = get_object_or_404(
        TemplateVersion.objects.select_related("template"),
        template__template_id=template_id,
        number=number,
    )
    spec = FormSpec.for_state(version.document, state_id)
    if spec is None:
        raise Http404("No such callback state.")
    return version, spec


def form_for_request(request: HttpRequest, spec: FormSpec, partial_url: str) -> SchemaForm:
    """The form for a GET (defaults) or a POST: a row action or a conditional's `~part` shows
    the data as typed; any other POST is validated."""
    data = request.POST if request.method == "POST" else None
    form, acted = build_form(spec, data, partial_url=partial_url)
    if data is not None:
        if acted or PART in data:
            form.suppress_errors()
        else:
            form.is_valid()
    return form


@login_required
@require_http_methods(["GET", "POST"])
def form_partial(
    request: HttpRequest, template_id: str, number: int, state_id: str
) -> HttpResponse:
    """A schema form re-rendered from what has been typed so far.

    htmx posts here when a field that controls a conditional changes, or when a row is added or
    removed; `~part` names the fieldset to send back. Without htmx the same URL is a whole page
    that works by plain form posts. It changes nothing, so a POST answers with the page rather
    than a redirect.
    """
    version, spec = _version_form(template_id, number, state_id)
    url = reverse("reviewqueue:form_partial", args=[template_id, number, state_id])
    form = form_for_request(request, spec, url)
    context = {"version": version, "spec": spec, "form": form}
    if request.htmx:  # type: ignore[attr-defined]  # django-htmx's middleware sets it
        part = request.POST.get(PART)
        if part is not None and part in form.nodes:
            node = form.nodes[part]
            return render(request, "schema_forms/node.html", {"node": node, "form": form})
        response = render(request, "reviewqueue/form_page.html#schema-form", context)
        # The fieldset asked for is gone (the answer changed under it): replace the whole form.
        return retarget(response, "#schema-form") if part is not None else response
    return render(request, "reviewqueue/form_page.html", context)
