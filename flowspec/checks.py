"""Semantic checks: what the JSON Schema for template documents cannot express.

They run on a document that already has the right shape, and report every problem they find,
each at the state and key at fault, so an author fixes a template in one round.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator, SchemaError, ValidationError, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from flowspec import numbers, renderable
from flowspec.errors import SpecError
from flowspec.loading import location
from flowspec.paths import PathError, is_path, parse_path
from flowspec.rules import rule_problems

Document = Mapping[str, Any]


def _multiple_of(
    validator: Validator, step: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # jsonschema divides the binary floats (1234.57 / 0.01 = 123456.99999999999) and refuses
    # about one cent amount in nine; the numbers as written divide exactly.
    if validator.is_type(instance, "number") and not numbers.is_multiple(instance, step):
        yield ValidationError(f"{instance!r} is not a multiple of {step}")


_InputValidator = validators.extend(Draft202012Validator, {"multipleOf": _multiple_of})


def input_validator(schema: Mapping[str, Any]) -> Validator:
    """The validator for a callback's or a Run's input, with formats checked and numbers
    checked in decimal (`multipleOf: 0.01` takes 1234.57).

    Publication, the engine's Update Run and Flowdesk's forms must agree on what is valid, so
    they all build it here.
    """
    # An empty registry: jsonschema would otherwise fetch a remote `$ref` over the network.
    return _InputValidator(
        schema, format_checker=Draft202012Validator.FORMAT_CHECKER, registry=Registry()
    )


def field_path(parts: Iterable[Any]) -> str:
    """``["diagnoses", 0, "code"]`` → ``"diagnoses[0].code"``: how a field is named in errors."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def input_errors(schema: Mapping[str, Any], instance: Any) -> list[tuple[str, str]]:
    """Every error of ``instance`` as ``(field, message)``, ordered by field.

    A missing required property is reported on the property itself rather than on its parent,
    so that Update Run's ``param`` and a form's error both point at the field to fill in.
    """
    found = []
    for error in input_validator(schema).iter_errors(instance):
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [name for name in error.validator_value if name not in error.instance]
            path += missing[:1]
        found.append((path, error.message))
    found.sort(key=lambda item: [str(part) for part in item[0]])
    return [(field_path(path), message) for path, message in found]


def semantic_errors(document: Document, products: Collection[str]) -> list[SpecError]:
    """Every semantic problem of a schema-valid document."""
    state_ids = set(document["states"])
    errors = list(_graph_errors(document))
    errors += _object_schema_errors(document["input"], "input")
    for state_id, state in document["states"].items():
        where = f"states.{state_id}"
        match state["type"]:
            case "request":
                errors += _request_errors(state, where, state_ids, products)
            case "choice":
                errors += _choice_errors(state, where, state_ids)
            case "callback":
                errors += _callback_errors(state, where, state_ids)
    if "output" in document:
        errors += _projection_errors(document["output"], "output", state_ids, response=False)
    return errors


# The state graph


def _edges(state: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, target state) for every transition out of `state`."""
    if "next" in state:
        yield "next", state["next"]
    for index, handler in enumerate(state.get("catch", [])):
        yield f"catch[{index}].next", handler["next"]
    for index, branch in enumerate(state.get("choices", [])):
        yield f"choices[{index}].next", branch["next"]
    if "default" in state:
        yield "default", state["default"]


def _graph_errors(document: Document) -> Iterator[SpecError]:
    states: Mapping[str, Mapping[str, Any]] = document["states"]
    broken = list(_reference_errors(document))
    yield from broken
    graph = state_graph(states)
    if document["startsAt"] in states:
        from_start = reachable([document["startsAt"]], graph)
        for state_id in states:
            if state_id not in from_start:
                yield SpecError(f"states.{state_id}", "is not reachable from startsAt")
        # With a transition missing or dangling, "cannot finish" would only echo that error.
        if not broken:
            yield from _ending_errors(states, graph, from_start)
    yield from _choice_loop_errors(states, graph)


def _reference_errors(document: Document) -> Iterator[SpecError]:
    """Transitions that name no state, and states that neither go on nor end."""
    states: Mapping[str, Mapping[str, Any]] = document["states"]
    if document["startsAt"] not in states:
        yield SpecError("startsAt", f"there is no state named {document['startsAt']!r}")
    for state_id, state in states.items():
        for key, target in _edges(state):
            if target not in states:
                yield SpecError(f"states.{state_id}.{key}", f"there is no state named {target!r}")
        if state["type"] != "choice":
            yield from _end_or_next_errors(state, f"states.{state_id}")


def state_graph(states: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each state's id to the states a Run can go to straight from it (dangling names left out)."""
    return {sid: [t for _, t in _edges(state) if t in states] for sid, state in states.items()}


def reversed_graph(graph: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Each state's id to the states a Run can come to it from."""
    reverse: dict[str, list[str]] = {sid: [] for sid in graph}
    for source, targets in graph.items():
        for target in targets:
            reverse[target].append(source)
    return reverse


def reachable(starts: list[str], graph: Mapping[str, list[str]]) -> set[str]:
    """The states reachable from `starts` (which are included)."""
    seen, todo = set(starts), list(starts)
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _ending_errors(
    states: Mapping[str, Mapping[str, Any]], graph: Mapping[str, list[str]], from_start: set[str]
) -> Iterator[SpecError]:
    """A Run that can never reach `end: true` would wait or loop forever."""
    ends = [sid for sid, state in states.items() if state.get("end") is True]
    if not ends:
        yield SpecError("states", "no state has end: true, so no Run could finish")
        return
    finishing = reachable(ends, reversed_graph(graph))
    for state_id in states:
        if state_id in from_start and state_id not in finishing:
            yield SpecError(
                f"states.{state_id}", "no path from here reaches a state with end: true"
            )


def _choice_loop_errors(
    states: Mapping[str, Mapping[str, Any]], graph: Mapping[str, list[str]]
) -> Iterator[SpecError]:
    """Choice states that lead back to themselves through choices only never let a Run stop:
    nothing in between can change the data they test."""
    # A list, not a set: the state a loop is reported at must not depend on hash order.
    choices = [sid for sid, state in states.items() if state["type"] == "choice"]
    reported: set[str] = set()
    for start in choices:
        if start in reported:
            continue
        cycle = _cycle_through(start, choices, graph)
        if cycle:
            reported.update(cycle)
            loop = " -> ".join([*cycle, start])
            yield SpecError(f"states.{start}", f"choice states loop forever ({loop})")


def _cycle_through(
    start: str, allowed: Collection[str], graph: Mapping[str, list[str]]
) -> list[str]:
    """A path start -> ... -> start through `allowed` states only, or []."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for target in graph[node]:
            if target == start:
                return path
            if target in allowed and target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return []


def _end_or_next_errors(state: Mapping[str, Any], where: str) -> Iterator[SpecError]:
    if "next" in state and state.get("end") is True:
        yield SpecError(f"{where}.end", "cannot be combined with next: a state goes on or ends")
    if "next" not in state and state.get("end") is not True:
        yield SpecError(f"{where}.next", "is required unless the state has end: true")


# Paths


def path_errors(
    value: Any, where: str, state_ids: Collection[str], *, response: bool = False
) -> Iterator[SpecError]:
    """Problems with every path string inside `value` (objects and lists are walked)."""
    if is_path(value):
        yield from _one_path_errors(value, where, state_ids, response=response)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from path_errors(item, f"{where}.{key}", state_ids, response=response)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from path_errors(item, f"{where}[{index}]", state_ids, response=response)


def _one_path_errors(
    text: str, where: str, state_ids: Collection[str], *, response: bool
) -> Iterator[SpecError]:
    try:
        path = parse_path(text)
    except PathError as error:
        yield SpecError(where, str(error))
        return
    if path.root == "response" and not response:
        yield SpecError(where, f"{text!r}: $response exists only inside a resultSelector")
    if path.state is not None and path.state not in state_ids:
        yield SpecError(where, f"{text!r} names no state: there is no state {path.state!r}")


def _projection_errors(
    projection: Mapping[str, Any], where: str, state_ids: Collection[str], *, response: bool
) -> Iterator[SpecError]:
    """Each projected property has exactly one of `value` (paths checked) or `properties`."""
    for name, prop in projection["properties"].items():
        here = f"{where}.properties.{name}"
        if ("value" in prop) == ("properties" in prop):
            yield SpecError(here, "needs either value or properties (exactly one of them)")
        elif "value" in prop:
            yield from path_errors(prop["value"], f"{here}.value", state_ids, response=response)
        else:
            yield from _projection_errors(prop, here, state_ids, response=response)


# States


def _request_errors(
    state: Mapping[str, Any], where: str, state_ids: Collection[str], products: Collection[str]
) -> Iterator[SpecError]:
    if state["resource"] not in products:
        known = ", ".join(products)
        yield SpecError(f"{where}.resource", f"unknown product {state['resource']!r} ({known})")
    yield from path_errors(state.get("parameters", {}), f"{where}.parameters", state_ids)
    if "resultSelector" in state:
        yield from _projection_errors(
            state["resultSelector"], f"{where}.resultSelector", state_ids, response=True
        )


def _choice_errors(
    state: Mapping[str, Any], where: str, state_ids: Collection[str]
) -> Iterator[SpecError]:
    for index, branch in enumerate(state["choices"]):
        yield from _rule_errors(branch["when"], f"{where}.choices[{index}].when", state_ids)


def _rule_errors(
    rule: Mapping[str, Any], where: str, state_ids: Collection[str]
) -> Iterator[SpecError]:
    for key, message in rule_problems(rule):
        yield SpecError(f"{where}.{key}" if key else where, message)
    if "path" in rule:
        if is_path(rule["path"]):
            yield from _one_path_errors(rule["path"], f"{where}.path", state_ids, response=False)
        else:
            yield SpecError(f"{where}.path", f"{rule['path']!r} is not a path (paths start with $)")
    for combination in ("all", "any"):
        for index, part in enumerate(rule.get(combination, [])):
            yield from _rule_errors(part, f"{where}.{combination}[{index}]", state_ids)
    if "not" in rule:
        yield from _rule_errors(rule["not"], f"{where}.not", state_ids)


def _callback_errors(
    state: Mapping[str, Any], where: str, state_ids: Collection[str]
) -> Iterator[SpecError]:
    schema = state["input"]
    schema_problems = _object_schema_errors(schema, f"{where}.input")
    yield from schema_problems
    ui = state.get("ui", {})
    yield from path_errors(ui.get("context", []), f"{where}.ui.context", state_ids)
    yield from path_errors(ui.get("prefill", {}), f"{where}.ui.prefill", state_ids)
    if not schema_problems:
        yield from _ui_errors(ui, schema, f"{where}.ui")
        if "timeout" in state:
            yield from _timeout_errors(state["timeout"]["input"], schema, f"{where}.timeout.input")


def _object_schema_errors(schema: Mapping[str, Any], where: str) -> list[SpecError]:
    """An input schema must be valid 2020-12, describe an object (inputData and Update Run's
    input are JSON objects) and be renderable as a form (`flowspec.renderable`)."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        inner = location((where, *error.absolute_path))
        return [SpecError(inner, f"is not a valid JSON Schema: {error.message}")]
    if schema.get("type") != "object":
        return [SpecError(f"{where}.type", 'must be "object": the input is a JSON object')]
    # Staff answer through a generated form, so what it cannot render is refused here, at
    # publication, rather than when a reviewer opens an item.
    return list(_reference_problems(schema, where)) or renderable.problems(schema, where)


def _reference_problems(schema: Mapping[str, Any], where: str) -> Iterator[SpecError]:
    """A template carries its whole schema: only `$ref`s within it (`#/...`) that resolve."""
    resolver = Registry().with_resource(_ROOT_URI, DRAFT202012.create_resource(schema))
    for here, ref in _refs(schema, where):
        if not ref.startswith("#"):
            yield SpecError(here, f"{ref!r}: only references within the schema (#/...) are allowed")
            continue
        try:
            resolver.resolver(_ROOT_URI).lookup(ref)
        except Unresolvable:
            yield SpecError(here, f"{ref!r} does not resolve within the schema")


_ROOT_URI = "urn:flowspec:input"


def _refs(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(location, reference) for every `$ref` string in a schema."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield f"{where}.$ref", item
            else:
                yield from _refs(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _refs(item, f"{where}[{index}]")


def _ui_errors(ui: Mapping[str, Any], schema: Mapping[str, Any], where: str) -> Iterator[SpecError]:
    """The form can only arrange, explain and prefill fields that the input schema declares,
    at its top level or in a conditional branch (a field shown only while its condition holds)."""
    fields = declared_properties(schema)
    named = [(f"{where}.order[{i}]", name) for i, name in enumerate(ui.get("order", []))]
    named += [(f"{where}.fields.{name}", name) for name in ui.get("fields", {})]
    named += [(f"{where}.prefill.{name}", name) for name in ui.get("prefill", {})]
    for s, section in enumerate(ui.get("sections", [])):
        named += [
            (f"{where}.sections[{s}].fields[{i}]", n) for i, n in enumerate(section["fields"])
        ]
    for here, name in named:
        if name not in fields:
            yield SpecError(here, f"{name!r} is not a field of the input schema's properties")
    for name, options in ui.get("fields", {}).items():
        if name in fields and "widget" in options:
            yield from _widget_errors(options["widget"], fields[name], f"{where}.fields.{name}")


def declared_properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Every property an object schema may show or carry: its own `properties`, then those its
    `allOf`/`anyOf`/`oneOf` branches, `then`/`else` and `dependentSchemas` add (an answer holds
    the fields of the branch that held). The first declaration wins."""
    found: dict[str, Any] = {}
    parts: list[Any] = [schema]
    while parts:
        part = parts.pop(0)
        if not isinstance(part, Mapping):
            continue
        properties = part.get("properties")
        for name, sub in properties.items() if isinstance(properties, Mapping) else ():
            found.setdefault(name, sub)
        for keyword in ("allOf", "anyOf", "oneOf"):
            branches = part.get(keyword)
            parts += branches if isinstance(branches, list) else []
        parts += [part[key] for key in ("then", "else") if key in part]
        dependent = part.get("dependentSchemas")
        parts += list(dependent.values()) if isinstance(dependent, Mapping) else []
    return found


def document_version(document: Mapping[str, Any]) -> int | None:
    """A document's `metadata.version` as a number; the language also allows labels like
    "2024-06", which name no number."""
    metadata = document.get("metadata")
    value = metadata.get("version") if isinstance(metadata, Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _widget_errors(widget: str, field: Any, where: str) -> Iterator[SpecError]:
    """Choice widgets need the options listed in the schema, or there is nothing to show."""
    if not isinstance(field, Mapping):
        return
    if widget in ("select", "radio") and "enum" not in field and "oneOf" not in field:
        yield SpecError(f"{where}.widget", f"{widget} needs the field to list its options (enum)")
    items = field.get("items")
    if widget == "checkboxes" and not (
        field.get("type") == "array" and isinstance(items, Mapping) and "enum" in items
    ):
        yield SpecError(f"{where}.widget", "checkboxes needs an array field whose items have enum")


def _timeout_errors(
    value: Mapping[str, Any], schema: Mapping[str, Any], where: str
) -> Iterator[SpecError]:
    """The timeout's input is applied as if a person had sent it, so it must be valid input."""
    for error in input_validator(schema).iter_errors(value):
        yield SpecError(location((where, *error.absolute_path)), error.message)
