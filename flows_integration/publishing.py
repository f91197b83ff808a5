"""Publishing a template version to the Flows server and keeping Flowdesk's copy of it, in one step.

Storing a copy (``services.version_copy_resolve``/``version_store``) publishes nothing; this does
both, for a server that takes versions over the API (our engine's extension). Sohar's service
does not: there a version is published in Sohar's own tools and its copy stored afterwards.
"""

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

import flowspec
from flows_integration import client as flows_client
from flows_integration.models import FlowTemplate, TemplateVersion
from flows_integration.services import version_store

# FlowTemplate.name is bounded; metadata.name in the language is not.
_NAME_MAX = FlowTemplate._meta.get_field("name").max_length or 200


class PublishRefused(Exception):
    """Nothing was published, or the copy could not be stored; ``field`` names the form field
    at fault (None: the whole request), ``messages`` says why, one problem each."""

    def __init__(self, *messages: str, field: str | None = None) -> None:
        super().__init__(" ".join(messages))
        self.messages = list(messages)
        self.field = field


@dataclass(frozen=True)
class Published:
    """The copy stored under the server's number. ``previous`` is True when Flowdesk already
    held this very document under that number (a copy stored by import in the meantime)."""

    version: TemplateVersion
    previous: bool = field(default=False)


def version_publish(*, template_id: str, source: str) -> Published:
    """Publish ``source`` as the template's next version on the Flows server, then store
    Flowdesk's copy under the number the server answered.

    The server numbers versions, so Flowdesk never guesses one: a document that names its
    version (``metadata.version``) is refused by the server unless that is the number it gets.
    The publish call runs outside any transaction of ours (under ``make run`` the engine is
    this same process on SQLite, which has one writer: holding our write lock while it writes
    would hang both); the copy, template and version together, is then written in one
    transaction. Raises ``PublishRefused``; ``flowspec`` errors are found before anything is
    sent.
    """
    try:
        spec = flowspec.load_template(source)
    except flowspec.TemplateInvalid as exc:
        raise PublishRefused(*map(str, exc.errors), field="source") from None
    own = flowspec.document_version(spec.document)
    if own is not None and _stored(template_id, own) is not None:
        raise PublishRefused(
            f"Flowdesk already holds {template_id} v{own}, so the Flows server has it too: a new "
            "version gets a later number. Change metadata.version to the next number, or remove "
            "it.",
            field="source",
        )
    remote = _publish(template_id=template_id, source=source)
    try:
        with transaction.atomic():
            stored = version_store(
                template_id=template_id,
                number=remote.version,
                source=source,
                name=remote.name[:_NAME_MAX],
            )
    except IntegrityError:
        # A copy under this number arrived first (an import, or a Run of it already synced).
        existing = _stored(template_id, remote.version)
        if existing is not None and existing.document == remote.document:
            return Published(version=existing, previous=True)
        raise PublishRefused(
            f"The Flows server published this as {template_id} v{remote.version}, but Flowdesk "
            f"holds another document under v{remote.version}. Runs of the new version would get "
            "the wrong forms: ask an engineer to compare the two.",
        ) from None
    return Published(version=stored)


def _publish(*, template_id: str, source: str) -> flows_client.TemplateDocument:
    try:
        return flows_client.publish_template(template_id, source)
    except flows_client.NotSupported:
        raise PublishRefused(
            "This Flows server does not take new versions from Flowdesk (Sohar's service does "
            "not): publish the version in the server's own tools, then store Flowdesk's copy "
            "with “Store a template copy for forms”.",
        ) from None
    except flows_client.FlowsError as exc:
        raise _refusal(exc, template_id=template_id) from None


def _refusal(exc: flows_client.FlowsError, *, template_id: str) -> PublishRefused:
    if exc.status == 400 and exc.param == "source":
        # One "location: problem" line each; a template's text is no patient data.
        return PublishRefused(*exc.message.splitlines(), field="source")
    if exc.status == 400 and exc.param == "templateId":
        return PublishRefused(exc.message, field="template_id")
    if exc.outcome_unknown:
        return PublishRefused(
            f"The Flows server did not answer clearly ({exc.summary}): {template_id} may have "
            "been published. Look at its latest version there (or “Copy new versions from the "
            "Flows server”) before you publish again.",
        )
    return PublishRefused(
        f"The Flows server could not be asked ({exc.summary}); nothing was published."
    )


def _stored(template_id: str, number: int) -> TemplateVersion | None:
    return TemplateVersion.objects.filter(template__template_id=template_id, number=number).first()
