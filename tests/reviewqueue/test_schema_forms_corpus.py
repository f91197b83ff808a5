"""The corpus: one small schema per construct, and the demo templates' forms.

Each `schemas/*.json` holds a `schema` (and optional `ui`), `valid` answers that must round-trip
exactly through the rendered form, and `invalid` posts with the plain-words error expected on
each field (an empty `errors` means the post is valid; `answer` then is the JSON it gives).
"""

import json

import pytest
import yaml

import flowspec
from reviewqueue.schema_forms import FormSpec, SchemaForm
from tests.reviewqueue.conftest import (
    CORPUS,
    DEMO_FILES,
    demo_specs,
    load_case,
    post,
    render,
    round_trip,
)

VALID = [
    pytest.param(path, index, id=f"{path.stem}-{index}")
    for path in CORPUS
    for index in range(len(load_case(path)["valid"]))
]
INVALID = [
    pytest.param(path, index, id=f"{path.stem}-{index}")
    for path in CORPUS
    for index in range(len(load_case(path)["invalid"]))
]


def spec_of(path):
    case = load_case(path)
    return FormSpec(schema=case["schema"], ui=case.get("ui", {}), title=path.stem)


def test_the_corpus_covers_at_least_thirty_constructs():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_every_corpus_schema_is_renderable_and_valid(path):
    schema = load_case(path)["schema"]
    flowspec.input_validator(schema).check_schema(schema)
    assert flowspec.renderable.problems(schema, "input") == []


@pytest.mark.parametrize(("path", "index"), VALID)
def test_a_valid_answer_round_trips_exactly(path, index):
    instance = load_case(path)["valid"][index]
    assert flowspec.input_errors(load_case(path)["schema"], instance) == []
    form = round_trip(spec_of(path), instance)
    assert form.errors == {}
    assert form.answer == instance
    # Types too: 12 stays an int, 12.5 a float, False is not 0.
    assert json.dumps(form.answer, sort_keys=True) == json.dumps(instance, sort_keys=True)


@pytest.mark.parametrize(("path", "index"), INVALID)
def test_an_invalid_post_shows_plain_errors_on_its_fields(path, index):
    case = load_case(path)["invalid"][index]
    form = SchemaForm(spec_of(path), data=post(case["post"]))
    valid = form.is_valid()
    if not case["errors"]:
        assert valid, form.errors
        if "answer" in case:
            assert form.answer == case["answer"]
        return
    assert not valid
    assert form.answer is None
    for name, message in case["errors"].items():
        assert name in form.errors, (name, form.errors)
        assert any(message in error for error in form.errors[name]), form.errors[name]
    html = render(form)
    for name in case["errors"]:
        if name in form.fields:
            # The error is tied to its input for screen readers.
            assert f'aria-describedby="id_{name}_error"' in html or f"id_{name}_error" in html


@pytest.mark.parametrize(
    ("name", "spec", "document"), demo_specs(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_demo_form_is_renderable_and_renders(name, spec, document):
    assert flowspec.renderable.problems(spec.schema, "input") == []
    html = render(SchemaForm(spec))
    assert 'id="schema-form"' in html


TIMEOUT_ANSWERS = [
    pytest.param(FormSpec.for_state(document, state_id), state["timeout"]["input"], id=state_id)
    for document in (yaml.safe_load(path.read_text()) for path in DEMO_FILES)
    for state_id, state in document["states"].items()
    if "timeout" in state
]


@pytest.mark.parametrize(("spec", "instance"), TIMEOUT_ANSWERS)
def test_a_demo_timeout_answer_round_trips(spec, instance):
    """A callback's timeout input is a known-valid answer written by the template's author."""
    form = round_trip(spec, instance)
    assert form.errors == {}
    assert form.answer == instance
