"""Property tests: valid answers round-trip through the rendered form; no submission, however
wrong, yields JSON that the schema rejects."""

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import flowspec
from reviewqueue.schema_forms import FieldNode, FormSpec, SchemaForm
from tests.reviewqueue.conftest import CORPUS, demo_specs, load_case, post, round_trip
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
