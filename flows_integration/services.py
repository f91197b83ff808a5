"""State changes of the mirror: storing versions, receiving events, syncing runs.

Get Run is the truth and webhooks only say "look now", so every path that changes a ``FlowRun``
goes through ``mirror_apply`` (one run) or ``mirror_apply_many`` (a reconcile chunk, a batch of
the inbox), which lock the rows, compare them with one shared rule (``_mirror_update``), write
only what moved, and announce a status or state change with ``run_status_changed`` (one run) or
``runs_status_changed`` (many) inside the same transaction.
"""

import atexit
import functools
import json
import logging
import operator
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Field, Q
from django.utils import timezone

import flowspec
from flows_integration import client as flows_client
from flows_integration.models import (
    ApiHealth,
    FlowRun,
    FlowTemplate,
    PauseRule,
    RunStatus,
    SyncLease,
    SyncPass,
    TemplateVersion,
    WebhookEvent,
)
from flows_integration.signals import RunChange, run_status_changed, runs_status_changed

logger = logging.getLogger(__name__)

# An unprocessed inbox row older than this is re-enqueued by the sweeper (a broker outage).
INBOX_GRACE = timedelta(seconds=30)
# Events one drain takes besides its own, oldest first: a burst is written in a few set-wise
# batches, whose Get Runs (FLOWS_SYNC_CONCURRENCY at a time) take well under a second.
INBOX_BATCH = 200
# Seconds after which a drain starts no more Get Runs: with the Flows API hanging, one call may
# take a minute (the client's timeouts and retries), and the claim must end well within the
# task's time limit. The events not asked for are claimed again by a later drain.
INBOX_ASK_WITHIN = 20.0
# How long a process gathers the events it stores before one task is published to drain them
# all (``_EventsToPublish``): a burst costs a publish and a task per window, not per event.
INBOX_PUBLISH_WINDOW = 0.2
RECONCILE_CHUNK = 500
RECONCILE_LEASE = "reconcile"
# Longer than one chunk takes (its Get Runs and writes): the lease is renewed between chunks,
# so a pass of any length keeps it, and one whose process died frees it within this time.
RECONCILE_LEASE_TTL = timedelta(minutes=5)


# --- Templates -------------------------------------------------------------------------------


def version_store(
    *, template_id: str, number: int | None, source: str, name: str = ""
) -> TemplateVersion:
    """Store a template version as published, validated by flowspec.

    ``number`` is the server's version number; ``None`` takes the next one (a version pasted by
    an admin for a server without our extensions). Raises ``flowspec.TemplateInvalid``.
    """
    spec = flowspec.load_template(source)
    with transaction.atomic():
        template, _ = FlowTemplate.objects.get_or_create(
            template_id=template_id,
            defaults={"name": name or spec.name, "description": spec.description or ""},
        )
        if not template.name:
            # Made by a route before any version was stored: its pages showed the bare id.
            template.name = name or spec.name
            template.description = template.description or spec.description or ""
            template.save(update_fields=["name", "description"])
        if number is None:
            number = (
                template.versions.order_by("-number").values_list("number", flat=True).first() or 0
            ) + 1
        version = TemplateVersion.objects.create(
            template=template, number=number, source=source, document=spec.document
        )
        _waiting_runs_adopt(version)
    return version


def _waiting_runs_adopt(version: TemplateVersion) -> None:
    """Runs already waiting, of a template nobody named, at a pause that this new version now
    tells (it is the only one with a callback state of that id): their items open."""
    pauses = [state.id for state in version.spec.callback_states()]
    waiting = list(
        FlowRun.objects.select_for_update().filter(
            status=RunStatus.PENDING, version__isnull=True, state_id__in=pauses
        )
    )
    # Once per state the waiting Runs share, not per Run.
    settles = {
        state_id: _version_for_state(state_id) == version
        for state_id in {run.state_id for run in waiting}
    }
    for run in waiting:
        if settles[run.state_id]:
            _run_adopt(run, version=version, template=None, input_data={})


def version_ensure(*, template_id: str, number: int) -> TemplateVersion | None:
    """The stored version, imported from the server (our extension) when it is not stored yet.

    Returns None when the server does not offer the template endpoint.
    """
    found = TemplateVersion.objects.filter(template__template_id=template_id, number=number).first()
    if found is not None:
        return found
    try:
        remote = flows_client.get_template(template_id, version=number)
    except flows_client.NotSupported:
        return None
    try:
        return version_store(
            template_id=template_id,
            number=remote.version,
            source=_as_source(remote.document),
            name=remote.name,
        )
    except IntegrityError:
        # Another worker imported it at the same moment.
        return TemplateVersion.objects.get(template__template_id=template_id, number=number)


def templates_import() -> list[TemplateVersion]:
    """Import every version of every template the server lists (our extension endpoints)."""
    imported = []
    for summary in flows_client.list_templates():
        for number in range(1, summary.version + 1):
            exists = TemplateVersion.objects.filter(
                template__template_id=summary.template_id, number=number
            ).exists()
            if not exists:
                version = version_ensure(template_id=summary.template_id, number=number)
                if version is not None:
                    imported.append(version)
    return imported


def _as_source(document: dict) -> str:
    return json.dumps(document, indent=2)


class CopyRefused(Exception):
    """A template copy that cannot be stored as asked; ``field`` names the form field at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class VersionCopy:
    """What a copy will be stored as. ``unchecked`` says why the server did not confirm it."""

    number: int
    source: str
    name: str
    unchecked: str = ""


def version_copy_resolve(*, template_id: str, number: int | None, source: str) -> VersionCopy:
    """Decide which version a copy of a template is, before anything is written.

    A copy must carry the number the Flows server runs it under, or Runs of that version would
    get another version's forms. So the number given, the document's own ``metadata.version``
    and the server's version (asked through our template documents extension) must agree;
    nothing is renumbered. Without a ``source`` the document is fetched from the server (the
    latest version when ``number`` is None). A server without the extension (Sohar's own) cannot
    confirm anything: then a pasted document and a known number are taken as given, and
    ``unchecked`` says so. Raises ``CopyRefused``; the source must already be valid.
    """
    spec = flowspec.load_template(source) if source.strip() else None
    own = flowspec.document_version(spec.document) if spec else None
    if number is not None and own is not None and number != own:
        raise CopyRefused(
            f"The document says it is version {own} (metadata.version), not v{number}.",
            field="number",
        )
    wanted = number if number is not None else own
    remote: flows_client.TemplateDocument | None = None
    try:
        remote = flows_client.get_template(template_id, version=wanted)
    except flows_client.NotSupported:
        unchecked = "This Flows server does not hand out template documents (Sohar's does not)"
    except flows_client.FlowsError as exc:
        if exc.status == 404:
            what = f"version {wanted} of {template_id}" if wanted else f"template {template_id}"
            raise CopyRefused(
                f"The Flows server has no {what}. Publish it there first; Flowdesk only keeps "
                "copies of what the server runs.",
                field="number" if wanted else "template_id",
            ) from None
        unchecked = f"The Flows server could not be asked ({exc})"
    if remote is not None:
        if spec is not None and spec.document != remote.document:
            raise CopyRefused(
                f"This is not the document the Flows server published as {template_id} "
                f"v{remote.version}. Give the number of the version it is, or leave the "
                "document empty to copy the server's.",
                field="source",
            )
        copy = VersionCopy(
            number=remote.version,
            source=source if spec is not None else _as_source(remote.document),
            name=remote.name,
        )
    elif spec is None:
        raise CopyRefused(f"{unchecked}: paste or upload the document.", field="source")
    elif wanted is None:
        raise CopyRefused(
            f"{unchecked}, and the document names no version (metadata.version): give the "
            "number the Flows server shows for it.",
            field="number",
        )
    else:
        copy = VersionCopy(number=wanted, source=source, name=spec.name, unchecked=unchecked)
    if TemplateVersion.objects.filter(
        template__template_id=template_id, number=copy.number
    ).exists():
        raise CopyRefused(f"{template_id} v{copy.number} is stored already.", field="number")
    return copy


# --- Health of the Flows API -----------------------------------------------------------------


def health_record_success() -> None:
    """Note a successful call; writes only when the record would change meaningfully (after a
    failure, or once a minute), so a quiet reconcile pass writes nothing."""
    now = timezone.now()
    ApiHealth.objects.get_or_create(pk=1)
    ApiHealth.objects.filter(pk=1).filter(
        Q(consecutive_failures__gt=0)
        | Q(last_success_at__isnull=True)
        | Q(last_success_at__lt=now - timedelta(minutes=1))
    ).update(last_success_at=now, consecutive_failures=0)


def health_record_failure(error: Exception) -> None:
    ApiHealth.objects.get_or_create(pk=1)
    ApiHealth.objects.filter(pk=1).update(
        last_failure_at=timezone.now(),
        consecutive_failures=F("consecutive_failures") + 1,
        last_error=str(error)[:500],
    )


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str


def connection_check() -> ConnectionCheck:
    """Ask the Flows API for a token with our credentials: the admin's "Test the connection"."""
    try:
        flows_client.check_credentials()
    except flows_client.FlowsError as exc:
        if exc.retryable:
            health_record_failure(exc)
        if exc.status in (401, 403):
            return ConnectionCheck(False, "The Flows API refused the client id and secret.")
        return ConnectionCheck(False, f"The Flows API could not be reached: {exc}")
    health_record_success()
    return ConnectionCheck(True, "The Flows API accepted the client id and secret.")


def webhook_last_received_at() -> datetime | None:
    """When the last verified webhook came in (only verified ones are stored)."""
    return (
        WebhookEvent.objects.order_by("-received_at").values_list("received_at", flat=True).first()
    )


def health_get() -> ApiHealth:
    return ApiHealth.objects.get_or_create(pk=1)[0]


# --- Runs ------------------------------------------------------------------------------------


def run_create(*, template_id: str, input_data: dict, version: int | None = None) -> FlowRun:
    """Create Run on the server, then its mirror row."""
    try:
        created = flows_client.create_run(template_id, input_data, version=version)
    except flows_client.FlowsError as exc:
        if exc.retryable:
            health_record_failure(exc)
        raise
    health_record_success()
    template = FlowTemplate.objects.filter(template_id=template_id).first()
    stored_version = None
    if template is not None:
        versions = template.versions.order_by("-number")
        # Without a version asked for, the server runs its latest. Sohar's Get Run never says
        # which, so the latest we store is the best we know: without it the Run's pauses would
        # have no form. A server that does say (our engine) corrects it on the first sync.
        stored_version = (
            versions.filter(number=version).first() if version is not None else versions.first()
        )
    with transaction.atomic():
        run, inserted = FlowRun.objects.select_for_update().get_or_create(
            flow_run_id=created.flow_run_id,
            defaults={
                "template": template,
                "version": stored_version,
                "status": RunStatus.CREATED,
                "input_data": input_data,
            },
        )
        if not inserted:
            # A webhook or a sync mirrored the Run before Create Run's reply came back, knowing
            # neither its template nor its input (Sohar's never say): what we know fills them.
            _run_adopt(run, version=stored_version, template=template, input_data=input_data)
    return run


def _run_adopt(
    run: FlowRun,
    *,
    version: TemplateVersion | None,
    template: FlowTemplate | None,
    input_data: dict,
) -> None:
    """Fill what a mirror row lacks; a Run already waiting gets its pause announced again, so the
    item that could not open without a version opens now (opening is idempotent)."""
    fields = []
    if run.version_id is None and version is not None:
        run.version, run.template = version, version.template
        fields += ["version", "template"]
    elif run.template_id is None and template is not None:
        run.template = template
        fields.append("template")
    if not run.input_data and input_data:
        run.input_data = input_data
        fields.append("input_data")
    if not fields:
        return
    run.save(update_fields=fields)
    if run.status == RunStatus.PENDING and "version" in fields:
        _announce(run, "", "")


class NotWaiting(Exception):
    """The Run is no longer PENDING: there is no pause to assign."""


def run_assign(
    run: FlowRun, *, version: TemplateVersion, state_id: str, remember_by: Any = None
) -> FlowRun:
    """Triage: a person says which version a waiting Run is (and, when nothing told us, at which
    of its pauses it waits). The pause is announced, so its item opens; with ``remember_by``
    (the person), later Runs waiting at ``state_id`` are taken for this version too."""
    if version.callback_state(state_id) is None:
        raise ValueError(f"{version} has no callback state {state_id!r}")
    with transaction.atomic():
        locked = FlowRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.PENDING:
            raise NotWaiting(f"The Run is {locked.get_status_display().lower()}.")
        locked.version, locked.template = version, version.template
        locked.state_id, locked.state_unresolved = state_id, False
        locked.save(update_fields=["version", "template", "state_id", "state_unresolved"])
        if remember_by is not None:
            PauseRule.objects.update_or_create(
                state_id=state_id,
                defaults={
                    "version": version,
                    "created_by": remember_by,
                    "created_at": timezone.now(),
                },
            )
        _announce(locked, "", "")
    return locked


@dataclass(frozen=True)
class Refreshed:
    run: FlowRun
    changed: bool


def run_refresh(flow_run_id: Any, *, hint_state_id: str = "") -> Refreshed:
    """Get Run, then upsert the mirror. Raises ``FlowsError`` when the server cannot answer."""
    try:
        info = flows_client.get_run(str(flow_run_id))
    except flows_client.FlowsError as exc:
        _get_runs_failed({flow_run_id: exc})
        raise
    health_record_success()
    return mirror_apply(info, hint_state_id=hint_state_id)


def _get_runs_failed(failed: Mapping[Any, "flows_client.FlowsError"]) -> None:
    """Record Get Runs that failed: once for the banner (a failure that may pass), and each
    error on its run's mirror row."""
    transient = [exc for exc in failed.values() if exc.retryable]
    if transient:
        health_record_failure(transient[0])
    by_error: dict[str, list[Any]] = {}
    for flow_run_id, exc in failed.items():
        by_error.setdefault(str(exc)[:500], []).append(flow_run_id)
    for error, run_ids in by_error.items():
        FlowRun.objects.filter(flow_run_id__in=run_ids).exclude(sync_error=error).update(
            sync_error=error
        )


def mirror_apply(info: "flows_client.RunInfo", *, hint_state_id: str = "") -> Refreshed:
    """Upsert the mirror of one run from a Get Run answer; write nothing when nothing changed."""
    version = _version_of(info)
    with transaction.atomic():
        run, before = _mirror_write(info, version, hint_state_id)
        if before is None:
            return Refreshed(run, False)
        _announce(run, *before)
    return Refreshed(run, True)


def _mirror_write(
    info: "flows_client.RunInfo", version: TemplateVersion | None, hint_state_id: str
) -> tuple[FlowRun, tuple[str, str] | None]:
    """Lock (or insert) one run's mirror row and write what changed, announcing nothing, in the
    caller's transaction: the row, and its status and state before when anything was written."""
    run, created = FlowRun.objects.select_for_update().get_or_create(
        flow_run_id=info.flow_run_id, defaults={"status": info.status}
    )
    old_status, old_state = ("" if created else run.status), run.state_id
    version = version or run.version or version_for_pause(info, hint_state_id)
    fields = _mirror_update(run, info, version, hint_state_id, created=created)
    if not fields:
        return run, None
    run.save(update_fields=fields)
    return run, (old_status, old_state)


def mirror_apply_many(
    answers: Sequence["flows_client.RunInfo"],
    *,
    versions: "VersionCache",
    hints: Mapping[uuid.UUID, str] | None = None,
) -> list[FlowRun]:
    """Upsert the mirrors of many runs from Get Run answers, set-wise; the runs that changed.

    The rules of ``mirror_apply`` (``_mirror_update``) with a fixed number of statements: a read
    without locks finds the rows that look changed (a quiet chunk stops there, having locked and
    written nothing); then, in one transaction, one ``SELECT ... FOR UPDATE`` locks them, the
    comparison is made again under the lock, one ``bulk_update`` per set of changed fields and
    one ``bulk_create`` of missing rows write them, and ``runs_status_changed`` is sent once with
    every run whose status or state moved.

    ``hints`` (the inbox's drain; reconcile has none) gives runs that webhooks announced their
    webhook's ``stateId`` ("" for none): each such run is treated as ``mirror_apply`` treats one
    with ``hint_state_id``, its version found by its pause when nothing else names it.
    """
    hints = hints or {}
    by_id = {uuid.UUID(str(info.flow_run_id)): info for info in answers}
    versions.load(keys=[key for info in answers if (key := _version_key(info))])
    # Importing a version not stored yet is an HTTP call: made before any lock is taken.
    answered = {run_id: versions.of_answer(info) for run_id, info in by_id.items()}

    def version_of(run_id: uuid.UUID, run: FlowRun) -> TemplateVersion | None:
        version = answered[run_id] or versions.by_pk(run.version_id)
        if version is None and run_id in hints:
            version = versions.for_pause(by_id[run_id], hints[run_id])
        return version

    suspects = _mirror_suspects(by_id, version_of, hints, versions)
    if not suspects:
        return []
    to_update: dict[tuple[str, ...], list[FlowRun]] = {}
    to_create: list[FlowRun] = []
    moved: list[tuple[FlowRun, str, str]] = []
    with transaction.atomic():
        # Locked in pk order, so that two transactions locking overlapping sets of runs wait
        # for each other instead of deadlocking.
        locked = FlowRun.objects.select_for_update().filter(flow_run_id__in=suspects).order_by("pk")
        stored = {run.flow_run_id: run for run in locked}
        for run_id in suspects:
            run = stored.get(run_id)
            created = run is None
            if run is None:
                run = FlowRun(flow_run_id=run_id, status=by_id[run_id].status)
            old_status, old_state = ("" if created else run.status), run.state_id
            fields = _mirror_update(
                run, by_id[run_id], version_of(run_id, run), hints.get(run_id, ""), created=created
            )
            if fields:
                target = to_create if created else to_update.setdefault(tuple(fields), [])
                target.append(run)
                moved.append((run, old_status, old_state))
        for names, runs in to_update.items():
            _runs_update(runs, names)
        # New rows in the order of their unique key, here and run by run below: two drains
        # inserting the same new Runs (each holding other events of them) then wait for each
        # other; in different orders each waited on a row the other had inserted, a deadlock.
        to_create.sort(key=lambda run: run.flow_run_id)
        if to_create and not _runs_insert(to_create):
            # Another transaction inserted one of them since the SELECT: a locking
            # get_or_create settles that race run by run. Announced with the rest below, once
            # every row is written: opening items locks the audit trail's head, and holding it
            # while waiting on a row another drain inserted, which waits for the head to open
            # its own items, was a deadlock.
            raced_ids = {run.flow_run_id for run in to_create}
            moved = [entry for entry in moved if entry[0].flow_run_id not in raced_ids]
            for new in to_create:
                run_id = new.flow_run_id
                run, before = _mirror_write(by_id[run_id], answered[run_id], hints.get(run_id, ""))
                if before is not None:
                    moved.append((run, *before))
        changes = [
            RunChange(run, old_status, run.status, run.state_id)
            for run, old_status, old_state in moved
            if (old_status, old_state) != (run.status, run.state_id)
        ]
        if changes:
            # One announcement for the chunk: the review queue opens and closes its items
            # set-wise (one by one, 10,000 Runs cost 80,000 statements).
            runs_status_changed.send(sender=FlowRun, changes=changes)
    return [run for run, _, _ in moved]


def _mirror_suspects(
    by_id: dict[uuid.UUID, "flows_client.RunInfo"],
    version_of: Callable[[uuid.UUID, FlowRun], TemplateVersion | None],
    hints: Mapping[uuid.UUID, str],
    versions: "VersionCache",
) -> list[uuid.UUID]:
    """The runs whose rows look changed (or are missing), read without a lock.

    Only these are locked and compared again: locking every row of a quiet pass would dirty
    each one's page for nothing. A row that changes after this read was changed by a refresh
    with an answer at least as fresh as ours, which it is then right to leave alone.
    """
    stored = FlowRun.objects.filter(flow_run_id__in=list(by_id))
    seen = {run.flow_run_id: run for run in stored}
    versions.load(pks=[run.version_id for run in seen.values()])
    suspects = []
    for run_id, info in by_id.items():
        run = seen.get(run_id)
        if run is None:
            suspects.append(run_id)
            continue
        # On this unlocked copy, only to see whether anything would be written.
        hint = hints.get(run_id, "")
        if _mirror_update(run, info, version_of(run_id, run), hint, created=False):
            suspects.append(run_id)
    return suspects


def _runs_update(runs: list[FlowRun], names: Sequence[str]) -> None:
    """Write the fields ``names`` of ``runs``, each row its own values, one statement a batch.

    On PostgreSQL ``UPDATE ... FROM (VALUES ...)``, a join on the pk. Django's ``bulk_update``
    writes ``CASE WHEN id = ... THEN ...`` per field instead, which the server evaluates row by
    branch (quadratic in the batch) and which takes 0.4 ms of Python per row to build: for
    10,000 runs 0.7-0.9 s of database time and 4.2 s of CPU, against 0.3-0.5 s and 0.23 s.
    SQLite (the embedded default) keeps ``bulk_update``.
    """
    if connection.vendor != "postgresql":
        FlowRun.objects.bulk_update(runs, names)
        return
    meta = FlowRun._meta
    fields = [field for field in meta.concrete_fields if {field.name, field.attname} & set(names)]
    quote = connection.ops.quote_name
    columns = [quote(str(field.column)) for field in fields]
    table, pk = quote(meta.db_table), quote(str(meta.pk.column))
    # Each value cast to its column's type: a column whose values are all NULL would be text.
    row = "(%s, {})".format(", ".join(f"%s::{field.cast_db_type(connection)}" for field in fields))
    for start in range(0, len(runs), 1000):  # stays far below PostgreSQL's 65,535 parameters
        batch = runs[start : start + 1000]
        params: list[Any] = []
        for run in batch:
            params.append(run.pk)
            params += [
                field.get_db_prep_save(getattr(run, field.attname), connection) for field in fields
            ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {', '.join(f'{c} = new.{c}' for c in columns)}"
                f" FROM (VALUES {', '.join([row] * len(batch))}) AS new (pk, {', '.join(columns)})"
                f" WHERE {table}.{pk} = new.pk",
                params,
            )


def _runs_insert(runs: list[FlowRun]) -> bool:
    """Insert new mirror rows; False, having inserted none, when one of them exists already."""
    try:
        with transaction.atomic():  # a savepoint: the IntegrityError must not end the chunk
            FlowRun.objects.bulk_create(runs)
    except IntegrityError:
        return False
    return True


def _mirror_update(
    run: FlowRun,
    info: "flows_client.RunInfo",
    version: TemplateVersion | None,
    hint_state_id: str,
    *,
    created: bool,
) -> list[str]:
    """Apply a Get Run answer to a mirror row in memory: the fields to write, [] for none.

    The one comparison behind ``mirror_apply`` and ``mirror_apply_many``. ``version`` is the
    answer's version, else the run's own. ``synced_at`` moves only with a change, so a pass that
    finds nothing new writes nothing, and reconcile visits the least recently changed first.
    """
    # A stale answer (from a slower, earlier Get Run) must not roll a run back.
    if _is_older(info, run) or (run.is_terminal and not created):
        return []
    values = _mirror_values(info, run, version, hint_state_id)
    fields = [name for name, value in values.items() if getattr(run, name) != value]
    if not fields and not created:
        return []
    for name in fields:
        setattr(run, name, values[name])
    run.synced_at = timezone.now()
    fields.append("synced_at")
    if run.sync_error:
        run.sync_error = ""
        fields.append("sync_error")
    return fields


def _announce(run: FlowRun, old_status: str, old_state: str) -> None:
    """Send ``run_status_changed`` when the status or the waiting state moved (inside the
    transaction that wrote it, so a receiver's writes commit or roll back with the change)."""
    if (old_status, old_state) != (run.status, run.state_id):
        run_status_changed.send(
            sender=FlowRun,
            run=run,
            old_status=old_status,
            new_status=run.status,
            state_id=run.state_id,
        )


class VersionCache:
    """The stored template versions that a reconcile pass or one drain of the inbox needs, each
    read once: a batch's versions in one query (``load``), anything else on first sight.

    Keyed on ``(template_id, number)`` for Get Run's answers and on the pk for the runs' own; a
    version the server names that is not stored yet is imported once, on first sight. Only what
    the batches name is read: reading every stored version (each with its document) for every
    drain grew with every version ever published.
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], TemplateVersion | None] = {}
        self._by_pk: dict[int, TemplateVersion] = {}
        self._by_pause: dict[str, TemplateVersion | None] = {}

    def __len__(self) -> int:
        """How many versions this cache has read."""
        return len(self._by_pk)

    def load(self, *, pks: Iterable[int | None] = (), keys: Iterable[tuple[str, int]] = ()) -> None:
        """Read, in one query, the versions of ``pks`` and ``keys`` that are not held yet."""
        missing_pks = {pk for pk in pks if pk is not None and pk not in self._by_pk}
        missing_keys = {key for key in keys if key not in self._by_key}
        wanted = [Q(pk__in=missing_pks)] if missing_pks else []
        wanted += [Q(template__template_id=t, number=n) for t, n in missing_keys]
        if not wanted:
            return
        found = TemplateVersion.objects.select_related("template").defer("source")
        for version in found.filter(functools.reduce(operator.or_, wanted)):
            self._add((version.template.template_id, version.number), version)

    def _add(self, key: tuple[str, int], version: TemplateVersion | None) -> None:
        self._by_key[key] = version
        if version is not None:
            self._by_pk[version.pk] = version

    def of_answer(self, info: "flows_client.RunInfo") -> TemplateVersion | None:
        key = _version_key(info)
        if key is None:
            return None
        if key not in self._by_key:
            self._add(key, _version_of(info))
        return self._by_key[key]

    def by_pk(self, pk: int | None) -> TemplateVersion | None:
        if pk is None:
            return None
        if pk not in self._by_pk:
            # Stored after the pass began (imported by a webhook's refresh meanwhile).
            version = TemplateVersion.objects.select_related("template").get(pk=pk)
            self._add((version.template.template_id, version.number), version)
        return self._by_pk[pk]

    def for_pause(self, info: "flows_client.RunInfo", hint_state_id: str) -> TemplateVersion | None:
        """``version_for_pause``, asked once per state: the runs of a batch share few pauses."""
        state_id = _pause_of(info, hint_state_id)
        if not state_id:
            return None
        if state_id not in self._by_pause:
            self._by_pause[state_id] = _version_for_state(state_id)
        return self._by_pause[state_id]


def version_for_pause(
    info: "flows_client.RunInfo", hint_state_id: str = ""
) -> TemplateVersion | None:
    """The version of a Run whose template nobody told us (started elsewhere: Sohar's Get Run and
    webhooks name none), from the callback state it waits in: a rule made in triage, else the
    only stored version with a callback state of that id. None leaves the Run to triage.

    A reconcile pass does not come here: Sohar's Get Run never says the state, so only a
    webhook's ``stateId`` (the hint) can; our engine names the version itself.
    """
    state_id = _pause_of(info, hint_state_id)
    return _version_for_state(state_id) if state_id else None


def _pause_of(info: "flows_client.RunInfo", hint_state_id: str) -> str:
    """The callback state a PENDING run waits in, by Get Run or else the webhook; "" if none."""
    if info.status != RunStatus.PENDING:
        return ""
    return info.state_id or hint_state_id


def _version_for_state(state_id: str) -> TemplateVersion | None:
    rule = PauseRule.objects.select_related("version__template").filter(state_id=state_id).first()
    if rule is not None:
        return rule.version
    candidates = versions_pausing_at(state_id)
    return candidates[0] if len(candidates) == 1 else None


def versions_pausing_at(state_id: str) -> list[TemplateVersion]:
    """Every stored version that has a callback state ``state_id``, newest first."""
    having = TemplateVersion.objects.select_related("template").filter(
        document__states__has_key=state_id
    )
    # The stored document says a state's type: no need to parse every candidate's template.
    return [
        version
        for version in having.order_by("template__template_id", "-number")
        if version.document["states"][state_id].get("type") == "callback"
    ]


def _version_key(info: "flows_client.RunInfo") -> tuple[str, int] | None:
    """The version a Get Run answer names (our engine's extension; Sohar's names none)."""
    if info.template_id is None or info.version is None:
        return None
    return info.template_id, info.version


def _version_of(info: "flows_client.RunInfo") -> TemplateVersion | None:
    key = _version_key(info)
    if key is None:
        return None
    try:
        return version_ensure(template_id=key[0], number=key[1])
    except flows_client.FlowsError:
        logger.warning("could not import %s v%s", *key)
        return None


def _is_older(info: "flows_client.RunInfo", run: FlowRun) -> bool:
    return (
        info.updated_at is not None
        and run.remote_updated_at is not None
        and info.updated_at < run.remote_updated_at
    )


def _mirror_values(
    info: "flows_client.RunInfo",
    run: FlowRun,
    version: TemplateVersion | None,
    hint_state_id: str,
) -> dict[str, Any]:
    # Foreign keys by id: comparing ``run.version`` would load the related row to compare it.
    values: dict[str, Any] = {
        "status": info.status,
        "output": info.output,
        "errors": _errors_of(info),
        "remote_created_at": info.created_at or run.remote_created_at,
        "remote_updated_at": info.updated_at or run.remote_updated_at,
    }
    if version is not None:
        values["version_id"] = version.pk
        values["template_id"] = version.template_id
    # Our extensions: a server that does not send them (Sohar) leaves what we know alone. A
    # Run's input never changes, so it is written once.
    if info.states is not None:
        values["state_results"] = info.states
    if info.input_data is not None and not run.input_data:
        values["input_data"] = info.input_data
    known_state_id = run.state_id if run.status == RunStatus.PENDING else ""
    values["state_id"], values["state_unresolved"] = _waiting_state(
        info, version, hint_state_id, known_state_id
    )
    return values


def _waiting_state(
    info: "flows_client.RunInfo",
    version: TemplateVersion | None,
    hint_state_id: str,
    known_state_id: str,
) -> tuple[str, bool]:
    """Which state the run is at: Get Run's ``stateId``, else the webhook's, else the version's
    only callback state, else the state the mirror already knows for this pause. A PENDING run
    that none of these decides is flagged, not guessed."""
    if info.state_id:
        return info.state_id, False
    if info.status != RunStatus.PENDING:
        return ("", False)
    if hint_state_id:
        return hint_state_id, False
    if version is not None:
        callbacks = version.spec.callback_states()
        if len(callbacks) == 1:
            return callbacks[0].id, False
    if known_state_id:
        # Still PENDING and nothing says where: a sync without stateId (Sohar's reconcile)
        # must not wipe the state a webhook told us; a move between pauses comes with a hint.
        return known_state_id, False
    return "", True


# --- The inbox -------------------------------------------------------------------------------


def event_receive(*, svix_id: str, payload: dict) -> int | None:
    """Store a verified event once; enqueue its refresh on commit. The new row's id.

    Returns None for a duplicate ``svix-id`` (Svix retries, concurrent deliveries). One
    statement in autocommit (``_inbox_insert``): the row is committed when it returns, or with
    the surrounding transaction if there is one, and the enqueue waits for that commit. The
    enqueue is robust: with the broker down the event stays in the inbox for the sweeper.
    """
    # PostgreSQL stores no NUL character (text or jsonb) and no lone UTF-16 surrogate (jsonb):
    # either made the insert fail, answered 503, and Svix sent the same bytes again for a day.
    # The body is signed, so Sohar sent it, and what the event says is only a hint to ask Get
    # Run: such characters become U+FFFD and the event is kept, so the Run is still refreshed
    # now rather than at the next reconcile. Refusing it (a 4xx with abort-message) would also
    # be final, but would drop a genuine notice for one odd character.
    payload = _storable(payload)
    try:
        flow_run_id = uuid.UUID(str(payload.get("flowRunId")))
    except ValueError:
        raise ValueError("flowRunId is missing or not a UUID") from None
    event = WebhookEvent(
        svix_id=svix_id,
        event_type=str(payload.get("event", "")),
        flow_run_id=flow_run_id,
        status=str(payload.get("status") or ""),
        state_id=str(payload.get("stateId") or ""),
        payload=payload,
    )
    # Checked here, not left to the database (SQLite does not enforce lengths): an over-long
    # value must be a final 400 (with abort-message, Svix stops), not the 503 of a failed
    # insert (Svix would retry).
    for name, field in _INBOX_LIMITS:
        limit = field.max_length
        if limit is not None and len(getattr(event, field.attname)) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
    event_id = _inbox_insert(event)
    if event_id is not None:
        transaction.on_commit(lambda: _enqueue_event(event_id), robust=True)
    return event_id


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: Any) -> Any:
    """``value`` with each NUL and lone surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


# The inbox's text columns, by the name the sender gives them.
_INBOX_LIMITS: tuple[tuple[str, Field], ...] = tuple(
    (name, cast(Field, WebhookEvent._meta.get_field(field)))
    for name, field in (
        ("svix-id", "svix_id"),
        ("stateId", "state_id"),
        ("status", "status"),
        ("event", "event_type"),
    )
)


def _inbox_insert(event: WebhookEvent) -> int | None:
    """``INSERT ... ON CONFLICT (svix_id) DO NOTHING RETURNING id``: the new row's id, or None
    when that ``svix-id`` is stored already (PostgreSQL, and SQLite since 3.35).

    One round trip where ``create()`` in ``atomic()`` took three (BEGIN, INSERT, COMMIT) and
    answered a duplicate by raising. Django has no such call: ``bulk_create(ignore_conflicts=
    True)`` sends the same statement but returns no id and does not say whether it inserted.
    """
    sql, fields = _inbox_insert_statement()
    params = [field.get_db_prep_save(field.pre_save(event, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@functools.cache
def _inbox_insert_statement() -> tuple[str, tuple[Field, ...]]:
    """``_inbox_insert``'s SQL and the fields its parameters come from, built once."""
    meta = WebhookEvent._meta
    fields = tuple(field for field in meta.concrete_fields if not field.primary_key)
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING RETURNING {}".format(
        quote(meta.db_table),
        ", ".join(quote(str(field.column)) for field in fields),
        ", ".join(["%s"] * len(fields)),
        quote(str(meta.get_field("svix_id").column)),
        quote(str(meta.pk.column)),
    )
    return sql, fields


@dataclass(frozen=True)
class Drained:
    """One drain of the inbox: the events it marked processed, the runs whose mirror changed,
    and the runs whose Get Run failed (their events stay in the inbox)."""

    processed: int
    changed: list[FlowRun]
    failed: dict[uuid.UUID, "flows_client.FlowsError"]


def events_process(event_ids: Sequence[int], *, batch: int = INBOX_BATCH) -> Drained | None:
    """Drain the inbox from a task's events: one Get Run per run of these events and of up to
    ``batch`` other waiting ones (oldest first), made concurrently, the answers written
    set-wise (``mirror_apply_many``), and every event they answer marked processed. None when
    no event of the task is left to take: one indexed read.

    Two drains never take the same event (``_inbox_claim``), and a drain starts only from events
    of its own task that no other drain holds (``_events_claim``). A run whose Get Run fails
    keeps its events unprocessed and the rest of the batch is written all the same; then a
    failure that may pass, of one of the task's own runs, is raised so that the task retries
    (the sweeper re-sends the others).
    """
    if not WebhookEvent.objects.filter(pk__in=event_ids, processed_at__isnull=True).exists():
        return None
    with _inbox_claim():
        own_runs, run_ids = _events_claim(event_ids, batch=batch)
        asked_at = timezone.now()
        answers = _get_runs(run_ids)
        infos = [a for a in answers.values() if not isinstance(a, flows_client.FlowsError)]
        failed = {
            run_id: a for run_id, a in answers.items() if isinstance(a, flows_client.FlowsError)
        }
        processed, changed = _events_answer(infos, asked_at=asked_at)
    # After the claim's commit: every drain writes the one health row, and holding its lock to
    # the end of the claim would line them up behind each other.
    if failed:
        _get_runs_failed(failed)
    if infos:
        health_record_success()
    unanswered = [run_id for run_id in own_runs if run_id in failed or run_id not in answers]
    if unanswered:
        # Their events stay in the inbox; the task retries what may pass. A run not asked at
        # all (throttled, or out of time) takes the batch's failure that may pass.
        error = next((failed[r] for r in unanswered if r in failed and failed[r].retryable), None)
        error = error or next((e for e in failed.values() if e.retryable), None)
        if error is not None:
            raise error
    return Drained(processed, changed, failed)


@contextmanager
def _inbox_claim() -> Iterator[None]:
    """The transaction that holds a drain's claim, from its first lock to its last write.

    The claim is the events' row locks (``FOR UPDATE SKIP LOCKED``), held across the Get Runs:
    the inbox has no column to mark a claim in, and a lock needs no expiry, as a worker that
    dies mid-batch loses it with its connection and the events are simply unprocessed again.
    The transaction writes nothing before the answers are in, the receiver's ``INSERT ... ON
    CONFLICT DO NOTHING`` never waits on these locks, and the Get Runs are bounded
    (``INBOX_ASK_WITHIN`` and the client's timeouts). SQLite has no row locks, and there its
    IMMEDIATE transaction would lock the whole file, the receiver too, during the Get Runs: no
    claim is held there, so two drains may refresh the same run, which is idempotent.
    """
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            yield
    else:
        yield


def _events_claim(
    event_ids: Sequence[int], *, batch: int
) -> tuple[set[uuid.UUID], list[uuid.UUID]]:
    """Lock the unprocessed events of ``event_ids`` and up to ``batch`` other events, oldest
    first, skipping those another drain holds: the runs of the task's own events locked, and
    the distinct runs of the whole claim.

    Nothing, when other drains hold (or have processed) all of ``event_ids``: they answer those
    events, and the waiting events they left have tasks of their own; taking a few of them here
    would make many small drains, each with the fixed cost of a drain.
    """
    unprocessed = WebhookEvent.objects.select_for_update(skip_locked=True).filter(
        processed_at__isnull=True
    )
    own = list(unprocessed.filter(pk__in=event_ids).values_list("flow_run_id", flat=True))
    if not own:
        return set(), []
    # The LIMIT in the locking statement itself: as a subquery's, it would pick the oldest rows
    # whether held or not, and a second drain would skip all of them and take nothing.
    others = (
        unprocessed.exclude(pk__in=event_ids)
        .order_by("received_at")
        .values_list("flow_run_id", flat=True)[:batch]
    )
    return set(own), list(dict.fromkeys([*own, *others]))


def _get_runs(
    run_ids: list[uuid.UUID],
) -> dict[uuid.UUID, "flows_client.RunInfo | flows_client.FlowsError"]:
    """Get Run for each run, ``FLOWS_SYNC_CONCURRENCY`` at a time. A run not asked yet when the
    server answers 429 (it asks us to slow down) or ``INBOX_ASK_WITHIN`` has passed is left
    out: its events wait for a later drain."""
    if not run_ids:
        return {}
    deadline = time.monotonic() + INBOX_ASK_WITHIN
    throttled = threading.Event()

    def ask(run_id: uuid.UUID) -> "flows_client.RunInfo | flows_client.FlowsError | None":
        if throttled.is_set() or time.monotonic() > deadline:
            return None
        answer = _get_run_or_error(run_id)
        if isinstance(answer, flows_client.FlowsError) and answer.status == 429:
            throttled.set()
        return answer

    with ThreadPoolExecutor(max_workers=min(settings.FLOWS_SYNC_CONCURRENCY, len(run_ids))) as pool:
        answers = dict(zip(run_ids, pool.map(ask, run_ids), strict=True))
    return {run_id: answer for run_id, answer in answers.items() if answer is not None}


def _events_answer(
    infos: list["flows_client.RunInfo"], *, asked_at: datetime
) -> tuple[int, list[FlowRun]]:
    """Write Get Run answers, and mark processed the events they answer: every unprocessed
    event of those runs received before the Get Runs were asked (their own tasks then find
    nothing to do), but none that another drain holds. The count marked, the runs changed."""
    if not infos:
        return 0, []
    run_ids = [uuid.UUID(str(info.flow_run_id)) for info in infos]
    # No savepoint: inside the claim's transaction on PostgreSQL, the transaction on SQLite.
    with transaction.atomic(savepoint=False):
        answered = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(flow_run_id__in=run_ids, processed_at__isnull=True, received_at__lte=asked_at)
            .order_by("received_at", "pk")
            .values_list("pk", "flow_run_id", "status", "state_id")
        )
        # Where a run waits when Get Run does not say (Sohar's never does): its newest PENDING
        # event's state. A later event that is not PENDING does not erase it: webhooks come in
        # no guaranteed order, so it may be an earlier change delivered late.
        hints = dict.fromkeys(run_ids, "")
        for _, run_id, status, state_id in answered:
            if status == RunStatus.PENDING:
                hints[run_id] = state_id
        changed = mirror_apply_many(infos, versions=VersionCache(), hints=hints)
        processed = WebhookEvent.objects.filter(
            pk__in=[row[0] for row in answered], processed_at__isnull=True
        ).update(processed_at=timezone.now())
    return processed, changed


def events_sweep() -> int:
    """Re-enqueue inbox rows that were stored but never processed (broker down, lost task)."""
    stale = list(
        WebhookEvent.objects.filter(
            processed_at__isnull=True, received_at__lt=timezone.now() - INBOX_GRACE
        ).values_list("pk", flat=True)[:1000]
    )
    for start in range(0, len(stale), INBOX_BATCH):
        _publish_events(stale[start : start + INBOX_BATCH])
    return len(stale)


def _enqueue_event(event_id: int) -> None:
    """Called once the event's row is committed: a task to drain it is published within
    ``INBOX_PUBLISH_WINDOW``, with the other events this process stores meanwhile."""
    _events_to_publish.add(event_id)


class _EventsToPublish:
    """The events this process has stored and not yet handed to a worker.

    The first event of a window starts a timer; when it fires, one task carries every event
    added meanwhile. Each event is thus in a task published after its row was committed, as when
    each had its own, and a drain takes all of its task's events (``events_process``). What a
    process holds when it dies unannounced is lost with it: the sweeper re-sends those events
    after ``INBOX_GRACE``.
    """

    def __init__(self) -> None:
        self._reset()
        # A child process (a forking server's worker) starts with none: the parent publishes
        # what it held, and a timer thread is not carried across fork().
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._event_ids: list[int] = []
        self._timer: threading.Timer | None = None

    def add(self, event_id: int) -> None:
        with self._lock:
            self._event_ids.append(event_id)
            full = len(self._event_ids) >= INBOX_BATCH
            if self._timer is None and not full:
                # Else the pending publish takes this event too.
                self._timer = threading.Timer(INBOX_PUBLISH_WINDOW, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()  # a drain's worth goes at once

    def flush(self) -> None:
        """Publish the events held now (the timer's work; at exit, what is left)."""
        with self._lock:
            event_ids = self._take()
        if not event_ids:
            return
        try:
            _publish_events(event_ids)
        except Exception:
            # Not raised into a request, nor out of the timer's thread: the events are stored,
            # and the sweeper re-sends them once the broker answers.
            logger.exception("Publishing %d inbox events failed", len(event_ids))

    def discard(self) -> None:
        """Forget the events held, unpublished: a test's, at its end, so that they do not reach
        the next test's broker."""
        with self._lock:
            self._take()

    def _take(self) -> list[int]:
        """The events held, no longer held, and the pending publish called off (under the
        lock)."""
        event_ids, self._event_ids = self._event_ids, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return event_ids


_events_to_publish = _EventsToPublish()


def _publish_events(event_ids: list[int]) -> None:
    from flows_integration import tasks

    # No publish retries: a webhook answer must not wait on a broker that is down. The
    # arguments' reprs (for the worker's log) are given, or Celery computes them with reprlib on
    # every publish. (celery-types does not list these options of apply_async.)
    tasks.process_events.apply_async(  # type: ignore[call-arg]
        args=(event_ids,),
        argsrepr=f"({len(event_ids)} events,)",
        kwargsrepr="{}",
        retry=False,
    )


# --- Leases ----------------------------------------------------------------------------------


@dataclass
class Lease:
    """A lease this process holds (see ``SyncLease``)."""

    name: str
    holder: str
    ttl: timedelta
    renewed_at: float  # time.monotonic()

    def keep(self) -> bool:
        """Renew the lease once a fifth of its time has passed. False when it was lost: it
        expired (the holder stalled) and another holder took it."""
        if time.monotonic() - self.renewed_at < self.ttl.total_seconds() / 5:
            return True
        self.renewed_at = time.monotonic()
        renewed = SyncLease.objects.filter(name=self.name, holder=self.holder).update(
            expires_at=timezone.now() + self.ttl
        )
        return renewed == 1


def lease_acquire(*, name: str, ttl: timedelta) -> Lease | None:
    """Take the lease ``name`` when it is free or expired; None when another holder has it.

    A conditional UPDATE that must touch the one row: of two takers at once, PostgreSQL makes
    the second wait for the first's commit and re-check the condition, SQLite runs them one
    after the other, so exactly one wins on either.
    """
    SyncLease.objects.get_or_create(name=name)
    now = timezone.now()
    holder = uuid.uuid4().hex
    taken = (
        SyncLease.objects.filter(name=name)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__lte=now))
        .update(holder=holder, expires_at=now + ttl)
    )
    return Lease(name, holder, ttl, time.monotonic()) if taken == 1 else None


def lease_release(lease: Lease) -> None:
    SyncLease.objects.filter(name=lease.name, holder=lease.holder).update(
        holder="", expires_at=None
    )


@contextmanager
def lease_hold(*, name: str, ttl: timedelta) -> Iterator[Lease | None]:
    """Hold the lease for the block (None: another holder has it), released on the way out."""
    lease = lease_acquire(name=name, ttl=ttl)
    try:
        yield lease
    finally:
        if lease is not None:
            lease_release(lease)


# --- Reconcile -------------------------------------------------------------------------------


def reconcile(*, concurrency: int | None = None, limit: int | None = None) -> SyncPass:
    """Refresh every non-terminal run, least recently changed first, with bounded concurrency.

    Runs whose webhooks were all lost show up within one pass. Stops early (``throttled``) when
    the server answers 429 even after the client's own back-off, to try again next period. A
    pass that finds another one still running (it outlasted the beat period) does nothing and
    is recorded as ``skipped``. Each chunk of answers is written set-wise
    (``mirror_apply_many``), with the template versions read once for the whole pass.
    """
    concurrency = concurrency or settings.FLOWS_SYNC_CONCURRENCY
    started = time.monotonic()
    sync_pass = SyncPass(started_at=timezone.now())
    with lease_hold(name=RECONCILE_LEASE, ttl=RECONCILE_LEASE_TTL) as lease:
        if lease is None:
            sync_pass.skipped = True
        else:
            _reconcile_runs(sync_pass, lease, concurrency=concurrency, limit=limit)
    sync_pass.finished_at = timezone.now()
    sync_pass.duration_ms = int((time.monotonic() - started) * 1000)
    sync_pass.save()
    return sync_pass


def _reconcile_runs(
    sync_pass: SyncPass, lease: "Lease", *, concurrency: int, limit: int | None
) -> None:
    candidates = (
        FlowRun.objects.exclude(status__in=[RunStatus.COMPLETE, RunStatus.ERROR])
        .order_by(F("synced_at").asc(nulls_first=True), "pk")
        .values_list("flow_run_id", flat=True)
    )
    if limit is not None:
        candidates = candidates[:limit]
    # Ids first (10,000 UUIDs are small): no cursor stays open while rows are being written.
    run_ids = list(candidates)
    versions = VersionCache()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for chunk in _chunks(run_ids, RECONCILE_CHUNK):
            answers = []
            for answer in pool.map(_get_run_or_error, chunk):
                sync_pass.runs_checked += 1
                if isinstance(answer, flows_client.FlowsError):
                    sync_pass.runs_failed += 1
                    sync_pass.throttled = sync_pass.throttled or answer.status == 429
                else:
                    answers.append(answer)
            sync_pass.runs_changed += len(mirror_apply_many(answers, versions=versions))
            if sync_pass.throttled:
                break
            if not lease.keep():
                logger.warning("reconcile stopped: its lease expired and was taken over")
                break
    if sync_pass.runs_checked and sync_pass.runs_failed < sync_pass.runs_checked:
        health_record_success()


def _get_run_or_error(flow_run_id: Any) -> "flows_client.RunInfo | flows_client.FlowsError":
    try:
        return flows_client.get_run(str(flow_run_id))
    except flows_client.FlowsError as exc:
        return exc


def _errors_of(info: "flows_client.RunInfo") -> list[dict]:
    return [
        {"status": e.status, "param": e.param, "error": e.error, "state": e.state}
        for e in info.errors
    ]


def _chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
