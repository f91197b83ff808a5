"""Starting Runs: one path for the Start run page, the intake API and ``manage.py run_start``.

Each start is checked against the *stored* template version's ``input`` schema before Flows is
called (the same validator as the forms and the engine), pinned to that version so the Run
executes what was checked, recorded as a ``StartedRun`` row written before Create Run, and
audited with ids only.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

import flowspec
from flows_integration import client as flows_client
from flows_integration import services as integration
from flows_integration.models import TemplateVersion
from intake.models import TOKEN_PREFIX, ApiClient, StartedRun, token_hash
from reviewqueue.services import audit_record

# A repeat waits this long for the first request with its key to get Create Run's answer, then
# says it is still in progress. Longer than the Flows client's usual answer, shorter than a
# caller's own timeout.
REPEAT_WAIT = timedelta(seconds=10)
REPEAT_POLL_SECONDS = 0.1
# A claim with no Run after this long belongs to a request that died between claiming and
# hearing back from Create Run: its outcome is unknown.
CLAIM_STALE = timedelta(minutes=2)


class StartRefused(Exception):
    """The start is refused before Flows is called; ``errors`` are ``(field, message)`` pairs,
    the first naming the field at fault (``templateId``, ``version``, or a path in the input)."""

    def __init__(self, errors: list[tuple[str, str]], *, conflict: bool = False) -> None:
        self.errors = errors
        self.param, self.message = errors[0]
        # True when the key was used already for another start (409 rather than 400).
        self.conflict = conflict
        super().__init__(f"{self.param}: {self.message}")


class StartPending(Exception):
    """A start with the same key has no confirmed Run: still in flight, or its outcome is
    unknown (``outcome_unknown``). Nothing was started by this request."""

    def __init__(self, started: StartedRun, *, outcome_unknown: bool) -> None:
        self.started = started
        self.outcome_unknown = outcome_unknown
        super().__init__("outcome unknown" if outcome_unknown else "in progress")


@dataclass(frozen=True)
class Started:
    started: StartedRun
    created: bool  # False: a repeat, answered with the Run the first request started


# --- Versions ----------------------------------------------------------------------------------


def startable_versions() -> list[TemplateVersion]:
    """Every stored version, newest first within each template, for the Start run page."""
    return list(
        TemplateVersion.objects.select_related("template").order_by(
            "template__template_id", "-number"
        )
    )


def version_resolve(*, template_id: str, number: int | None) -> TemplateVersion:
    """The stored version a start is checked against: ``number``, or the latest stored."""
    versions = TemplateVersion.objects.select_related("template").filter(
        template__template_id=template_id
    )
    version = (
        versions.filter(number=number).first()
        if number is not None
        else versions.order_by("-number").first()
    )
    if version is not None:
        return version
    if number is not None and versions.exists():
        raise StartRefused([("version", f"{template_id} has no version {number}.")])
    raise StartRefused([("templateId", f"No template {template_id!r} is stored in Flowdesk.")])


def input_check(version: TemplateVersion, input_data: Any) -> None:
    """Raise ``StartRefused`` with every problem of ``input_data`` against the version's
    ``input`` schema, field by field (``patient.dateOfBirth``)."""
    if not isinstance(input_data, dict):
        raise StartRefused([("inputData", "inputData must be an object.")])
    errors = flowspec.input_errors(version.document.get("input", {}), input_data)
    if errors:
        raise StartRefused([(field or "inputData", message) for field, message in errors])


# --- Starting --------------------------------------------------------------------------------


def run_start(
    *,
    template_id: str,
    version: int | None,
    input_data: Any,
    source: str,
    started_by: Any = None,
    client: ApiClient | None = None,
    external_id: str = "",
    form_key: uuid.UUID | None = None,
    ip: str | None = None,
) -> Started:
    """Check the input, then start the Run once per key (``external_id`` of a client, or a
    page's ``form_key``) and answer it.

    The race between repeats of one key (a caller's retry, a double click) is settled by the
    unique constraints on ``StartedRun``: the row is claimed in its own transaction before
    Create Run is called, a repeat meets the constraint and waits for the first request's Run.
    Create Run is called outside any transaction, so under SQLite the embedded engine can write
    while we wait for it. Raises ``StartRefused``, ``StartPending`` and ``flows_client.FlowsError``.
    """
    stored = version_resolve(template_id=template_id, number=version)
    input_check(stored, input_data)
    try:
        with transaction.atomic():
            started = StartedRun.objects.create(
                source=source,
                client=client,
                started_by=started_by if getattr(started_by, "is_authenticated", False) else None,
                external_id=external_id,
                form_key=form_key,
                template_id=template_id,
                version=stored.number,
            )
    except IntegrityError:
        return Started(
            _repeat_of(
                client=client, external_id=external_id, form_key=form_key, template_id=template_id
            ),
            created=False,
        )
    try:
        # Pinned to the version just checked (Sohar ignores the pin and runs its latest).
        run = integration.run_create(
            template_id=template_id, input_data=input_data, version=stored.number
        )
    except flows_client.FlowsError as exc:
        if exc.outcome_unknown:
            started.outcome_unknown = True
            started.save(update_fields=["outcome_unknown"])
        else:
            started.delete()  # refused or never sent: the same key may try again
        raise
    started.flow_run = run
    started.save(update_fields=["flow_run"])
    audit_record(
        action="run.started",
        actor=started_by,
        flow_run_id=run.flow_run_id,
        ip=ip,
        template=template_id,
        version=stored.number,
        source=source,
        client=client.pk if client is not None else None,
    )
    return Started(started, created=True)


def _repeat_of(
    *, client: ApiClient | None, external_id: str, form_key: uuid.UUID | None, template_id: str
) -> StartedRun:
    """The start that holds this key, once it has its Run."""
    rows = StartedRun.objects.select_related("flow_run")
    if form_key is not None:
        rows = rows.filter(form_key=form_key)
    else:
        rows = rows.filter(client=client, external_id=external_id)
    deadline = time.monotonic() + REPEAT_WAIT.total_seconds()
    while True:
        started = rows.get()
        if started.template_id != template_id:
            raise StartRefused(
                [("externalId", f"This externalId started a {started.template_id} Run already.")],
                conflict=True,
            )
        if started.flow_run is not None:
            return started
        stale = timezone.now() - started.created_at > CLAIM_STALE
        if started.outcome_unknown or stale:
            raise StartPending(started, outcome_unknown=True)
        if time.monotonic() >= deadline:
            raise StartPending(started, outcome_unknown=False)
        time.sleep(REPEAT_POLL_SECONDS)


# --- API clients -----------------------------------------------------------------------------


def client_create(*, name: str, by: Any = None) -> tuple[ApiClient, str]:
    """A new API client and its token, which is never stored and so shown only this once."""
    api_client = ApiClient(name=name)
    token = api_client.token_issue()
    api_client.save()
    audit_record(action="intake.client_created", actor=by, client=api_client.pk)
    return api_client, token


def client_revoke(*, api_client: ApiClient, by: Any = None) -> None:
    """Revoke a client: its token is refused from the next request on."""
    updated = ApiClient.objects.filter(pk=api_client.pk, is_active=True).update(
        is_active=False, revoked_at=timezone.now()
    )
    if updated:
        audit_record(action="intake.client_revoked", actor=by, client=api_client.pk)


def client_authenticate(token: str) -> ApiClient | None:
    """The active client holding ``token``, or None (unknown, revoked, empty)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    api_client = ApiClient.objects.filter(token_hash=token_hash(token), is_active=True).first()
    if api_client is not None:
        # At most once a minute: a busy client must not write its row on every request.
        now = timezone.now()
        ApiClient.objects.filter(pk=api_client.pk).exclude(
            last_used_at__gt=now - timedelta(minutes=1)
        ).update(last_used_at=now)
    return api_client
