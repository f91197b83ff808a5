"""flowspec.input_errors: the field each schema error belongs to, as Update Run's ``param``."""

import flowspec

SCHEMA = {
    "type": "object",
    "required": ["patient", "diagnoses"],
    "properties": {
        "patient": {
            "type": "object",
            "required": ["dateOfBirth"],
            "properties": {"dateOfBirth": {"type": "string", "format": "date"}},
        },
        "diagnoses": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code"],
                "properties": {"code": {"type": "string", "pattern": "^[A-Z][0-9]{2}"}},
            },
        },
    },
}


def test_missing_required_property_is_named_itself():
    assert [field for field, _ in flowspec.input_errors(SCHEMA, {"patient": {}})] == [
        "diagnoses",
        "patient.dateOfBirth",
    ]


def test_array_items_are_named_with_their_index():
    errors = flowspec.input_errors(
        SCHEMA,
        {"patient": {"dateOfBirth": "2001-02-30"}, "diagnoses": [{"code": "M17"}, {"code": "x"}]},
    )
    assert errors == [
        ("diagnoses[1].code", "'x' does not match '^[A-Z][0-9]{2}'"),
        ("patient.dateOfBirth", "'2001-02-30' is not a 'date'"),
    ]


def test_a_valid_instance_has_no_errors():
    assert (
        flowspec.input_errors(SCHEMA, {"patient": {"dateOfBirth": "2001-02-28"}, "diagnoses": []})
        == []
    )
