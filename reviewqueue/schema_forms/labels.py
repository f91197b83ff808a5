"""Words for people instead of paths and codes: a context path's label from the template's own
titles, and an enum value's title (`60054` → `Aetna`)."""

from collections.abc import Mapping
from typing import Any

import flowspec
from reviewqueue.schema_forms.fields import humanize


def title_of(key: str, schema: Any) -> str:
    """A schema's (or a state's) own title, else its key in words."""
    title = schema.get("title") if isinstance(schema, Mapping) else None
    return title if isinstance(title, str) else humanize(key)


def state_result_schema(state: Mapping[str, Any]) -> Any:
    """What describes a state's result: a request's `resultSelector`, a callback's `input`."""
    return state.get("resultSelector") if state.get("type") == "request" else state.get("input")


def path_label(document: Mapping[str, Any], path: str) -> str:
    """`$input.patient.firstName` → `Patient › First name`; `$states.verify-coverage.planName`
    → `Verify coverage › Plan name` (the state's title when it has one)."""
    try:
        parsed = flowspec.parse_path(path)
    except flowspec.PathError:
        return path
    segments = list(parsed.segments)
    labels: list[str] = []
    schema: Any = None
    if parsed.root == "input":
        schema = document.get("input", {})
    elif parsed.root == "states" and segments:
        state_id = str(segments.pop(0))
        state = document.get("states", {}).get(state_id, {})
        labels.append(title_of(state_id, state))
        schema = state_result_schema(state)
    for segment in segments:
        if isinstance(segment, int):
            labels.append(str(segment + 1))
            schema = schema.get("items") if isinstance(schema, Mapping) else None
            continue
        sub = schema.get("properties", {}).get(segment) if isinstance(schema, Mapping) else None
        labels.append(title_of(segment, sub))
        schema = sub
    return " › ".join(labels) or path


def schema_at(document: Mapping[str, Any], path: str) -> Any:
    """The schema describing what ``path`` reads: under the template's `input`, or under what a
    state produced (a request's `resultSelector`, a callback's `input`), if known."""
    try:
        parsed = flowspec.parse_path(path)
    except flowspec.PathError:
        return None
    segments = list(parsed.segments)
    schema: Any = None
    if parsed.root == "input":
        schema = document.get("input", {})
    elif parsed.root == "states" and segments:
        state = document.get("states", {}).get(str(segments.pop(0)))
        schema = state_result_schema(state) if isinstance(state, Mapping) else None
    for segment in segments:
        if not isinstance(schema, Mapping):
            return None
        schema = (
            schema.get("items")
            if isinstance(segment, int)
            else schema.get("properties", {}).get(segment)
        )
    return schema


def value_title(schema: Any, value: Any) -> str | None:
    """The title of the `oneOf` choice whose `const` is ``value``, if the schema names one."""
    if not isinstance(schema, Mapping):
        return None
    for choice in schema.get("oneOf", []) or []:
        if isinstance(choice, Mapping) and choice.get("const") == value and "title" in choice:
            return str(choice["title"])
    return None
