"""Values that must come through a schema form exactly: amounts in cents, text with line
breaks, booleans and nullable types; and a value the widget cannot produce is an error."""

import json
from decimal import Decimal

import httpx
import pytest

import flowspec
from flowspec.numbers import exact_loads
from reviewqueue.schema_forms import FormSpec, SchemaForm
from reviewqueue.schema_forms.fields import EMPTY
from tests.reviewqueue.conftest import post, render, round_trip


def spec(prop: dict, *, required: bool = True, ui: dict | None = None) -> FormSpec:
    schema = {"type": "object", "properties": {"x": prop}, "required": ["x"] if required else []}
    return FormSpec(schema=schema, ui={"fields": {"x": ui}} if ui else {})


def submit(form_spec: FormSpec, values: dict) -> SchemaForm:
    form = SchemaForm(form_spec, data=post(values))
    form.is_valid()
    return form


# --- Money: multipleOf 0.01 ----------------------------------------------------------------

CENT = {"type": "number", "multipleOf": 0.01, "minimum": 0}


def test_every_cent_to_two_thousand_dollars_goes_through_the_form_and_is_sent_exactly():
    """Every amount from 0.00 to 2,000.00 as typed: parsed by the form's field, checked by the
    validator the form and the engine share, encoded as the client sends it (httpx's `json=`),
    and read back by the engine's body reader, digit for digit."""
    field = SchemaForm(spec(CENT)).fields["x"]
    validator = flowspec.input_validator(CENT)
    typed = [f"{c // 100}.{c % 100:02d}" for c in range(200_001)]
    values = [field.clean(text) for text in typed]
    assert [t for t, v in zip(typed, values, strict=True) if not validator.is_valid(v)] == []

    sent = httpx.Request("PUT", "http://flows.test/", json={"input": {"x": values}}).content
    assert [Decimal(n) for n in json.loads(sent, parse_float=str)["input"]["x"]] == [
        Decimal(text) for text in typed
    ]
    assert exact_loads(sent)["input"]["x"] == values


@pytest.mark.parametrize("typed", ["1234.57", "19.99", "0.07", "0.29", "4.35", "1999.99"])
def test_amounts_binary_floats_get_wrong_are_accepted_by_the_form(typed):
    form = submit(spec(CENT), {"x": typed})
    assert form.errors == {}
    assert form.answer == {"x": float(typed)}
    assert f'"x": {typed}' in form.answer_json()


def test_an_amount_with_a_fraction_of_a_cent_is_refused_on_its_field():
    form = submit(spec(CENT), {"x": "1234.575"})
    assert form.errors == {"x": ["Must be a multiple of 0.01."]}


def test_a_number_with_more_digits_than_can_be_sent_exactly_is_an_error_not_rounded():
    form = submit(spec({"type": "number"}), {"x": "0.1000000000000000000001"})
    assert form.errors == {"x": ["Enter at most 15 significant digits."]}
    assert form.answer is None


# --- Free text: line breaks ----------------------------------------------------------------


@pytest.mark.parametrize(
    "prop",
    [{"type": "string"}, {"type": "string", "maxLength": 2000}, {"type": ["string", "null"]}],
    ids=["no-max-length", "long-max-length", "nullable"],
)
def test_free_text_is_a_textarea(prop):
    html = render(SchemaForm(spec(prop)))
    assert '<textarea name="x"' in html
    assert '<input type="text" name="x"' not in html


@pytest.mark.parametrize(
    ("prop", "ui"),
    [
        ({"type": "string", "maxLength": 60}, None),
        ({"type": "string", "pattern": "^[A-Z]+$"}, None),
        ({"type": "string", "format": "email"}, None),
        ({"type": "string"}, {"widget": "text"}),
    ],
    ids=["short", "pattern", "format", "ui-text"],
)
def test_short_patterned_formatted_or_text_hinted_strings_stay_one_line(prop, ui):
    html = render(SchemaForm(spec(prop, ui=ui)))
    assert "<textarea" not in html


def test_line_breaks_round_trip_as_newlines():
    # A browser sends every line break of a textarea as CRLF; the answer has `\n`.
    form = submit(spec({"type": "string"}), {"x": "Called payer.\r\n\r\nRef PAY-77812\r\n"})
    assert form.answer == {"x": "Called payer.\n\nRef PAY-77812\n"}
    text = "first line\n\n  indented second\nthird"
    assert round_trip(spec({"type": "string"}), {"x": text}).answer == {"x": text}


def test_a_short_field_whose_value_has_a_line_break_keeps_it():
    text = "two\nlines"
    form = round_trip(spec({"type": "string", "maxLength": 60}), {"x": text})
    assert form.answer == {"x": text}


# --- Booleans and nullable types: only what the widget produces ------------------------------


@pytest.mark.parametrize("posted", ["no", "false", "0", "off", "yes", "true", "1", "On", " on"])
def test_a_required_checkbox_takes_only_its_own_value(posted):
    form = submit(spec({"type": "boolean"}), {"x": posted})
    assert form.errors == {"x": ["Tick the box or leave it empty."]}


@pytest.mark.parametrize(("values", "answer"), [({"x": "on"}, True), ({}, False)])
def test_a_required_checkbox_ticked_or_not(values, answer):
    assert submit(spec({"type": "boolean"}), values).answer == {"x": answer}


@pytest.mark.parametrize("value", [True, False, None])
def test_a_required_nullable_boolean_round_trips(value):
    form = round_trip(spec({"type": ["boolean", "null"]}), {"x": value})
    assert form.errors == {}
    assert form.answer == {"x": value}


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ({"type": ["integer", "null"]}, 3),
        ({"type": ["integer", "null"]}, None),
        ({"type": ["null", "integer"], "minimum": 0}, 0),
        ({"type": ["number", "null"]}, 19.99),
        ({"type": ["number", "null"]}, None),
        ({"type": ["string", "null"]}, "text"),
        ({"type": ["string", "null"]}, None),
        ({"type": ["integer", "null"], "enum": [1, 2, None]}, 2),
        ({"type": ["integer", "null"], "enum": [1, 2, None]}, None),
        ({"type": "integer"}, 3.0),
    ],
)
def test_nullable_types_round_trip_as_their_type(prop, value):
    form = round_trip(spec(prop), {"x": value})
    assert form.errors == {}
    assert form.answer == {"x": value}
    assert type(form.answer["x"]) is type(value) or value == 3.0


def test_an_optional_choice_whose_options_exclude_null_is_left_out_when_blank():
    prop = {"type": ["integer", "null"], "enum": [1, 2]}
    form = submit(spec(prop, required=False), {"x": ""})
    assert form.errors == {}
    assert form.answer == {}


@pytest.mark.parametrize(
    ("prop", "posted"),
    [
        ({"type": ["integer", "null"]}, "three"),
        ({"type": ["integer", "null"]}, "3.5"),
        ({"type": ["number", "null"]}, "lots"),
        ({"type": ["boolean", "null"]}, "maybe"),
        ({"type": "boolean"}, "maybe"),
        ({"type": ["integer", "null"], "enum": [1, 2]}, "3"),
    ],
)
def test_a_value_the_widget_cannot_produce_is_an_error_on_that_field(prop, posted):
    form = submit(spec(prop), {"x": posted})
    assert list(form.errors) == ["x"]
    assert form.answer is None


def test_a_checkbox_posted_with_another_value_is_redrawn_unticked():
    form = submit(spec({"type": "boolean"}), {"x": "yes"})
    assert "checked" not in render(form).split('name="x"')[1].split(">")[0]
    assert form.cleaned_data.get("x", EMPTY) is EMPTY
