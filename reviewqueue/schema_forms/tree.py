"""The tree behind a schema form: nodes built from a schema's effective parts.

Conditionals are applied to the answer as it stands: each object is built from its *effective*
schema (its `allOf`, the `then` or `else` its `if` picks, the `dependentSchemas` and
`dependentRequired` of the properties answered, the `oneOf` variant its discriminator chose),
recomputed from the values typed so far until it settles.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from django import forms
from django.core.exceptions import ValidationError

import flowspec
from flowspec.renderable import Shape, Unrenderable, discriminator_of, resolve, shape
from reviewqueue.schema_forms.fields import (
    EMPTY,
    SIGNATURE,
    CheckboxField,
    ChoiceField,
    Choices,
    FormattedField,
    IntegerField,
    JsonField,
    MultiChoiceField,
    NumberField,
    SignatureField,
    TextField,
    YesNoField,
    field_name,
    html_id,
    humanize,
)
from reviewqueue.schema_forms.labels import path_label, schema_at

if TYPE_CHECKING:
    from reviewqueue.schema_forms.form import SchemaForm

MAX_ROWS: Final = 100  # rows of an array without maxItems; a bound on what one request can build
CONDITIONAL_KEYS: Final = frozenset(
    {"if", "then", "else", "allOf", "dependentRequired", "dependentSchemas"}
)
ROWS: Final = "~rows"
# A string that may be longer than this (or has no maxLength) is free text: a textarea.
FREE_TEXT_LENGTH: Final = 200

# Nodes


@dataclass(eq=False)
class Node:
    """One part of the form: a field, a fieldset of an object, repeatable rows, a fixed value."""

    kind: str
    name: str
    key: str | int | None
    label: str
    required: bool
    help: str = ""
    nullable: bool = False
    # The fieldset to re-render when this field changes (it controls a conditional there).
    controls: str | None = None

    form: Any = None  # the SchemaForm, once it exists (templates read errors through it)

    @property
    def dom_id(self) -> str:
        return html_id(self.name)

    @property
    def part_vals(self) -> str:
        """hx-vals for a request that re-renders this node."""
        return json.dumps({"~part": self.name})

    @property
    def errors(self) -> Any:
        """Errors of the whole group (an object's or an array's), not of one field."""
        return self.form.node_errors(self.name) if self.form is not None else None

    def value(self, get: Callable[[str], Any]) -> Any:
        raise NotImplementedError

    def walk(self) -> Iterator[Node]:
        yield self


@dataclass(eq=False)
class FieldNode(Node):
    field: forms.Field | None = None
    initial: Any = EMPTY
    bound_field: Any = None  # the BoundField, once the form exists
    autofocus: bool = False

    def value(self, get: Callable[[str], Any]) -> Any:
        value = get(self.name)
        if value is EMPTY and self.nullable:
            return None
        return value


@dataclass(eq=False)
class ConstNode(Node):
    const: Any = None

    @property
    def shown(self) -> str:
        return self.const if isinstance(self.const, str) else json.dumps(self.const)

    def value(self, get: Callable[[str], Any]) -> Any:
        return self.const if self.required else EMPTY


@dataclass
class Section:
    title: str
    children: list[Node]


@dataclass(eq=False)
class ObjectNode(Node):
    children: list[Node] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    row_of: ArrayNode | None = None

    def value(self, get: Callable[[str], Any]) -> Any:
        answer = {}
        for child in self.children:
            value = child.value(get)
            if value is not EMPTY:
                answer[child.key] = value
        if answer or self.required or self.row_of is not None:
            return answer
        return None if self.nullable else EMPTY

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(eq=False)
class ArrayNode(Node):
    rows: list[Node] = field(default_factory=list)
    min_items: int = 0
    max_items: int = MAX_ROWS

    @property
    def rows_name(self) -> str:
        return self.name + ROWS

    @property
    def can_add(self) -> bool:
        return len(self.rows) < self.max_items

    @property
    def can_remove(self) -> bool:
        return len(self.rows) > self.min_items

    def value(self, get: Callable[[str], Any]) -> Any:
        items = [row.value(get) for row in self.rows]
        if not items and not self.required:
            return None if self.nullable else EMPTY
        return [None if item is EMPTY else item for item in items]

    def walk(self) -> Iterator[Node]:
        yield self
        for row in self.rows:
            yield from row.walk()


# Effective schemas: conditionals applied to the answer as it stands


def _merge(into: dict[str, Any], part: Mapping[str, Any]) -> None:
    """Add `part`'s constraints to `into` (an allOf of the two, as far as rendering goes)."""
    for key, value in part.items():
        if key == "required":
            into["required"] = list(dict.fromkeys([*into.get("required", []), *value]))
        elif key == "properties":
            props = into.setdefault("properties", {})
            into["properties"] = props = dict(props)
            for name, sub in value.items():
                if name in props and isinstance(props[name], Mapping) and isinstance(sub, Mapping):
                    merged = dict(props[name])
                    _merge(merged, sub)
                    props[name] = merged
                else:
                    props.setdefault(name, sub)
        elif key == "allOf":
            into["allOf"] = [*into.get("allOf", []), *value]
        else:
            into.setdefault(key, value)


class _Effective:
    """Computes an object's effective schema for a value; one per form (validators cached)."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.validator = flowspec.input_validator(root)

    def holds(self, schema: Any, value: Any) -> bool:
        return bool(self.validator.evolve(schema=schema).is_valid(value))

    def of(self, schema: Mapping[str, Any], value: Any) -> dict[str, Any]:
        value = value if isinstance(value, dict) else {}
        tag = discriminator_of(schema)
        skip = CONDITIONAL_KEYS | ({"oneOf"} if tag is not None else set())
        out: dict[str, Any] = {k: v for k, v in schema.items() if k not in skip}

        def add(part: Any) -> None:
            part = resolve(part, self.root)
            if isinstance(part, Mapping):
                _merge(out, self.of(part, value))

        for part in schema.get("allOf", []):
            add(part)
        if "if" in schema:
            branch = schema.get("then") if self.holds(schema["if"], value) else schema.get("else")
            if branch is not None:
                add(branch)
        for name, names in schema.get("dependentRequired", {}).items():
            if name in value:
                _merge(out, {"required": names})
        for name, part in schema.get("dependentSchemas", {}).items():
            if name in value:
                add(part)
        if tag is not None:
            variants = schema["oneOf"]
            options = []
            for variant in variants:
                const = variant["properties"][tag]["const"]
                title = variant.get("title") or variant["properties"][tag].get("title")
                options.append({"const": const, "title": title or str(const)})
            _merge(out, {"properties": {tag: {"oneOf": options}}})
            if all(tag in v.get("required", []) for v in variants):
                _merge(out, {"required": [tag]})
            chosen = [
                v for v in variants if tag in value and v["properties"][tag]["const"] == value[tag]
            ]
            if chosen:
                variant = {
                    **chosen[0],
                    "properties": {
                        k: v for k, v in chosen[0].get("properties", {}).items() if k != tag
                    },
                }
                add(variant)
        return out


# Building the tree


@dataclass(frozen=True)
class FormSpec:
    """What a form is made of: a callback state's (or a template's Start Run) schema and hints."""

    schema: dict[str, Any]
    ui: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    instructions: str = ""
    context_paths: tuple[str, ...] = ()
    # The same paths in words, from the template's own titles (`Patient › First name`).
    context_labels: tuple[str, ...] = ()
    # The schema of each context value where the template's input describes it (enum titles).
    context_schemas: tuple[Any, ...] = ()

    @classmethod
    def for_state(cls, document: Mapping[str, Any], state_id: str) -> FormSpec | None:
        """The form of a callback state of a template document, the Start Run form for
        `START`, or None. It reads the stored document rather than `flowspec.Template`, so that
        a version stored before a rule was added still shows its forms."""
        if state_id == START:
            name = document.get("metadata", {}).get("name", "")
            return cls(schema=document.get("input", {}), title=f"Start {name}".strip())
        state = document.get("states", {}).get(state_id)
        if not isinstance(state, Mapping) or state.get("type") != "callback":
            return None
        ui = state.get("ui", {})
        context = [path for path in ui.get("context", []) if isinstance(path, str)]
        return cls(
            schema=state.get("input", {}),
            ui=ui,
            title=state.get("title", state_id),
            instructions=state.get("instructions", ""),
            context_paths=tuple(context),
            context_labels=tuple(path_label(document, path) for path in context),
            context_schemas=tuple(schema_at(document, path) for path in context),
        )

    @staticmethod
    def state_ids(document: Mapping[str, Any]) -> list[str]:
        """`START` and every callback state, in document order: what a version can preview."""
        states = document.get("states", {})
        return [START, *(sid for sid, s in states.items() if s.get("type") == "callback")]


START: Final = "$input"
"""The state id under which a template's own input schema (the Start Run form) is addressed."""


class _Builder:
    def __init__(self, form: SchemaForm, spec: FormSpec, initial: Any) -> None:
        self.form = form
        self.spec = spec
        self.root = spec.schema
        self.data = form.data if form.is_bound else None
        self.initial = initial
        self.effective = _Effective(spec.schema)
        self.focus: str | None = None
        self.signer: str | None = None  # the signed-in person's name, for signature fields

    # Reading what the user has typed so far, leniently, to decide the conditionals.

    def initial_at(self, path: tuple[str | int, ...]) -> Any:
        value = self.initial
        for part in path:
            if isinstance(part, int):
                value = value[part] if isinstance(value, list) and part < len(value) else EMPTY
            else:
                value = value.get(part, EMPTY) if isinstance(value, dict) else EMPTY
            if value is EMPTY:
                break
        return value

    def peek(self, node: Node) -> Any:
        fields = {n.name: n for n in node.walk() if isinstance(n, FieldNode)}

        def get(name: str) -> Any:
            found = fields[name]
            assert found.field is not None
            if self.data is None or found.field.disabled:
                return found.initial
            raw = found.field.widget.value_from_datadict(self.data, self.form.files, name)
            try:
                return found.field.clean(raw)
            except ValidationError:
                return EMPTY

        return node.value(get)

    # Nodes

    def build(self) -> ObjectNode:
        node = self.node(self.root, (), required=True, chain=True, label=self.spec.title, ui={})
        assert isinstance(node, ObjectNode)
        self.arrange(node)
        return node

    def node(
        self,
        schema: Any,
        path: tuple[str | int, ...],
        *,
        required: bool,
        chain: bool,
        label: str,
        ui: Mapping[str, Any],
    ) -> Node:
        """One node; `chain` says that it is surely in the answer (required all the way up), so
        that Django may already insist on it: a required field of an optional group is only
        required once the group is filled in at all, which the schema check decides."""
        name = field_name(path)
        key = path[-1] if path else None
        schema = resolve(schema, self.root)
        try:
            node_shape = shape(schema, self.root)
        except Unrenderable:
            node_shape = Shape("any")
        schema = schema if isinstance(schema, Mapping) else {}
        label = str(schema.get("title") or label)
        help_text = " ".join(str(t) for t in (ui.get("help"), schema.get("description")) if t)
        common: dict[str, Any] = {
            "name": name,
            "key": key,
            "label": label,
            "required": required,
            "help": help_text,
            "nullable": node_shape.nullable,
        }
        if node_shape.kind == "object":
            return self.object_node(schema, path, common, chain=chain and required)
        if node_shape.kind == "array" and node_shape.item and node_shape.item.kind != "choice":
            return self.array_node(schema, path, common)
        if node_shape.kind == "const":
            return ConstNode(kind="const", const=schema.get("const"), **common)
        return self.field_node(schema, node_shape, path, ui, common, chain=chain)

    def object_node(
        self,
        schema: Mapping[str, Any],
        path: tuple[str | int, ...],
        common: dict[str, Any],
        *,
        chain: bool,
    ) -> ObjectNode:
        node = ObjectNode(kind="object", **common)
        value = self.initial_at(path) if self.data is None else {}
        ui_fields = self.spec.ui.get("fields", {}) if not path else {}
        for _ in range(8):  # conditionals may enable fields that enable others; settle
            effective = self.effective.of(schema, value)
            required = set(effective.get("required", []))
            node.children = [
                self.node(
                    sub,
                    (*path, child),
                    required=child in required,
                    chain=chain,
                    label=humanize(child),
                    ui=ui_fields.get(child, {}),
                )
                for child, sub in effective.get("properties", {}).items()
                if sub is not False
            ]
            if self.data is None:
                break
            new_value = self.peek(node)
            new_value = new_value if isinstance(new_value, dict) else {}
            if new_value == value:
                break
            value = new_value
        for child in self._controlling(schema):
            for descendant in (c for c in node.children if c.key == child):
                for leaf in descendant.walk():
                    leaf.controls = node.name
        return node

    def _controlling(self, schema: Mapping[str, Any]) -> set[str]:
        """The properties whose value switches a conditional of this object."""
        names: set[str] = set()
        stack = [schema]
        while stack:
            part = resolve(stack.pop(), self.root)
            if not isinstance(part, Mapping):
                continue
            condition = part.get("if")
            if isinstance(condition, Mapping):
                names |= set(condition.get("properties", {})) | set(condition.get("required", []))
            names |= set(part.get("dependentRequired", {})) | set(part.get("dependentSchemas", {}))
            if (name := discriminator_of(part)) is not None:
                names.add(name)
            stack += list(part.get("allOf", []))
            stack += [part[k] for k in ("then", "else") if k in part]
            stack += list(part.get("dependentSchemas", {}).values())
        return names

    def array_node(
        self, schema: Mapping[str, Any], path: tuple[str | int, ...], common: dict[str, Any]
    ) -> ArrayNode:
        node = ArrayNode(
            kind="array",
            min_items=int(schema.get("minItems", 0)),
            max_items=min(int(schema.get("maxItems", MAX_ROWS)), MAX_ROWS),
            **common,
        )
        if self.data is None:
            initial = self.initial_at(path)
            count = len(initial) if isinstance(initial, list) else node.min_items
        else:
            try:
                count = int(self.data.get(node.rows_name, 0))
            except ValueError:
                count = 0
        count = max(0, min(count, node.max_items))
        items = schema.get("items", True)
        for index in range(count):
            row = self.node(
                items,
                (*path, index),
                required=True,
                chain=True,  # a row that was added is in the answer
                label=f"{node.label} {index + 1}",
                ui={},
            )
            if isinstance(row, ObjectNode):
                row.row_of = node
            base = items.get("title") if isinstance(items, Mapping) else None
            row.label = f"{base or node.label} {index + 1}"
            if isinstance(row, FieldNode) and row.field is not None:
                row.field.label = row.label
            node.rows.append(row)
        return node

    def field_node(
        self,
        schema: Mapping[str, Any],
        node_shape: Shape,
        path: tuple[str | int, ...],
        ui: Mapping[str, Any],
        common: dict[str, Any],
        *,
        chain: bool,
    ) -> FieldNode:
        present = chain and common["required"]
        required = present and not node_shape.nullable
        widget_hint = ui.get("widget")
        attrs: dict[str, Any] = {}
        placeholder = ui.get("placeholder") or (
            f"e.g. {schema['examples'][0]}"
            if schema.get("examples") and isinstance(schema["examples"], list)
            else None
        )
        if placeholder:
            attrs["placeholder"] = placeholder
        django_field: forms.Field
        match node_shape.kind:
            case "choice":
                choices = Choices(node_shape.options)
                radio = widget_hint == "radio"
                django_field = ChoiceField(
                    choices=choices,
                    blank=None if radio and required else "Not answered" if radio else "—",
                    required=required,
                    widget=forms.RadioSelect if radio else forms.Select,
                )
            case "array":
                assert node_shape.item is not None
                choices = Choices(node_shape.item.options)
                multi = (
                    forms.SelectMultiple
                    if widget_hint == "select"
                    else forms.CheckboxSelectMultiple
                )
                django_field = MultiChoiceField(
                    choices=choices, required=False, widget=multi, empty=[] if present else EMPTY
                )
            # A checkbox says only true or false: a nullable boolean needs "Not answered" too.
            case "boolean" if (
                (present or (chain and "default" in schema)) and not node_shape.nullable
            ) or schema.get("const") is True:
                django_field = CheckboxField(required=schema.get("const") is True)
                if schema.get("const") is True:
                    django_field.error_messages["required"] = "Tick this box to confirm."
            case "boolean":
                django_field = YesNoField(required=False, widget=forms.RadioSelect)
            case "integer" | "number":
                number_attrs = {
                    "step": str(
                        schema.get("multipleOf", 1 if node_shape.kind == "integer" else "any")
                    )
                }
                for keyword, attr in (("minimum", "min"), ("maximum", "max")):
                    if keyword in schema:
                        number_attrs[attr] = str(schema[keyword])
                cls = IntegerField if node_shape.kind == "integer" else NumberField
                django_field = cls(
                    required=required,
                    widget=forms.NumberInput(attrs={**attrs, **number_attrs}),
                )
            case "string" if schema.get(SIGNATURE) is True:
                # One line, whatever its length: a name, filled by the server (SignatureField).
                django_field = SignatureField(
                    signer=self.signer, required=required, widget=forms.TextInput(attrs=attrs)
                )
                signed = "Your name as you are signed in; it cannot be changed here."
                common["help"] = " ".join(filter(None, [common["help"], signed]))
            case "string" if schema.get("format") in FormattedField.MESSAGES:
                fmt = schema["format"]
                input_type = {
                    "date": "date",
                    "date-time": "datetime-local",
                    "time": "time",
                    "email": "email",
                    "uri": "url",
                    "uuid": "text",
                }[fmt]
                if fmt in ("date-time", "time"):
                    attrs["step"] = "1"
                    common["label"] = f"{common['label']} (UTC)"
                django_field = FormattedField(
                    fmt=fmt,
                    required=required,
                    widget=forms.TextInput(attrs={**attrs, "type": input_type}),
                )
            case "string":
                if "maxLength" in schema:
                    attrs["maxlength"] = str(schema["maxLength"])
                textarea = widget_hint == "textarea" or (
                    widget_hint != "text" and self._free_text(schema, path)
                )
                widget = (
                    forms.Textarea(attrs={**attrs, "rows": 4})
                    if textarea
                    else forms.TextInput(attrs=attrs)
                )
                django_field = TextField(required=required, widget=widget)
            case _:
                django_field = JsonField(
                    required=required,
                    widget=forms.Textarea(attrs={**attrs, "rows": 4, "spellcheck": "false"}),
                )
                common["help"] = " ".join(filter(None, [common["help"], "Type the value as JSON."]))
        django_field.label = common["label"]
        django_field.help_text = common["help"]
        if schema.get("readOnly") or ui.get("readOnly"):
            django_field.disabled = True
        node = FieldNode(kind="field", field=django_field, **common)
        initial = self.initial_at(path)
        if isinstance(django_field, SignatureField) and django_field.signer is not None:
            # Never a default, a prefill or a draft's value: who is signed in now.
            initial = django_field.signer
        node.initial = initial
        if initial is not EMPTY:
            display = getattr(django_field, "display", None)
            blank = initial is None and not isinstance(django_field, JsonField)
            shown = "" if blank else display(initial) if display else initial
            self.form.initial[node.name] = shown
        if self.focus == node.name:
            node.autofocus = True
        return node

    def _free_text(self, schema: Mapping[str, Any], path: tuple[str | int, ...]) -> bool:
        """A string that may hold sentences and line breaks, so a textarea: no pattern, no or a
        long maxLength; or one whose value already has a line break (an input would drop it)."""
        if "pattern" not in schema and schema.get("maxLength", FREE_TEXT_LENGTH + 1) > (
            FREE_TEXT_LENGTH
        ):
            return True
        value = self.initial_at(path) if self.data is None else self.data.get(field_name(path))
        return isinstance(value, str) and ("\n" in value or "\r" in value)

    def arrange(self, root: ObjectNode) -> None:
        """`ui.order` and `ui.sections` for the top-level fields; the rest keep schema order."""
        order = list(self.spec.ui.get("order", []))
        rank = {name: i for i, name in enumerate(order)}
        root.children.sort(key=lambda c: rank.get(str(c.key), len(rank)))
        sections = self.spec.ui.get("sections", [])
        if not sections:
            return
        placed: set[str] = set()
        for section in sections:
            names = [n for n in section.get("fields", []) if n not in placed]
            placed.update(names)
            children = [c for c in root.children if c.key in names]
            root.sections.append(Section(str(section.get("title", "")), children))
        rest = [c for c in root.children if c.key not in placed]
        if rest:
            root.sections.append(Section("", rest))
