"""Escaping and accessibility: hostile titles, labels and values through every widget."""

import re

import pytest

from reviewqueue.schema_forms import FormSpec, SchemaForm
from tests.reviewqueue.conftest import post, render

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "</textarea><script>alert(2)</script>",
    "{{ secret }}{% debug %}",
]


def hostile_spec(evil: str) -> FormSpec:
    text = {"title": evil, "description": evil}
    schema = {
        "type": "object",
        "title": evil,
        "required": ["plain"],
        "properties": {
            "plain": {"type": "string", **text, "examples": [evil]},
            "long": {"type": "string", **text},
            "pick": {
                "type": "string",
                **text,
                "oneOf": [{"const": evil, "title": evil}, {"const": "b", "title": evil}],
            },
            "radio": {**text, "enum": [evil, "other"]},
            "many": {"type": "array", **text, "items": {"enum": [evil, "x"]}},
            "multi": {"type": "array", **text, "items": {"enum": [evil, "y"]}},
            "flag": {"type": "boolean", **text, "default": False},
            "yesno": {"type": "boolean", **text},
            "count": {"type": "integer", **text},
            "when": {"type": "string", "format": "date", **text},
            "fixed": {"const": evil, **text},
            "anything": {**text},
            "rows": {
                "type": "array",
                **text,
                "items": {
                    "type": "object",
                    **text,
                    "properties": {"cell": {"type": "string", **text}},
                },
            },
            "group": {
                "type": "object",
                **text,
                "properties": {"inner": {"type": "string", **text, "pattern": "^x$"}},
            },
        },
    }
    ui = {
        "fields": {
            "long": {"widget": "textarea", "help": evil, "placeholder": evil},
            "radio": {"widget": "radio", "help": evil},
            "multi": {"widget": "select"},
        },
        "sections": [{"title": evil, "fields": ["plain", "long", "pick"]}],
    }
    return FormSpec(schema=schema, ui=ui, title=evil, context_paths=("$input.note",))


def assert_escaped(html: str, evil: str) -> None:
    assert evil not in html
    assert "<script" not in html
    assert "<img" not in html
    assert "onmouseover='" not in html
    assert "{% debug %}" not in html or evil != PAYLOADS[-1] or "{% debug %}" in evil


@pytest.mark.parametrize("evil", PAYLOADS)
def test_titles_labels_and_initial_values_are_escaped(evil):
    initial = {
        "plain": evil,
        "long": evil,
        "pick": evil,
        "radio": evil,
        "many": [evil],
        "multi": [evil],
        "anything": {"k": evil},
        "rows": [{"cell": evil}],
        "group": {"inner": evil},
    }
    form = SchemaForm(hostile_spec(evil), initial=initial, context_values=[evil])
    html = render(form)
    if evil.startswith("{{"):
        assert "secret" in html  # shown literally, never evaluated
        return
    assert_escaped(html, evil)


@pytest.mark.parametrize("evil", PAYLOADS[:4])
def test_typed_values_and_errors_are_escaped(evil):
    data = post(
        {
            "plain": evil,
            "long": evil,
            "pick": evil,
            "radio": evil,
            "many": [evil, "nope"],
            "multi": [evil],
            "count": evil,
            "when": evil,
            "anything": evil,
            "rows~rows": "1",
            "rows.0.cell": evil,
            "group.inner": evil,
            evil: evil,
        }
    )
    form = SchemaForm(hostile_spec(evil), data=data)
    assert not form.is_valid()
    html = render(form)
    assert_escaped(html, evil)


def test_every_input_has_a_label_and_errors_are_described():
    spec = hostile_spec("Title")
    form = SchemaForm(
        spec, data=post({"plain": "", "count": "x", "when": "nope", "rows~rows": "1"})
    )
    assert not form.is_valid()
    html = render(form)
    ids = re.findall(r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', html)
    assert ids
    for element_id in ids:
        assert f'for="{element_id}"' in html, element_id
    for name in ("plain", "count", "when"):
        assert f'aria-describedby="id_{name}_error"' in html or re.search(
            rf'aria-describedby="[^"]*id_{name}_error', html
        ), name
        assert f'id="id_{name}_error"' in html
    # A summary at the top links each problem to its field.
    assert 'role="alert"' in html
    assert 'href="#id_count"' in html
