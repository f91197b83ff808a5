"""flowspec.renderable: what Flowdesk's forms cannot render is refused when a template is stored."""

import pytest

import flowspec
from flowspec import renderable


def template(schema: dict) -> str:
    import json

    document = {
        "metadata": {"name": "T"},
        "input": {"type": "object"},
        "startsAt": "review",
        "states": {"review": {"type": "callback", "title": "Review", "input": schema, "end": True}},
    }
    return json.dumps(document)


@pytest.mark.parametrize(
    ("schema", "location"),
    [
        (
            {
                "type": "object",
                "properties": {"x": {"type": "object", "patternProperties": {"^a": {}}}},
            },
            "states.review.input.properties.x.patternProperties",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "array", "prefixItems": [{}]}}},
            "states.review.input.properties.x.prefixItems",
        ),
        (
            {"type": "object", "properties": {"x": {"type": ["string", "integer"]}}},
            "states.review.input.properties.x.type",
        ),
        (
            {
                "type": "object",
                "properties": {"x": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
            },
            "states.review.input.properties.x.oneOf",
        ),
        (
            {
                "type": "object",
                "properties": {"x": {"type": "object", "additionalProperties": {"type": "string"}}},
            },
            "states.review.input.properties.x.additionalProperties",
        ),
        (
            {
                "type": "object",
                "then": {
                    "properties": {"y": {"type": "object", "propertyNames": {"maxLength": 3}}}
                },
                "if": {},
            },
            "states.review.input.then.properties.y.propertyNames",
        ),
        (
            {
                "type": "object",
                "$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}},
                "properties": {"x": {"$ref": "#/$defs/n"}},
            },
            "states.review.input.properties.x.properties.next.$ref",
        ),
    ],
)
def test_an_unrenderable_schema_is_refused_naming_state_and_keyword(schema, location):
    with pytest.raises(flowspec.TemplateInvalid) as caught:
        flowspec.load_template(template(schema))
    locations = [error.location for error in caught.value.errors]
    assert location in locations
    error = caught.value.errors[locations.index(location)]
    assert (
        "supported" in error.message
        or "cannot be rendered" in error.message
        or "form" in error.message
    )


def test_the_message_says_what_the_forms_cannot_do():
    schema = {
        "type": "object",
        "properties": {"x": {"type": "object", "patternProperties": {"^a": {}}}},
    }
    with pytest.raises(flowspec.TemplateInvalid) as caught:
        flowspec.load_template(template(schema))
    assert str(caught.value.errors[0]).startswith(
        "states.review.input.properties.x.patternProperties: not supported by Flowdesk's forms"
    )


def test_the_start_run_input_is_checked_too():
    import json

    document = json.loads(template({"type": "object"}))
    document["input"] = {
        "type": "object",
        "properties": {"tags": {"type": "array", "contains": {"const": 1}}},
    }
    with pytest.raises(flowspec.TemplateInvalid) as caught:
        flowspec.validate_document(document)
    assert [e.location for e in caught.value.errors] == ["input.properties.tags.contains"]


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"enum": [1, "b", None]}}},
        {"type": "object", "properties": {"a": {"oneOf": [{"const": "x", "title": "X"}]}}},
        {
            "type": "object",
            "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
            "properties": {"a": {}, "b": {}},
        },
        {
            "type": "object",
            "properties": {
                "c": {
                    "type": "object",
                    "oneOf": [
                        {"properties": {"k": {"const": 1}}},
                        {"properties": {"k": {"const": 2}, "z": {"type": "string"}}},
                    ],
                }
            },
        },
        {"type": "object", "properties": {"n": {"type": ["number", "null"], "not": {"const": 3}}}},
        {
            "type": "object",
            "x-flowdesk-note": "ignored",
            "properties": {"a": {"$ref": "#/$defs/a"}},
            "$defs": {"a": {"type": "string"}},
        },
    ],
)
def test_supported_schemas_pass(schema):
    assert renderable.problems(schema, "input") == []
    flowspec.load_template(template(schema))


def test_keywords_are_either_supported_or_unsupported_never_both():
    assert not (renderable.SUPPORTED & set(renderable.UNSUPPORTED))


def test_shape_tells_the_mapper_how_to_render():
    root = {"$defs": {"p": {"enum": ["a", "b"]}}}
    assert renderable.shape({"$ref": "#/$defs/p"}, root).kind == "choice"
    assert renderable.shape({"type": "array", "items": {"enum": [1]}}, root).item.kind == "choice"
    assert renderable.shape({"type": ["integer", "null"]}, root).nullable
    assert renderable.shape({}, root).kind == "any"
