"""Reading template text, the JSON Schema for documents, and how errors are reported."""

import json
from importlib import resources

import pytest

from flowspec import (
    ERROR_NAMES,
    PRODUCTS,
    SpecError,
    TemplateInvalid,
    load_template,
    validate_document,
)
from flowspec.checks import input_validator

MINIMAL = """
metadata: {name: Minimal}
input: {type: object}
startsAt: a
states:
  a: {type: request, resource: Discovery, end: true}
"""


def errors_of(source, **kwargs):
    with pytest.raises(TemplateInvalid) as caught:
        load_template(source, **kwargs)
    return caught.value.errors


def test_minimal_template():
    template = load_template(MINIMAL)
    assert template.name == "Minimal"
    assert template.description == ""
    assert template.output_schema is None


def test_bytes_and_json_are_accepted():
    document = load_template(MINIMAL).document
    assert load_template(json.dumps(document)).document == document
    assert load_template(json.dumps(document, indent="\t").encode()).document == document


def test_validate_document_keeps_the_document_as_given():
    document = load_template(MINIMAL).document
    assert validate_document(document).document is document


def test_yaml_dates_stay_strings():
    source = MINIMAL.replace(
        "resource: Discovery,", "resource: Discovery, parameters: {d: 2024-01-31},"
    )
    assert load_template(source).state("a").parameters == {"d": "2024-01-31"}


def test_yaml_merge_keys_still_work():
    source = """
metadata: {name: Merge}
input: {type: object}
startsAt: a
states:
  a: &base {type: request, resource: Discovery, end: true}
  b:
    <<: *base
    resource: Verification
"""
    assert errors_of(source) == [SpecError("states.b", "is not reachable from startsAt")]


def test_non_json_values_are_reported():
    source = MINIMAL.replace("resource: Discovery,", "resource: Discovery, parameters: {1: x},")
    assert errors_of(source) == [SpecError("states.a.parameters", "key 1 must be a string")]
    source = MINIMAL.replace(
        "resource: Discovery,", "parameters: {x: !!binary aGk=}, resource: Discovery,"
    )
    assert errors_of(source) == [SpecError("states.a.parameters.x", "is not a JSON value (bytes)")]


def test_empty_text_is_not_a_template():
    assert errors_of("") == [SpecError("document", "must be an object")]


def test_products_can_be_restricted():
    errors = errors_of(MINIMAL, products=("Verification",))
    assert errors == [SpecError("states.a.resource", "unknown product 'Discovery' (Verification)")]
    assert load_template(MINIMAL.replace("Discovery", "Eligibility"), products=["Eligibility"])


def test_schema_errors_stop_before_semantic_checks():
    source = MINIMAL.replace("startsAt: a", "startsAt: b").replace("end: true", "end: yes, x: 1")
    assert [str(e) for e in errors_of(source)] == [
        "states.a.x: is not a known key (known: type, "
        "resource, parameters, resultSelector, retry, catch, next, end)"
    ]


def test_required_keys_are_reported_one_by_one():
    assert [str(e) for e in errors_of("metadata: {name: x}")] == [
        "input: is required",
        "startsAt: is required",
        "states: is required",
    ]


def test_type_messages_read_like_the_doc():
    source = MINIMAL.replace("end: true", "end: true, parameters: [1]")
    assert errors_of(source) == [SpecError("states.a.parameters", "must be an object")]


def test_template_invalid_lists_every_error_one_per_line():
    error = TemplateInvalid([SpecError("startsAt", "bad"), SpecError("states.a.next", "worse")])
    assert str(error) == "startsAt: bad\nstates.a.next: worse"
    assert isinstance(error, ValueError)


def test_template_invalid_drops_duplicates():
    assert TemplateInvalid([SpecError("a", "b"), SpecError("a", "b")]).errors == [
        SpecError("a", "b")
    ]


def test_spec_error_str():
    assert str(SpecError("states.verify.next", "there is no state")) == (
        "states.verify.next: there is no state"
    )


def test_the_schema_file_knows_the_error_names():
    schema = json.loads(resources.files("flowspec").joinpath("template.schema.json").read_text())
    assert schema["$defs"]["errorName"]["enum"] == [*ERROR_NAMES, "*"]
    assert PRODUCTS == ("Discovery", "Verification", "NetworkStatus", "CostEstimate")


def test_input_validator_checks_formats():
    validator = input_validator({"type": "object", "properties": {"d": {"format": "date"}}})
    assert not validator.is_valid({"d": "2024-02-30"})
    assert validator.is_valid({"d": "2024-02-29"})


def test_rule_values_and_timeout_input_are_literals():
    source = """
metadata: {name: Literals}
input: {type: object}
startsAt: c
states:
  c:
    type: choice
    choices:
      - when: {path: $input.price, equals: $5}
        next: ask
  ask:
    type: callback
    title: Ask
    input: {type: object, properties: {note: {type: string}}}
    timeout: {seconds: 60, input: {note: $input.x}}
    end: true
"""
    template = load_template(source)
    assert template.state("c").next_state({"input": {"price": "$5"}, "states": {}}) == "ask"
    assert template.state("ask").timeout.input == {"note": "$input.x"}


def test_broken_json_reports_the_json_error():
    assert errors_of('{\n\t"metadata": {"name": "x"},\n\t"input": }') == [
        SpecError("document", "line 3, column 11: Expecting value")
    ]


def test_duplicate_keys_in_json_are_reported():
    errors = errors_of('{"metadata": {"name": "x"}, "metadata": {"name": "y"}}')
    assert errors == [SpecError("document", "line 1, column 29: duplicate key 'metadata'")]


def test_yaml_flow_mappings_that_are_not_json_still_load():
    source = (
        "{metadata: {name: Flow}, input: {type: object}, startsAt: a,"
        " states: {a: {type: request, resource: Discovery, end: true}}}"
    )
    assert load_template(source).name == "Flow"
