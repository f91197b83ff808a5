"""Hypothesis strategies for answers to a schema, as the form can express them.

Our own small strategies rather than hypothesis-jsonschema (which pins hypothesis, see
ecosystem.md): they generate only what a form can say. Text is non-empty (an empty field means
"no answer") and has line breaks only where the form shows a textarea, optional groups and lists
hold something, nullable and defaulted booleans are always present, lists of choices are in
option order, numbers with a `multipleOf` are exact multiples of it as written (cents), and the
fields that a conditional adds (`then`, `else`, `allOf`, `dependentSchemas`) may appear too.
"""

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from flowspec.renderable import discriminator_of, resolve, shape
from reviewqueue.schema_forms.tree import FREE_TEXT_LENGTH, _Effective

TEXT = st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r")


def answers(schema: dict) -> st.SearchStrategy[dict]:
    return _value(schema, schema, required=True)


def _value(schema: Any, root: Any, *, required: bool) -> st.SearchStrategy[Any]:
    schema = resolve(schema, root)
    node = shape(schema, root)
    base = _base(schema, node, root, required=required)
    if node.nullable and node.kind not in ("choice",):
        return st.one_of(st.none(), base)
    return base


def _base(schema: dict, node, root: Any, *, required: bool) -> st.SearchStrategy[Any]:
    match node.kind:
        case "choice":
            return st.sampled_from([o.value for o in node.options])
        case "const":
            return st.just(schema.get("const"))
        case "boolean":
            return st.just(True) if schema.get("const") is True else st.booleans()
        case "integer":
            low = schema.get("minimum", schema.get("exclusiveMinimum", -(10**12) - 1) + 1)
            high = schema.get("maximum", schema.get("exclusiveMaximum", 10**12 + 1) - 1)
            ints = st.integers(int(low), int(high))
            step = schema.get("multipleOf")
            return ints.filter(lambda n: n % step == 0) if step else ints
        case "number" if "multipleOf" in schema:
            return _multiples(schema)
        case "number":
            low = schema.get("minimum", schema.get("exclusiveMinimum"))
            high = schema.get("maximum", schema.get("exclusiveMaximum"))
            floats = st.floats(
                min_value=low,
                max_value=high,
                allow_nan=False,
                allow_infinity=False,
                exclude_min="exclusiveMinimum" in schema,
                exclude_max="exclusiveMaximum" in schema,
            )
            ints = st.integers(
                int(low) + 1 if low is not None else -(10**9),
                int(high) - 1 if high is not None else 10**9,
            )
            return st.one_of(ints, floats)
        case "string":
            return _string(schema)
        case "array":
            return _array(schema, node, root, required=required)
        case "object":
            return _object(schema, root, required=required)
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(TEXT, max_size=5),
        lambda inner: (
            st.lists(inner, max_size=2)
            | st.dictionaries(st.text(TEXT, max_size=3), inner, max_size=2)
        ),
        max_leaves=4,
    )


def _multiples(schema: dict) -> st.SearchStrategy[Any]:
    """Whole multiples of `multipleOf` within the bounds, as the float whose text is exact
    (`1234.57`, never the product of binary floats)."""
    step = Decimal(repr(schema["multipleOf"]))
    low = Decimal(repr(schema.get("minimum", schema.get("exclusiveMinimum", -(10**9)))))
    high = Decimal(repr(schema.get("maximum", schema.get("exclusiveMaximum", 10**9))))
    first = int((low / step).to_integral_value(rounding="ROUND_CEILING"))
    last = int((high / step).to_integral_value(rounding="ROUND_FLOOR"))
    if "exclusiveMinimum" in schema and first * step == low:
        first += 1
    if "exclusiveMaximum" in schema and last * step == high:
        last -= 1
    return st.integers(first, last).map(lambda n: float(n * step))


def _string(schema: dict) -> st.SearchStrategy[str]:
    match schema.get("format"):
        case "date":
            return st.dates().map(lambda d: d.isoformat())
        case "date-time":
            return st.datetimes().map(lambda d: d.replace(microsecond=0).isoformat() + "Z")
        case "time":
            return st.times().map(lambda t: t.replace(microsecond=0).isoformat() + "Z")
        case "email":
            return st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.org", fullmatch=True)
        case "uri":
            return st.from_regex(r"https://[a-z]{1,8}\.example/[a-z0-9]{0,6}", fullmatch=True)
        case "uuid":
            return st.uuids().map(str)
    if "pattern" in schema:
        strings = st.from_regex(schema["pattern"], fullmatch=False)
    else:
        strings = st.text(TEXT, min_size=1, max_size=30)
    low, high = schema.get("minLength", 1), schema.get("maxLength", 10**6)
    # A one-line input cannot hold a line break (a browser drops it); free text is a textarea.
    one_line = "pattern" in schema or high <= FREE_TEXT_LENGTH
    return strings.filter(
        lambda s: (
            "\r" not in s
            and "\x00" not in s
            and not (one_line and "\n" in s)
            and max(low, 1) <= len(s) <= high
        )
    )


def _array(schema: dict, node, root: Any, *, required: bool) -> st.SearchStrategy[list]:
    low = max(schema.get("minItems", 0), 0 if required else 1)
    high = min(schema.get("maxItems", 3), 3)
    if node.item.kind == "choice":
        options = [o.value for o in node.item.options]
        return (
            st.lists(st.booleans(), min_size=len(options), max_size=len(options))
            .map(lambda picks: [o for o, p in zip(options, picks, strict=True) if p])
            .filter(lambda chosen: low <= len(chosen) <= schema.get("maxItems", 10**6))
        )
    return st.lists(
        _value(schema.get("items", True), root, required=True),
        min_size=low,
        max_size=max(low, high),
    )


def _object(schema: dict, root: Any, *, required: bool) -> st.SearchStrategy[dict]:
    tag = discriminator_of(schema)
    if tag is not None:
        base = {k: v for k, v in schema.items() if k != "oneOf"}
        return st.sampled_from(schema["oneOf"]).flatmap(
            lambda variant: _object(
                {
                    **base,
                    "properties": {**base.get("properties", {}), **variant.get("properties", {})},
                    "required": [*base.get("required", []), *variant.get("required", [])],
                },
                root,
                required=required,
            )
        )
    props = {**_conditional_properties(schema, root), **schema.get("properties", {})}
    needed = set(schema.get("required", []))
    always, maybe = {}, {}
    for name, sub in props.items():
        if name not in schema.get("properties", {}):
            maybe[name] = _value(sub, root, required=False)  # present while its branch holds
            continue
        sub_resolved = resolve(sub, root)
        sub_shape = shape(sub_resolved, root)
        is_required = name in needed
        present = (
            is_required
            or sub_shape.nullable
            or (sub_shape.kind == "boolean" and "default" in sub_resolved)
        )
        strategy = _value(sub, root, required=is_required)
        (always if present else maybe)[name] = strategy
    result = st.fixed_dictionaries(always, optional=maybe)
    if len(props) > len(schema.get("properties", {})):
        # A field that a conditional adds is in the form only while its condition holds.
        effective = _Effective(root)
        result = result.filter(
            lambda answer: set(answer) <= set(effective.of(schema, answer).get("properties", {}))
        )
    if not required:
        result = result.filter(bool)
    return result


def _conditional_properties(schema: dict, root: Any) -> dict[str, Any]:
    """The properties that an object's conditional parts add (first declaration wins)."""
    found: dict[str, Any] = {}
    parts = list(schema.get("allOf", []))
    parts += [schema[key] for key in ("then", "else") if key in schema]
    parts += list(schema.get("dependentSchemas", {}).values())
    for part in parts:
        part = resolve(part, root)
        if isinstance(part, dict):
            for name, sub in {
                **_conditional_properties(part, root),
                **part.get("properties", {}),
            }.items():
                found.setdefault(name, sub)
    return found
