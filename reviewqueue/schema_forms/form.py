"""`SchemaForm`: validation in plain words, row actions, and the form for a request."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from django import forms
from django.forms.utils import ErrorDict, ErrorList
from django.http import QueryDict
from jsonschema import ValidationError as SchemaError

import flowspec
from flowspec.renderable import discriminator_of, resolve
from reviewqueue import present
from reviewqueue.schema_forms.fields import (
    EMPTY,
    SIGNATURE,
    FormattedField,
    SignatureField,
    field_name,
    html_id,
    humanize,
)
from reviewqueue.schema_forms.tree import (
    ROWS,
    ArrayNode,
    FieldNode,
    FormSpec,
    Node,
    _Builder,
)

ACTION: Final = "~action"
PART: Final = "~part"
# Sent with every field of a rendered form: a post without it lost its fields on the way (a
# disabled fieldset, a broken client) and must never be saved or submitted as an empty answer.
FIELDS: Final = "~form"
# Which reading of the page's fields a post carries ("<page load>:<count>"), added by
# schema_forms.js: a re-render and an autosave travel side by side, and the older reading must
# not be kept just because it arrived last. Counted per page load, so no clock is compared.
READING: Final = "~reading"
_READING = re.compile(r"([A-Za-z0-9-]{1,40}):(\d{1,15})")


def reading_of(data: Mapping[str, Any]) -> tuple[str, int] | None:
    """The (page load, count) a post was read at, or None (no script, or not ours)."""
    match = _READING.fullmatch(str(data.get(READING) or ""))
    return (match[1], int(match[2])) if match else None


# The form

# One part of an error's field as Flows names it: a key, or an index in brackets.
_PARAM_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class SchemaForm(forms.Form):
    """A Django form for one input schema; `.answer` is the JSON to send once `is_valid()`.

    `initial` is a JSON instance (defaults, prefill or a draft) shown in an unbound form; in a
    bound one it supplies read-only fields. `partial_url`, when given, is where the htmx
    attributes post to re-render a fieldset (conditionals, rows added and removed). `signer` is
    the signed-in person's name, which signature fields (`x-signature`) carry whatever is posted.
    """

    template_name = "schema_forms/form.html"

    def __init__(
        self,
        spec: FormSpec,
        *,
        data: QueryDict | Mapping[str, Any] | None = None,
        initial: Any = None,
        partial_url: str | None = None,
        focus: str | None = None,
        context_values: list[Any] | None = None,
        signer: str | None = None,
    ) -> None:
        super().__init__(data=data, auto_id="id_%s")
        self.spec = spec
        self.partial_url = partial_url
        self.answer: dict[str, Any] | None = None
        builder = _Builder(self, spec, initial if initial is not None else {})
        builder.focus = focus
        builder.signer = signer
        self.root = builder.build()
        self.nodes = {node.name: node for node in self.root.walk()}
        self._sign(signer)
        if focus in self.nodes and not isinstance(self.nodes[focus], FieldNode):
            # An added row: focus its first field, so keyboard users carry on typing there.
            first = next((n for n in self.nodes[focus].walk() if isinstance(n, FieldNode)), None)
            focus = first.name if first else None
        for node in self.nodes.values():
            if isinstance(node, FieldNode) and node.field is not None:
                self.fields[node.name] = node.field
                node.autofocus = node.autofocus or node.name == focus
        for node in self.nodes.values():
            node.form = self
            if isinstance(node, FieldNode):
                node.bound_field = self[node.name]
                self._hx_attrs(node)
        values = context_values if context_values is not None else [None] * len(spec.context_paths)
        labels = spec.context_labels or spec.context_paths
        schemas = spec.context_schemas or (None,) * len(spec.context_paths)
        # (label, value for people, path): values go through the one presenter (money, titles
        # of codes, dates); the path is kept for tests and authors, never shown to staff.
        self.context_items = [
            (label, present.value_shown(value, schema), path)
            for label, value, path, schema in zip(
                labels, values, spec.context_paths, schemas, strict=False
            )
        ]

    def _sign(self, signer: str | None) -> None:
        """Put the signer's name in the posted data of every signature field, over whatever was
        posted: a draft keeps ``data`` as it is, so a name typed over is not even stored."""
        names = [
            node.name
            for node in self.nodes.values()
            if isinstance(node, FieldNode) and isinstance(node.field, SignatureField)
        ]
        if not names or not self.is_bound or signer is None:
            return
        data = self.data.copy() if isinstance(self.data, QueryDict) else QueryDict(mutable=True)
        if not isinstance(self.data, QueryDict):
            for key, value in self.data.items():
                data.setlist(key, value if isinstance(value, list) else [value])
        for name in names:
            data.setlist(name, [signer])
        self.data = data

    def _hx_attrs(self, node: FieldNode) -> None:
        assert node.field is not None
        attrs = node.field.widget.attrs
        if node.autofocus:
            attrs["autofocus"] = True
        if node.controls is None or self.partial_url is None:
            return
        attrs.update(
            {
                "hx-post": self.partial_url,
                "hx-trigger": "change",
                "hx-target": "#" + html_id(node.controls),
                "hx-swap": "outerHTML",
                "hx-vals": json.dumps({PART: node.controls}),
                # Fields stay enabled while the part re-renders (a disabled field is left out of
                # a submit or autosave made meanwhile); schema_forms.js puts back what was typed
                # since. A submit replaces a re-render in flight; a later change waits its turn.
                "hx-sync": "closest form:queue last",
            }
        )

    def suppress_errors(self) -> None:
        """Render a bound form as typed, without validating it (a conditional or a row changed)."""
        self._errors = ErrorDict()
        self.cleaned_data = {}

    def node_errors(self, name: str) -> ErrorList | None:
        if self._errors is None:
            return None
        errors = self._errors.get(name)
        return errors if name not in self.fields else None

    def error_summary(self) -> list[tuple[str, str, str]]:
        """(link target, label, message) for every error, in form order, for the summary that
        tells a screen-reader user what to fix and takes them there."""
        if not self.is_bound or not self.errors:
            return []
        summary = [("", "", str(message)) for message in self.non_field_errors()]
        for name, node in self.nodes.items():
            errors = self.errors.get(name) if name else None
            if not errors:
                continue
            # A group of radios or checkboxes has no single input to point at: its box then.
            target = (self[name].id_for_label if name in self.fields else "") or node.dom_id
            summary += [(target, self._long_label(name), str(message)) for message in errors]
        return summary

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}

        def get(name: str) -> Any:
            return cleaned.get(name, EMPTY)

        answer = self.root.value(get)
        for name, message in schema_errors(self.spec.schema, answer, self):
            if name in self.fields:
                if name not in self.errors:
                    self.add_error(name, message)
            elif name in self.nodes and name:
                errors = self._errors.setdefault(name, self.error_class(field_id=html_id(name)))
                if message not in errors:
                    errors.append(message)
            else:
                label = self._label_for(name)
                self.add_error(None, f"{label}: {message}" if label else message)
        if not self._errors:
            self.answer = answer
        return cleaned

    def add_server_error(self, param: str, message: str) -> None:
        """Show an error that the Flows server reported (Update Run's 400) on the field its
        ``param`` names (``diagnoses[0].code``), else on the form."""
        path = tuple(
            int(index) if index else key for key, index in _PARAM_PART.findall(param or "")
        )
        name = field_name(path)
        if name in self.fields:
            self.add_error(name, message)
        else:
            label = self._long_label(name) if name in self.nodes else ""
            self.add_error(None, f"{label}: {message}" if label else message)

    def typed_values(self) -> list[tuple[str, str]]:
        """(label, value as typed) for every filled field of a bound form, in form order: a
        draft shown read-only, after the item it was typed for has closed."""
        if not isinstance(self.data, QueryDict):
            return []
        found = []
        for name in self.fields:
            values = [value for value in self.data.getlist(name) if value != ""]
            if values:
                found.append((self._long_label(name), ", ".join(values)))
        return found

    def _long_label(self, name: str) -> str:
        """`Items 2 › Code`: a field's label with its groups', unambiguous out of context."""
        parts = name.split(".")
        labels = []
        for end in range(1, len(parts) + 1):
            node = self.nodes.get(".".join(parts[:end]))
            if node is not None and not isinstance(node, ArrayNode):
                labels.append(node.label)
        return " › ".join(labels)

    def _label_for(self, name: str) -> str:
        node = self.nodes.get(name)
        if node is not None:
            return node.label
        return (
            humanize(name.rsplit(".", 1)[-1].replace("~1", ".").replace("~0", "~")) if name else ""
        )

    def answer_json(self) -> str:
        return json.dumps(self.answer, indent=2, ensure_ascii=False)


# Errors in plain words


def schema_errors(
    schema: Mapping[str, Any], answer: Any, form: SchemaForm
) -> list[tuple[str, str]]:
    """Every error of `answer` as (field name, plain message), deduplicated, ordered by field."""
    found: dict[tuple[str, str], None] = {}
    for error in flowspec.input_validator(schema).iter_errors(answer):
        for path, message in _explain(error, form):
            found[(field_name(tuple(path)), message)] = None
    return sorted(found, key=lambda item: item[0])


def _explain(error: SchemaError, form: SchemaForm) -> Iterator[tuple[list[Any], str]]:
    path = list(error.absolute_path)
    match error.validator:
        case "required":
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    yield [*path, name], "This field is required."
            return
        case "dependentRequired":
            for trigger, names in error.validator_value.items():
                if isinstance(error.instance, dict) and trigger in error.instance:
                    for name in names:
                        if name not in error.instance:
                            node = form.nodes.get(field_name((*path, trigger)))
                            label = node.label if node else humanize(trigger)
                            yield (
                                [*path, name],
                                f"This field is required when {label} is filled in.",
                            )
            return
        case "oneOf" | "anyOf" if error.context:
            chosen = _chosen_variant(error)
            if chosen is not None:
                for sub in error.context:
                    if sub.relative_schema_path and sub.relative_schema_path[0] == chosen:
                        yield from _explain(sub, form)
                return
    node = form.nodes.get(field_name(tuple(path)))
    yield path, plain_message(error, node)


def _chosen_variant(error: SchemaError) -> int | None:
    """For a oneOf told apart by a const property, the index of the variant the answer chose."""
    name = discriminator_of({"oneOf": error.validator_value})
    if name is None or not isinstance(error.instance, dict) or name not in error.instance:
        return None
    for index, variant in enumerate(error.validator_value):
        if variant["properties"][name]["const"] == error.instance[name]:
            return index
    return None


def _n(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def plain_message(error: SchemaError, node: Node | None) -> str:
    """jsonschema's message for a developer, reworded for a billing clerk."""
    expected = error.validator_value
    rows = isinstance(node, ArrayNode)
    match error.validator:
        case "type":
            if error.instance is None:
                return "This field is required."
            words = {
                "integer": "a whole number",
                "number": "a number",
                "string": "text",
                "boolean": "yes or no",
                "array": "a list",
                "object": "a group of fields",
            }
            types = [expected] if isinstance(expected, str) else list(expected)
            return "Enter " + " or ".join(words.get(t, t) for t in types if t != "null") + "."
        case "enum" | "const":
            if expected is True:
                return "Tick this box to confirm."
            return "Choose one of the options."
        case "minLength":
            return (
                "This field is required."
                if expected == 1
                else f"Enter at least {expected} characters."
            )
        case "maxLength":
            return f"Enter at most {expected} characters (you entered {len(error.instance)})."
        case "pattern":
            example = getattr(getattr(node, "field", None), "widget", None)
            hint = example.attrs.get("placeholder") if example is not None else None
            return (
                f"Enter it in the expected format, like {hint.removeprefix('e.g. ')}."
                if hint
                else "Enter it in the expected format."
            )
        case "format":
            return FormattedField.MESSAGES.get(expected, "Enter a valid value.")
        case "minimum":
            return f"Must be at least {_n(expected)}."
        case "maximum":
            return f"Must be at most {_n(expected)}."
        case "exclusiveMinimum":
            return f"Must be more than {_n(expected)}."
        case "exclusiveMaximum":
            return f"Must be less than {_n(expected)}."
        case "multipleOf":
            return f"Must be a multiple of {_n(expected)}."
        case "minItems":
            if rows:
                return f"Add at least {expected} row{'s' if expected != 1 else ''}."
            return f"Choose at least {expected}."
        case "maxItems":
            return f"Keep at most {expected} rows." if rows else f"Choose at most {expected}."
        case "uniqueItems":
            return "Each entry may appear only once."
        case "additionalProperties" | "unevaluatedProperties":
            return "The answer has a field this form does not know."
        case "minProperties":
            return f"Fill in at least {expected} of these fields."
        case "maxProperties":
            return f"Fill in at most {expected} of these fields."
    return "This combination of answers is not allowed."


# Requests


def apply_action(data: QueryDict) -> tuple[QueryDict, str | None]:
    """Apply a row action (`~action=add:<array>` or `remove:<array>.<index>`) to posted data.

    Returns the data to build the form from and the name of the field to focus (the first of an
    added row). Removing a row renames the later rows' fields down by one, so that what the user
    typed stays with its row.
    """
    action = data.get(ACTION, "")
    verb, _, target = action.partition(":")
    out = data.copy()
    out.pop(ACTION, None)
    if verb == "add":
        rows = target + ROWS
        try:
            count = int(out.get(rows, 0))
        except ValueError:
            count = 0
        out[rows] = str(count + 1)
        return out, f"{target}.{count}"
    if verb == "remove":
        array, _, index_text = target.rpartition(".")
        if not index_text.isdecimal():
            return out, None
        removed = int(index_text)
        shifted = QueryDict(mutable=True)
        prefix = array + "."
        for key in out:
            values = out.getlist(key)
            if key.startswith(prefix):
                match = re.match(r"(\d+)(?=$|[.~])", key[len(prefix) :])
                if match:
                    index = int(match.group(1))
                    if index == removed:
                        continue
                    if index > removed:
                        key = f"{prefix}{index - 1}{key[len(prefix) + match.end() :]}"
            shifted.setlist(key, values)
        rows = array + ROWS
        try:
            shifted[rows] = str(max(0, int(out.get(rows, 0)) - 1))
        except ValueError:
            shifted[rows] = "0"
        return shifted, None
    return out, None


def defaults(schema: Any, root: Any = None) -> Any:
    """The `default`s of an object's properties (nested objects too): a fresh form's values."""
    root = schema if root is None else root
    schema = resolve(schema, root)
    if not isinstance(schema, Mapping):
        return EMPTY
    if "default" in schema:
        return schema["default"]
    if "properties" not in schema:
        return EMPTY
    found = {}
    for name, sub in schema["properties"].items():
        value = defaults(sub, root)
        if value is not EMPTY and value != {}:
            found[name] = value
    return found


def initial_answer(spec: FormSpec, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A fresh form's values: the schema's defaults, then `ui.prefill` from the Run's context."""
    answer = defaults(spec.schema)
    answer = answer if isinstance(answer, dict) else {}
    if context is not None and spec.ui.get("prefill"):
        prefill = flowspec.render_value(dict(spec.ui["prefill"]), context)
        answer.update(prefill)
    return answer


def signed_data(spec: FormSpec, data: QueryDict, *, signer: str | None) -> QueryDict:
    """``data`` as posted, except that every signature field (`x-signature`) holds ``signer``'s
    name: what an autosave keeps, which never builds a form otherwise (only a schema that has a
    signature pays for one here)."""
    if not _has_signature(spec.schema):
        return data
    form = SchemaForm(spec, data=data, signer=signer)
    assert isinstance(form.data, QueryDict)  # _sign made a copy
    return form.data


def _has_signature(schema: Any) -> bool:
    if isinstance(schema, Mapping):
        return schema.get(SIGNATURE) is True or any(map(_has_signature, schema.values()))
    if isinstance(schema, list):
        return any(map(_has_signature, schema))
    return False


def build_form(
    spec: FormSpec,
    data: QueryDict | None,
    *,
    partial_url: str | None = None,
    context: Mapping[str, Any] | None = None,
    initial: Any = None,
    signer: str | None = None,
) -> tuple[SchemaForm, bool]:
    """The form for a GET (`data` None: defaults and prefill) or a POST.

    Returns the form and whether the POST was a row action (then it is shown as typed, not
    validated). `~part` and `~action` are control parameters, never fields. `signer` is the
    signed-in person's name, for signature fields (`x-signature`).
    """
    values = None
    if context is not None:
        values = flowspec.render_value(list(spec.context_paths), context)
    start = initial if initial is not None else initial_answer(spec, context)
    if data is None:
        return SchemaForm(
            spec, initial=start, partial_url=partial_url, context_values=values, signer=signer
        ), False
    action = bool(data.get(ACTION))
    data, focus = apply_action(data)
    form = SchemaForm(
        spec,
        data=data,
        initial=start,
        partial_url=partial_url,
        focus=focus,
        context_values=values,
        signer=signer,
    )
    return form, action
