"""Property tests: valid answers round-trip through the rendered form; no submission, however
wrong, yields JSON that the schema rejects; a value a widget cannot send is an error on it."""

import re

import pytest
from django import forms
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import flowspec
from reviewqueue.schema_forms import FieldNode, FormSpec, SchemaForm
from reviewqueue.schema_forms.fields import CheckboxField, IntegerField, NumberField
from tests.reviewqueue.browser import submitted
from tests.reviewqueue.conftest import CORPUS, demo_specs, load_case, post, render, round_trip
from tests.reviewqueue.strategies import answers

SPECS = [
    pytest.param(FormSpec(schema=load_case(p)["schema"], ui=load_case(p).get("ui", {})), id=p.stem)
    for p in CORPUS
] + [pytest.param(spec, id=name) for name, spec, _ in demo_specs()]

PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)


@pytest.mark.parametrize("spec", SPECS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_valid_answer_round_trips_through_the_rendered_form(spec, data):
    instance = data.draw(answers(spec.schema))
    assume(flowspec.input_validator(spec.schema).is_valid(instance))
    form = round_trip(spec, instance)
    assert form.errors == {}
    assert form.answer == instance


JUNK = st.one_of(
    st.just(""),
    st.text(max_size=12),
    st.sampled_from(
        ["0", "-1", "1.5", "true", "on", "2026-02-30", "2026-03-14", "null", "{}", "1e999"]
    ),
)


@pytest.mark.parametrize("spec", SPECS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_no_submission_gives_json_the_schema_rejects(spec, data):
    names = [n.name for n in SchemaForm(spec).nodes.values() if isinstance(n, FieldNode)]
    values = {name: data.draw(JUNK, label=name) for name in names}
    for name in names:
        node = SchemaForm(spec).nodes[name]
        options = getattr(node.field, "choices", None)
        if options and data.draw(st.booleans(), label=f"{name} picks an option"):
            values[name] = data.draw(st.sampled_from([value for value, _ in options]))
    values = {k: v for k, v in values.items() if "\x00" not in v}
    form = SchemaForm(spec, data=post(values))
    if form.is_valid():
        assert flowspec.input_validator(spec.schema).is_valid(form.answer)
    else:
        assert form.answer is None


# A number input sends a valid floating-point number (HTML's grammar) or nothing.
HTML_NUMBER = re.compile(r"-?(\d+|\d*\.\d+)([eE][-+]?\d+)?")


def _producible(field, text: str) -> bool | None:
    """Whether `field`'s widget can send `text`; None for a free-text widget (anything goes)."""
    if isinstance(field, CheckboxField):
        return text == "on"
    if isinstance(field, forms.ChoiceField):  # selects, radios, Yes/No, checkbox sets
        return text == "" or text in {str(value) for value, _ in field.choices}
    if isinstance(field, IntegerField | NumberField):
        return text.strip() == "" or HTML_NUMBER.fullmatch(text.strip()) is not None
    return None


def _strict_fields(form: SchemaForm) -> list[str]:
    """The fields whose widget sends only some values (not free text), as the form starts."""
    return [
        name
        for name, node in form.nodes.items()
        if isinstance(node, FieldNode) and not node.field.disabled
        if _producible(node.field, "") is not None
    ]


@pytest.mark.parametrize(
    "spec", [param for param in SPECS if _strict_fields(SchemaForm(param.values[0]))]
)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_value_its_widget_cannot_send_is_an_error_on_that_field(spec, data):
    """A checkbox posted "no", a choice that is not an option, text in a number field: never
    read leniently (as true, as a string), always an error on the field it was posted for."""
    fresh = SchemaForm(spec)
    name = data.draw(st.sampled_from(_strict_fields(fresh)), label="field")
    field = fresh.fields[name]
    junk = data.draw(
        st.one_of(JUNK, st.sampled_from(["no", "off", "yes", "1", "On", " on", "3.0x"])).filter(
            lambda text: "\x00" not in text and not _producible(field, text)
        ),
        label="posted",
    )
    values = submitted(render(fresh))  # what the browser sends for the fresh form
    values.setlist(name, [junk])
    form = SchemaForm(spec, data=values)
    assert not form.is_valid()
    if name in form.fields:  # (unless the junk switched a conditional that removes it)
        assert name in form.errors
