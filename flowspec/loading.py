"""Reading a template's text and checking it against the JSON Schema for template documents."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError

from flowspec.errors import SpecError, TemplateInvalid

_JSON_SCALARS = (str, int, float, bool, type(None))


class _TemplateLoader(yaml.SafeLoader):
    """Safe YAML that stays JSON: no timestamps, no duplicate keys.

    YAML 1.1 turns `2024-01-31` into a `date`, which no JSON Schema `type` accepts and which the
    engine could not store; a template author means the string. A duplicated key silently keeps
    the last value in PyYAML, which hides typos, so it is an error here.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<` merges may legitimately be overridden by later keys
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            if isinstance(key, str):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()  # type: ignore[no-untyped-call]
        if node is not None:
            _refuse_expansion(node)
        return node


# What a template may grow to once YAML aliases (`*name`) are written out in full, in characters
# of its scalars plus one per node. An alias repeats what its anchor holds, so a few hundred
# bytes that alias aliases ("billion laughs") expand to megabytes: 464 bytes became 5.8 MB of
# JSON that every check walks and every version stores. The demo templates are a few thousand.
EXPANDED_MAX = 1_000_000


def _refuse_expansion(root: yaml.Node) -> None:
    """TemplateInvalid when the document, aliases written out, exceeds EXPANDED_MAX, or when an
    alias refers to a node that contains it (a document that never ends).

    Sizes are counted per node and reused, so an alias repeated a billion times costs one
    count: the check itself cannot be made to take long.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise TemplateInvalid(
                [SpecError("document", "a YAML alias refers to the node that contains it")]
            )
        open_nodes.add(key)
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(key_node) + size(value) for key_node, value in node.value)
        else:
            total = 1 + len(str(node.value))
        open_nodes.discard(key)
        sizes[key] = min(total, EXPANDED_MAX + 1)  # no need to count past the limit
        return sizes[key]

    if size(root) > EXPANDED_MAX:
        raise TemplateInvalid(
            [
                SpecError(
                    "document",
                    f"the document would be larger than {EXPANDED_MAX:,} characters with its "
                    "YAML aliases (*name) written out; write the repeated parts out, or "
                    "repeat less",
                )
            ]
        )


def parse_text(source: str | bytes) -> object:
    """The document in `source`, YAML or JSON; TemplateInvalid at location "document", with a
    line number, when the text does not parse.

    JSON is tried first when the text looks like an object, because PyYAML refuses the tabs that
    JSON allows as indentation. A duplicate key makes the JSON attempt fail, so YAML reports it.
    """
    json_error: json.JSONDecodeError | None = None
    if source.lstrip()[:1] in ("{", b"{"):
        try:
            return json.loads(source, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as error:
            json_error = error
        except ValueError:
            pass
    try:
        return yaml.load(source, Loader=_TemplateLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        if json_error is not None:
            where = f"line {json_error.lineno}, column {json_error.colno}"
            raise TemplateInvalid([SpecError("document", f"{where}: {json_error.msg}")]) from None
        raise TemplateInvalid([SpecError("document", _yaml_problem(error))]) from error


def _yaml_problem(error: yaml.YAMLError) -> str:
    if not isinstance(error, yaml.MarkedYAMLError):
        return f"not valid YAML: {error}"
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return where + (error.problem or error.context or "not valid YAML")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def location(parts: Iterable[str | int]) -> str:
    """`states.discover.catch[0].next` from ("states", "discover", "catch", 0, "next")."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "document"


def non_json_errors(value: object, path: tuple[str | int, ...] = ()) -> Iterator[SpecError]:
    """Values that JSON cannot carry (non-string keys, dates, sets...): a template is JSON data."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                yield SpecError(location(path), f"key {key!r} must be a string")
            else:
                yield from non_json_errors(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from non_json_errors(item, (*path, index))
    elif not isinstance(value, _JSON_SCALARS):
        yield SpecError(location(path), f"is not a JSON value ({type(value).__name__})")


@functools.cache
def document_validator() -> Draft202012Validator:
    """The validator for template documents, built once from the packaged schema file."""
    text = resources.files("flowspec").joinpath("template.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def schema_errors(document: object) -> list[SpecError]:
    """Every way `document` fails the JSON Schema for template documents, in document terms."""
    return [
        spec_error
        for error in document_validator().iter_errors(document)
        for spec_error in _translate(error)
    ]


def _translate(error: ValidationError) -> Iterator[SpecError]:
    """One jsonschema error as SpecErrors that name the key at fault in plain words."""
    path = tuple(error.absolute_path)
    instance, expected = error.instance, error.validator_value
    if error.validator == "required":
        missing = [key for key in expected if isinstance(instance, dict) and key not in instance]
        for key in missing:
            yield SpecError(location((*path, key)), "is required")
    elif error.validator == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        for key in instance:
            if key not in error.schema.get("properties", {}):
                yield SpecError(location((*path, key)), f"is not a known key (known: {allowed})")
    elif "propertyNames" in error.absolute_schema_path:
        yield SpecError(
            location((*path, instance)),
            "is not a valid state id: use only letters, digits, '_' and '-'",
        )
    else:
        yield SpecError(location(path), _message(error))


def _message(error: ValidationError) -> str:
    """jsonschema's messages repeat the instance and read like Python; these read like the doc."""
    expected = error.validator_value
    match error.validator:
        case "type":
            types = [expected] if isinstance(expected, str) else expected
            return "must be " + " or ".join(_TYPE_WORDS.get(name, name) for name in types)
        case "enum":
            return "must be one of " + ", ".join(map(str, expected))
        case "const":
            return f"must be {json.dumps(expected)}"
        case "minimum":
            return f"must be at least {expected}"
        case "maximum":
            return f"must be at most {expected}"
        case "minItems" | "minLength" | "minProperties" if expected == 1:
            return "must not be empty"
        case "minItems":
            return f"must have at least {expected} items"
        case "uniqueItems":
            return "must not repeat an item"
    return error.message


_TYPE_WORDS = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}
