"""The two ways into flowspec: `load_template` for text and `validate_document` for data."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any

from flowspec.checks import semantic_errors
from flowspec.errors import SpecError, TemplateInvalid
from flowspec.loading import non_json_errors, parse_text, schema_errors
from flowspec.model import (
    PRODUCTS,
    CallbackState,
    CallbackTimeout,
    Catch,
    ChoiceBranch,
    ChoiceState,
    RequestState,
    Retry,
    State,
    Template,
)


def load_template(source: str | bytes, *, products: Collection[str] = PRODUCTS) -> Template:
    """Parse and validate a template's YAML or JSON text; TemplateInvalid lists every problem."""
    try:
        return validate_document(parse_text(source), products=products)
    except RecursionError:
        # Brackets nested thousands deep exhaust the parser's stack (or a check's, for a
        # document that parsed just under it): bad input to say so about, never a crash.
        raise TemplateInvalid([SpecError("document", "nested too deeply to read")]) from None


def stored_template(document: Mapping[str, Any]) -> Template:
    """A document that was validated when it was published, parsed once per process.

    Executors and forms read the same few versions over and over; a published version is
    immutable, so its parse can be shared. Keyed on the document's content, not on a database
    id, so a recreated database can never be served a stale parse. Callers must not mutate it.
    """
    return _stored_template(json.dumps(document, sort_keys=True))


@lru_cache(maxsize=256)
def _stored_template(canonical: str) -> Template:
    return validate_document(json.loads(canonical))


def validate_document(document: object, *, products: Collection[str] = PRODUCTS) -> Template:
    """Validate a parsed document completely and build its `Template`.

    Three stages, each reporting everything it finds: JSON-ness, the JSON Schema for template
    documents, then the semantic checks. A stage runs only when the one before passed, because
    the semantic checks rely on the document's shape and would only add confusing echoes.
    """
    for stage in (non_json_errors, schema_errors):
        errors = list(stage(document))
        if errors:
            raise TemplateInvalid(errors)
    assert isinstance(document, dict)  # the schema requires an object
    errors = semantic_errors(document, products)
    if errors:
        raise TemplateInvalid(errors)
    return _template(document)


def _template(document: dict[str, Any]) -> Template:
    metadata = document["metadata"]
    return Template(
        document=document,
        name=metadata["name"],
        description=metadata.get("description", ""),
        input_schema=document["input"],
        starts_at=document["startsAt"],
        states={sid: _state(sid, state) for sid, state in document["states"].items()},
        output_schema=document.get("output"),
    )


def _state(state_id: str, state: Mapping[str, Any]) -> State:
    match state["type"]:
        case "request":
            return _request(state_id, state)
        case "choice":
            return ChoiceState(
                id=state_id,
                choices=tuple(ChoiceBranch(b["when"], b["next"]) for b in state["choices"]),
                default=state.get("default"),
            )
    return _callback(state_id, state)


def _request(state_id: str, state: Mapping[str, Any]) -> RequestState:
    return RequestState(
        id=state_id,
        resource=state["resource"],
        parameters=state.get("parameters", {}),
        result_selector=state.get("resultSelector"),
        retry=_retry(state.get("retry", {})),
        catch=tuple(Catch(tuple(c["errors"]), c["next"]) for c in state.get("catch", [])),
        next=state.get("next"),
        end=state.get("end", False),
    )


def _retry(retry: Mapping[str, Any]) -> Retry:
    defaults = Retry()
    return Retry(
        # JSON Schema calls 3.0 an integer; the engine counts with ints.
        max_attempts=int(retry.get("maxAttempts", defaults.max_attempts)),
        interval_seconds=float(retry.get("intervalSeconds", defaults.interval_seconds)),
        backoff_rate=float(retry.get("backoffRate", defaults.backoff_rate)),
        max_interval_seconds=float(retry.get("maxIntervalSeconds", defaults.max_interval_seconds)),
        errors=tuple(retry.get("errors", defaults.errors)),
    )


def _callback(state_id: str, state: Mapping[str, Any]) -> CallbackState:
    timeout = state.get("timeout")
    return CallbackState(
        id=state_id,
        title=state["title"],
        instructions=state.get("instructions", ""),
        input_schema=state["input"],
        ui=state.get("ui", {}),
        timeout=CallbackTimeout(int(timeout["seconds"]), timeout["input"]) if timeout else None,
        next=state.get("next"),
        end=state.get("end", False),
    )
