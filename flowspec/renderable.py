"""What Flowdesk's forms can render: the one definition shared by publication and the form mapper.

Staff never type JSON: every callback's `input` schema (and a template's own `input`, for the
Start Run form) becomes a form. A schema that uses something the form mapper cannot render must be
refused when the template is stored, naming the state and the keyword, never discovered when a
reviewer opens an item. So the rules live here, in the plain library that publication uses, and
`reviewqueue.schema_forms` asks `shape()` how to render each node instead of keeping its own list.

`shape()` classifies one (sub)schema; `problems()` walks a whole input schema the way the mapper
does and reports every node it could not render.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from flowspec.errors import SpecError

# Keywords the mapper understands, by what they do to the form. Anything else from the 2020-12
# vocabulary is in UNSUPPORTED; keys outside the vocabulary (`x-...`) are annotations that
# validators ignore too.
ANNOTATIONS: Final = frozenset(
    {
        "$schema",
        "$id",
        "$anchor",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "default",
        "examples",
        "readOnly",
        "writeOnly",
        "deprecated",
    }
)
RENDERED: Final = frozenset(
    {
        "type",
        "enum",
        "const",
        "format",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "$ref",
        # Conditionals: the fields they add appear and disappear with the controlling field.
        "if",
        "then",
        "else",
        "allOf",
        "dependentRequired",
        "dependentSchemas",
        "oneOf",
        "anyOf",
    }
)
# Checked by the validator on the assembled answer; errors land on the field or the form.
VALIDATED: Final = frozenset(
    {
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "not",
    }
)
SUPPORTED: Final = ANNOTATIONS | RENDERED | VALIDATED

UNSUPPORTED: Final[Mapping[str, str]] = {
    "patternProperties": "a form cannot offer fields whose names follow a pattern",
    "propertyNames": "a form cannot offer fields whose names the user chooses",
    "unevaluatedProperties": "use additionalProperties instead",
    "unevaluatedItems": "use items instead",
    "prefixItems": "a form cannot render positional (tuple) arrays",
    "contains": "a form cannot render an array that must contain a matching item",
    "minContains": "a form cannot render an array that must contain a matching item",
    "maxContains": "a form cannot render an array that must contain a matching item",
    "$dynamicRef": "only plain references within the schema (#/...) are rendered",
    "$dynamicAnchor": "only plain references within the schema (#/...) are rendered",
    "$recursiveRef": "only plain references within the schema (#/...) are rendered",
    "contentEncoding": "a form cannot upload encoded content",
    "contentMediaType": "a form cannot upload encoded content",
    "contentSchema": "a form cannot upload encoded content",
    "dependencies": "a draft-07 keyword that 2020-12 ignores: use dependentRequired",
    "additionalItems": "a draft-07 keyword that 2020-12 ignores: use items",
}

SCALAR_TYPES: Final = ("string", "integer", "number", "boolean")
FORMATS: Final = ("date", "date-time", "time", "email", "uri", "uuid")
Kind = Literal[
    "object", "array", "choice", "string", "integer", "number", "boolean", "const", "any"
]


@dataclass(frozen=True, slots=True)
class Option:
    """One choice of an enum or of a oneOf/anyOf of consts: the JSON value and its label."""

    value: Any
    label: str


@dataclass(frozen=True, slots=True)
class Shape:
    """How one schema node is rendered.

    `kind` decides the widget family; `nullable` that an empty answer means null; `options` the
    choices of a `choice`; `item` the shape of an `array`'s items (a `choice` item makes the array
    a set of checkboxes, anything else makes repeatable rows).
    """

    kind: Kind
    nullable: bool = False
    options: tuple[Option, ...] = ()
    item: Shape | None = None
    discriminator: str | None = None  # an object whose oneOf variants are told apart by it


class Unrenderable(Exception):
    """A node the mapper cannot render; `where` is relative to the node, `keyword` is at fault."""

    def __init__(self, keyword: str, reason: str, where: str = "") -> None:
        self.keyword, self.reason, self.where = keyword, reason, where
        super().__init__(f"{keyword}: {reason}")


def resolve(schema: Any, root: Any) -> Any:
    """`schema` with a local `$ref` followed (chains too); other keys beside `$ref` are kept.

    A reference that does not resolve, or points outside the document, is left as it is: the
    reference checks report those, and `shape` then calls the node unrenderable.
    """
    seen: set[str] = set()
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        if ref in seen or not ref.startswith("#"):
            return schema
        seen.add(ref)
        try:
            target = _lookup(root, ref)
        except Unresolvable:
            return schema
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **rest} if isinstance(target, Mapping) else target
    return schema


def _lookup(root: Any, ref: str) -> Any:
    registry: Registry[Any] = Registry().with_resource(
        "urn:flowspec:form", DRAFT202012.create_resource(root)
    )
    return registry.resolver("urn:flowspec:form").lookup(ref).contents


def options_of(schema: Mapping[str, Any]) -> tuple[Option, ...] | None:
    """The choices of an `enum` or of a `oneOf`/`anyOf` whose branches are all `const`."""
    if "enum" in schema:
        return tuple(Option(value, _label(value)) for value in schema["enum"])
    for keyword in ("oneOf", "anyOf"):
        branches = schema.get(keyword)
        if branches and all(isinstance(b, Mapping) and "const" in b for b in branches):
            return tuple(
                Option(b["const"], str(b.get("title", _label(b["const"])))) for b in branches
            )
    return None


def _label(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def discriminator_of(schema: Mapping[str, Any]) -> str | None:
    """The property whose `const` tells an object's `oneOf` variants apart, if there is one."""
    variants = schema.get("oneOf")
    if not variants or not all(isinstance(v, Mapping) for v in variants):
        return None
    candidates: set[str] | None = None
    for variant in variants:
        props = variant.get("properties", {})
        names = {n for n, p in props.items() if isinstance(p, Mapping) and "const" in p}
        candidates = names if candidates is None else candidates & names
    for name in sorted(candidates or ()):
        values = [v["properties"][name]["const"] for v in variants]
        if len({repr(value) for value in values}) == len(values):
            return name
    return None


def _required_only(branches: Any) -> bool:
    """`anyOf: [{required: [a]}, {required: [b]}]`: a validation-only rule on an object."""
    return all(isinstance(b, Mapping) and set(b) <= {"required"} | ANNOTATIONS for b in branches)


def shape(schema: Any, root: Any) -> Shape:
    """How `schema` (a node of `root`) is rendered; `Unrenderable` names the keyword at fault."""
    schema = resolve(schema, root)
    if schema is True or schema == {}:
        return Shape("any")
    if not isinstance(schema, Mapping):
        raise Unrenderable("schema", "false admits no value, so there is nothing to fill in")
    if "$ref" in schema:
        raise Unrenderable("$ref", f"{schema['$ref']!r} does not resolve within the schema")
    for keyword in schema:
        if keyword in UNSUPPORTED:
            reason = f"not supported by Flowdesk's forms ({UNSUPPORTED[keyword]})"
            raise Unrenderable(keyword, reason)
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    nullable = "null" in types
    concrete = [t for t in types if t != "null"]
    if len(concrete) > 1:
        raise Unrenderable("type", "a form field holds one type of value (besides null)")
    kind = concrete[0] if concrete else None
    options = options_of(schema)
    if options is not None and kind not in ("object", "array"):
        # Only a null among the options makes a choice nullable: `type: [integer, null]` with
        # `enum: [1, 2]` still admits no null, so left blank it is left out, never sent as null.
        return Shape("choice", nullable=any(o.value is None for o in options), options=options)
    for keyword in ("oneOf", "anyOf"):
        if keyword in schema and not _required_only(schema[keyword]):
            if keyword == "oneOf" and (kind == "object" or "properties" in schema):
                name = discriminator_of(schema)
                if name is not None:
                    return Shape("object", nullable=nullable, discriminator=name)
            raise Unrenderable(
                keyword,
                "not supported by Flowdesk's forms (only a list of const choices, or object "
                "variants told apart by a const property)",
            )
    if kind is None and "const" in schema:
        return Shape("const")
    if kind is None:
        if "properties" in schema:
            kind = "object"
        elif "items" in schema:
            kind = "array"
        else:
            return Shape("any", nullable=nullable)
    if kind == "null":
        return Shape("const")
    if kind == "object":
        extra = schema.get("additionalProperties", True)
        if not isinstance(extra, bool):
            raise Unrenderable(
                "additionalProperties",
                "not supported by Flowdesk's forms (a form cannot offer fields the user names)",
            )
        return Shape("object", nullable=nullable)
    if kind == "array":
        items = schema.get("items", True)
        item = shape(items, root)
        if item.kind == "array" and item.item is not None and item.item.kind == "choice":
            raise Unrenderable("items", "a list of lists of choices cannot be rendered")
        return Shape("array", nullable=nullable, item=item)
    if kind == "boolean" and schema.get("const") is True:
        return Shape("boolean", nullable=nullable)
    if "const" in schema:
        return Shape("const")
    return Shape(kind, nullable=nullable)  # type: ignore[arg-type]


def problems(schema: Any, where: str, root: Any = None) -> list[SpecError]:
    """Every node of an input schema that the form mapper could not render, at its location."""
    return list(_walk(schema, where, schema if root is None else root, frozenset()))


def _walk(schema: Any, where: str, root: Any, refs: frozenset[str]) -> Iterator[SpecError]:
    ref = schema.get("$ref") if isinstance(schema, Mapping) else None
    if isinstance(ref, str):
        if ref in refs:
            yield SpecError(f"{where}.$ref", f"{ref!r}: a recursive schema cannot be rendered")
            return
        refs = refs | {ref}
    try:
        node_shape = shape(schema, root)
    except Unrenderable as error:
        yield SpecError(f"{where}.{error.keyword}", error.reason)
        return
    schema = resolve(schema, root)
    if not isinstance(schema, Mapping):
        return
    if node_shape.kind == "array":
        yield from _walk(schema.get("items", True), f"{where}.items", root, refs)
    if node_shape.kind != "object":
        return
    for name, prop in schema.get("properties", {}).items():
        yield from _walk(prop, f"{where}.properties.{name}", root, refs)
    # Conditional parts add or change fields of this same object.
    parts = [(f"{where}.allOf[{i}]", s) for i, s in enumerate(schema.get("allOf", []))]
    parts += [(f"{where}.{key}", schema[key]) for key in ("then", "else") if key in schema]
    parts += [
        (f"{where}.dependentSchemas.{name}", s)
        for name, s in schema.get("dependentSchemas", {}).items()
    ]
    if node_shape.discriminator is not None:
        parts += [(f"{where}.oneOf[{i}]", s) for i, s in enumerate(schema["oneOf"])]
    for here, part in parts:
        if isinstance(part, Mapping) and part:
            yield from _walk({"type": "object", **part}, here, root, refs)
