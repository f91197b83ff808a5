"""The engine's state changes: publishing versions, tokens, and the run executor.

Each executor step runs under a row lock on the Run and is keyed on ``Run.step``: a step computed
against an older ``step`` is thrown away, so a task delivered twice, or a sweep racing a worker,
never applies a state twice. Product calls happen outside the transaction so that a slow product
never holds a database lock (SQLite under ``make run`` has only one writer at a time).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

import flowspec
from flows_engine import products, webhooks
from flows_engine.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from flows_engine.models import (
    AccessToken,
    ApiClient,
    Run,
    RunStatus,
    Template,
    TemplateVersion,
)

logger = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent / "demo"
MAX_STEPS_PER_TASK = 100
# A countdown task may fire a little before its ETA by the database's clock.
WAKE_TOLERANCE = timedelta(seconds=1)


# --- Templates -------------------------------------------------------------------------------

TEMPLATE_ID_MAX = Template._meta.get_field("template_id").max_length or 100
# metadata.name has no length limit in the language; the column has one.
TEMPLATE_NAME_MAX = Template._meta.get_field("name").max_length or 200


def version_publish(*, template_id: str, source: str) -> TemplateVersion:
    """Validate a template document and store it as the template's next version.

    Raises ``flowspec.TemplateInvalid`` listing every problem, a ``metadata.version`` other than
    the number the version gets included (checked again under the transaction, so a publisher
    who raced ahead cannot make the document name the wrong version); nothing is written then.
    The admin's publish page and the API's publish call both come here.
    """
    spec = flowspec.load_template(source)
    for _ in range(3):
        try:
            with transaction.atomic():
                template, _created = Template.objects.get_or_create(
                    template_id=template_id, defaults={"name": spec.name[:TEMPLATE_NAME_MAX]}
                )
                last = template.versions.aggregate(last=Max("number"))["last"] or 0
                _check_own_number(spec, template_id=template_id, following=last + 1)
                # Two publishers racing for the same number: the unique constraint lets one
                # win and the other tries again with the next number.
                return TemplateVersion.objects.create(
                    template=template, number=last + 1, source=source, document=spec.document
                )
        except IntegrityError:
            continue
    raise Conflict("the template is being published concurrently; try again", param="templateId")


def version_publish_check(*, template_id: str, source: str) -> flowspec.Template:
    """What ``version_publish`` would refuse, without writing: for a form to show before it
    publishes. Raises ``flowspec.TemplateInvalid``."""
    spec = flowspec.load_template(source)
    last = (
        TemplateVersion.objects.filter(template__template_id=template_id).aggregate(
            last=Max("number")
        )["last"]
        or 0
    )
    _check_own_number(spec, template_id=template_id, following=last + 1)
    return spec


def _check_own_number(spec: flowspec.Template, *, template_id: str, following: int) -> None:
    # The engine numbers versions itself; a document that claims another number would be read
    # by people (and copied by Flowdesk) as a version it is not.
    own = flowspec.document_version(spec.document)
    if own is not None and own != following:
        raise flowspec.TemplateInvalid(
            [
                flowspec.SpecError(
                    "metadata.version",
                    f"The document says version {own}, but it would be published as "
                    f"{template_id} v{following}. Change metadata.version to {following}, "
                    "or remove it.",
                )
            ]
        )


def version_get(*, template_id: str, number: int | None = None) -> TemplateVersion:
    versions = TemplateVersion.objects.select_related("template").filter(
        template__template_id=template_id
    )
    if not versions.exists():
        raise NotFound(f"no template {template_id!r}", param="templateId")
    version = (
        versions.order_by("-number").first()
        if number is None
        else versions.filter(number=number).first()
    )
    if version is None:
        raise NotFound(f"template {template_id!r} has no version {number}", param="version")
    return version


def demo_seed() -> list[TemplateVersion]:
    """Publish the demo templates (``demo/<template-id>/vN.yaml``) that are not stored yet."""
    published = []
    for folder in sorted(p for p in DEMO_DIR.iterdir() if p.is_dir()):
        stored = TemplateVersion.objects.filter(template__template_id=folder.name).count()
        files = sorted(folder.glob("v*.yaml"), key=lambda p: int(p.stem[1:]))
        for path in files[stored:]:
            published.append(version_publish(template_id=folder.name, source=path.read_text()))
    return published


# --- Credentials -----------------------------------------------------------------------------


def client_ensure(*, client_id: str, secret: str, environment: str, name: str) -> ApiClient:
    client, _ = ApiClient.objects.get_or_create(
        client_id=client_id, defaults={"name": name, "environment": environment}
    )
    if not client.check_secret(secret) or client.environment != environment:
        client.environment = environment
        client.set_secret(secret)
        client.save()
    return client


def token_issue(*, client_id: Any, client_secret: Any) -> tuple[str, int]:
    """Sohar's token call: client credentials in, a bearer token valid for ``expires_in``."""
    if not isinstance(client_id, str) or not isinstance(client_secret, str):
        raise Unauthorized("client_id and client_secret are required")
    client = ApiClient.objects.filter(client_id=client_id, active=True).first()
    if client is None or not client.check_secret(client_secret):
        raise Unauthorized("Unauthorized")
    ttl = settings.FLOWS_ENGINE_TOKEN_TTL
    token, _row = AccessToken.issue(client, ttl)
    return token, ttl


def client_for_token(authorization: str | None) -> ApiClient:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Unauthorized")
    row = (
        AccessToken.objects.select_related("client")
        .filter(token_hash=AccessToken.hash(token.strip()), expires_at__gt=timezone.now())
        .first()
    )
    if row is None or not row.client.active:
        raise Unauthorized("Unauthorized")
    return row.client


# --- Runs: the API's side --------------------------------------------------------------------


def run_create(
    *, client: ApiClient, template_id: str, input_data: Any, version: int | None = None
) -> Run:
    """Create Run: validate ``inputData`` against the version's ``input`` schema, then start."""
    template_version = version_get(template_id=template_id, number=version)
    if not isinstance(input_data, dict):
        raise InvalidRequest("inputData must be an object", param="inputData")
    errors = flowspec.input_errors(template_version.spec.input_schema, input_data)
    if errors:
        field, message = errors[0]
        raise InvalidRequest(message, param=field or "inputData")
    with transaction.atomic():
        run = Run.objects.create(
            version=template_version,
            client=client,
            environment=client.environment,
            input_data=input_data,
        )
        _enqueue_advance(run)
    return run


def _runs_of(client: ApiClient) -> QuerySet[Run]:
    """The Runs ``client`` may see: only its own. Another client's Run, even in the same
    environment, is a 404 like an unknown id, so ids cannot be probed across clients."""
    return Run.objects.filter(client=client, environment=client.environment)


def run_get(*, client: ApiClient, run_id: Any) -> Run:
    run = _runs_of(client).select_related("version__template").filter(pk=run_id).first()
    if run is None:
        raise NotFound("no such flow run", param="flowRunId")
    return run


def run_update(*, client: ApiClient, run_id: Any, input: Any) -> Run:
    """Update Run: accept a person's input at the callback state the Run waits in.

    Refuses (409) unless the Run is ``PENDING``, so a second PUT after the first was applied
    changes nothing; input that fails the state's schema is refused with 400 and ``param``.
    """
    if not isinstance(input, dict):
        raise InvalidRequest("input is required and must be an object", param="input")
    with transaction.atomic():
        run = _runs_of(client).select_for_update().filter(pk=run_id).first()
        if run is None:
            raise NotFound("no such flow run", param="flowRunId")
        if run.status != RunStatus.PENDING:
            raise Conflict(f"the run is {run.status}, not PENDING", param="status")
        _accept_input(run, input)
    return run


def _accept_input(run: Run, data: dict) -> None:
    state = run.version.spec.state(run.state_id)
    assert isinstance(state, flowspec.CallbackState)
    errors = flowspec.input_errors(state.input_schema, data)
    if errors:
        field, message = errors[0]
        raise InvalidRequest(message, param=field or "input")
    run.state_outputs = {**run.state_outputs, state.id: data}
    run.wake_at = None  # the callback's timeout no longer applies
    _record(run, status=RunStatus.IN_PROGRESS, state_id=state.id)
    _enqueue_advance(run)


# --- Runs: the executor ----------------------------------------------------------------------


@dataclass(frozen=True)
class _ProductCall:
    step: int
    state: flowspec.RequestState
    parameters: dict
    attempt: int


def run_advance(run_id: Any) -> None:
    """Execute states until the Run pauses, ends, or waits for a retry."""
    for _ in range(MAX_STEPS_PER_TASK):
        if not _advance_one(run_id):
            return
    # A template that loops through choices without pausing: keep going in a fresh task.
    run = Run.objects.filter(pk=run_id).first()
    if run is not None:
        _enqueue_advance(run)


def _advance_one(run_id: Any) -> bool:
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_terminal or run.status == RunStatus.PENDING:
            return False
        if run.wake_at is not None and run.wake_at > timezone.now() + WAKE_TOLERANCE:
            return False  # a retry is scheduled; its own task (or the sweep) comes back then
        spec = run.version.spec
        if run.status == RunStatus.CREATED:
            _enter(run, spec.starts_at)
            return True
        state = spec.state(run.state_id)
        if isinstance(state, flowspec.ChoiceState):
            try:
                _enter(run, state.next_state(run.context()))
            except flowspec.NoChoiceMatched:
                _fail(run, state.id, status=400, error="no_choice_matched", param=None)
            return True
        if isinstance(state, flowspec.CallbackState):
            # IN_PROGRESS at a callback state means Update Run accepted the input.
            _leave(run, state)
            return True
        assert isinstance(state, flowspec.RequestState)
        call = _ProductCall(
            step=run.step,
            state=state,
            parameters=state.render_parameters(run.context()),
            attempt=run.attempt + 1,
        )
    outcome = _call_product(call)
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.step != call.step:
            return True  # another worker applied this step already
        return _apply_outcome(run, call, outcome)


def _call_product(call: _ProductCall) -> dict | products.ProductFailure:
    try:
        return products.call_product(
            call.state.resource,
            call.parameters,
            latency_ms=settings.FLOWS_ENGINE_PRODUCT_LATENCY_MS,
            attempt=call.attempt,
        )
    except products.ProductFailure as failure:
        return failure


def _apply_outcome(run: Run, call: _ProductCall, outcome: dict | products.ProductFailure) -> bool:
    """Apply a product's answer; False when a retry was scheduled instead.

    The retry is left to its countdown task (or the sweep): going on in this task's loop would
    let ``WAKE_TOLERANCE`` swallow any backoff of a second or less.
    """
    state = call.state
    if not isinstance(outcome, products.ProductFailure):
        context = {**run.context(), "response": outcome}
        run.state_outputs = {**run.state_outputs, state.id: state.select_result(outcome, context)}
        _leave(run, state)
        return True
    if state.retry.should_retry(outcome.name, call.attempt):
        delay = state.retry.delay_before(call.attempt + 1)
        run.attempt = call.attempt
        run.wake_at = timezone.now() + timedelta(seconds=delay)
        run.step += 1
        run.updated_at = timezone.now()
        run.save(update_fields=["attempt", "wake_at", "step", "updated_at"])
        _enqueue_advance(run, countdown=delay)
        return False
    error = {"error": outcome.name, "param": outcome.param, "status": outcome.status}
    target = state.catch_target(outcome.name)
    if target is not None:
        run.state_outputs = {**run.state_outputs, state.id: {"error": error}}
        _enter(run, target)
        return True
    _fail(run, state.id, status=outcome.status, error=_sohar_error(outcome), param=outcome.param)
    return True


def _sohar_error(failure: products.ProductFailure) -> str:
    return "invalid_request_error" if failure.name == "InvalidRequest" else "api_error"


def _enter(run: Run, state_id: str) -> None:
    state = run.version.spec.state(state_id)
    run.attempt = 0
    run.wake_at = None
    if isinstance(state, flowspec.CallbackState):
        if state.timeout is not None:
            run.wake_at = timezone.now() + timedelta(seconds=state.timeout.seconds)
        _record(run, status=RunStatus.PENDING, state_id=state_id)
    else:
        _record(run, status=RunStatus.IN_PROGRESS, state_id=state_id)


def _leave(run: Run, state: flowspec.RequestState | flowspec.CallbackState) -> None:
    if state.end:
        run.output = run.version.spec.evaluate_output(run.context())
        _record(run, status=RunStatus.COMPLETE, state_id=state.id)
    else:
        assert state.next is not None
        _enter(run, state.next)


def _fail(run: Run, state_id: str, *, status: int, error: str, param: str | None) -> None:
    run.errors = [{"status": status, "param": param, "error": error, "state": state_id}]
    _record(run, status=RunStatus.ERROR, state_id=state_id)


def _record(run: Run, *, status: str, state_id: str) -> None:
    """Save a transition and announce it; webhooks go out only for a real change."""
    changed = (status, state_id) != (run.status, run.state_id)
    run.status = status
    run.state_id = state_id
    run.step += 1
    run.updated_at = timezone.now()
    run.save()
    if changed:
        webhooks.run_changed(run)


def _enqueue_advance(run: Run, countdown: float = 0) -> None:
    from flows_engine import tasks

    run_id = str(run.pk)
    # Robust and without publish retries: with the broker down the change is committed
    # anyway and the sweep picks the run up, so an API call never fails or hangs on it.
    transaction.on_commit(
        lambda: tasks.advance_run.apply_async(args=(run_id,), countdown=countdown, retry=False),
        robust=True,
    )


# --- Sweep -----------------------------------------------------------------------------------


def sweep() -> dict[str, int]:
    """Pick up what a killed worker or a lost task left behind; time out callbacks.

    - ``CREATED``/``IN_PROGRESS`` runs untouched for ``FLOWS_ENGINE_STALE_AFTER`` seconds whose
      retry (if any) is due are advanced again (a step is safe to run twice).
    - ``PENDING`` runs past their callback ``timeout`` get the timeout's input.
    - Webhook messages past their due time are delivered again.
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.FLOWS_ENGINE_STALE_AFTER)
    stuck = list(
        Run.objects.filter(
            status__in=[RunStatus.CREATED, RunStatus.IN_PROGRESS], updated_at__lt=stale_before
        )
        .exclude(wake_at__gt=now)
        .values_list("pk", flat=True)[:1000]
    )
    for run_id in stuck:
        _enqueue_advance(Run(pk=run_id))
    timed_out = 0
    for run_id in Run.objects.filter(status=RunStatus.PENDING, wake_at__lte=now).values_list(
        "pk", flat=True
    )[:1000]:
        timed_out += run_time_out(run_id)
    redelivered = webhooks.messages_redeliver_due(older_than=stale_before)
    return {"stuck_runs": len(stuck), "timed_out": timed_out, "webhooks": redelivered}


def run_time_out(run_id: Any) -> int:
    """Apply a callback's ``timeout.input`` to a Run still waiting past its deadline."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != RunStatus.PENDING or run.wake_at is None:
            return 0
        if run.wake_at > timezone.now():
            return 0
        state = run.version.spec.state(run.state_id)
        assert isinstance(state, flowspec.CallbackState) and state.timeout is not None
        _accept_input(run, state.timeout.input)
    return 1
