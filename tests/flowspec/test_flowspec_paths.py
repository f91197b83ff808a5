"""Paths, rendering and projection: the data-only expressions of a template."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowspec import (
    MISSING,
    PathError,
    is_path,
    parse_path,
    project,
    render_value,
    resolve_path,
)

CONTEXT = {
    "input": {
        "patient": {
            "firstName": "Ada",
            "addresses": [{"zip": "02139"}, {"zip": "10001", "lines": ["1 Main St"]}],
            "middleName": None,
        },
        "flags": [True, False],
    },
    "states": {
        "collect-member-id": {"memberId": "W123456789"},
        "discover_2": {"found": False},
    },
}


def test_is_path_recognises_single_dollar_only():
    assert is_path("$input.x")
    assert is_path("$5")  # meant as a path, and rejected as malformed by validation
    assert not is_path("$$5")
    assert not is_path("input.x")
    assert not is_path(5)


def test_parse_path_splits_keys_and_indexes():
    path = parse_path("$input.patient.addresses[1].lines[0]")
    assert path.root == "input"
    assert path.segments == ("patient", "addresses", 1, "lines", 0)
    assert path.state is None


def test_parse_path_reads_hyphenated_state_ids():
    path = parse_path("$states.collect-member-id.memberId")
    assert path.state == "collect-member-id"
    assert path.segments == ("collect-member-id", "memberId")


def test_parse_path_is_cached():
    parse_path.cache_clear()
    parse_path("$input.a")
    parse_path("$input.a")
    assert parse_path.cache_info().hits == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$inputs.x", "is not a path"),
        ("$", "is not a path"),
        ("$5", "write $$ for a literal"),
        ("$input.", "unexpected '.' at character 7"),
        ("$input..a", "unexpected '..a'"),
        ("$input.a b", "unexpected ' b'"),
        ("$input[-1]", "unexpected '[-1]'"),
        ("$input.a[x]", "unexpected '[x]'"),
        ("$states", "$states must name a state"),
        ("$states[0]", "$states must name a state"),
    ],
)
def test_parse_path_rejects_malformed_paths(text, message):
    with pytest.raises(PathError) as caught:
        parse_path(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$input.patient.firstName", "Ada"),
        ("$input.patient.addresses[0].zip", "02139"),
        ("$input.patient.addresses[1].lines[0]", "1 Main St"),
        ("$input.flags[1]", False),
        ("$input.patient.middleName", None),
        ("$states.collect-member-id.memberId", "W123456789"),
        ("$states.discover_2", {"found": False}),
        ("$input", CONTEXT["input"]),
    ],
)
def test_resolve_path_finds_values(path, expected):
    assert resolve_path(path, CONTEXT) == expected


@pytest.mark.parametrize(
    "path",
    [
        "$input.patient.lastName",  # absent key
        "$input.patient.addresses[2]",  # index past the end
        "$input.patient.addresses.zip",  # key on a list
        "$input.patient.firstName[0]",  # index on a string
        "$input.patient.firstName.length",  # key on a string
        "$input.patient.middleName.x",  # key on null
        "$states.verify.active",  # state that has not run
        "$response.found",  # no response outside a resultSelector
    ],
)
def test_resolve_path_is_missing_when_it_leads_nowhere(path):
    assert resolve_path(path, CONTEXT) is MISSING


def test_missing_is_falsy_and_not_none():
    assert not MISSING
    assert MISSING is not None
    assert repr(MISSING) == "MISSING"


def test_render_value_walks_objects_and_lists():
    value = {
        "name": "$input.patient.firstName",
        "zips": ["$input.patient.addresses[0].zip", "$input.nothing", "literal"],
        "nested": {"member": "$states.collect-member-id.memberId", "gone": "$input.nothing"},
        "count": 3,
        "source": "flowdesk",
    }
    assert render_value(value, CONTEXT) == {
        "name": "Ada",
        "zips": ["02139", None, "literal"],
        "nested": {"member": "W123456789"},
        "count": 3,
        "source": "flowdesk",
    }


def test_render_value_unescapes_a_leading_double_dollar():
    assert render_value("$$5", CONTEXT) == "$5"
    assert render_value("$$input.x", CONTEXT) == "$input.x"
    assert render_value({"price": "$$$5"}, CONTEXT) == {"price": "$$5"}
    assert render_value("costs $$5", CONTEXT) == "costs $$5"  # only a leading $ is special


def test_render_value_of_a_missing_path_is_missing():
    assert render_value("$input.nothing", CONTEXT) is MISSING


def test_render_value_keeps_null_values():
    assert render_value({"middle": "$input.patient.middleName"}, CONTEXT) == {"middle": None}


def test_project_builds_nested_objects_and_leaves_out_missing_values():
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "value": "$input.patient.firstName"},
            "coverage": {
                "type": "object",
                "properties": {
                    "memberId": {"value": "$states.collect-member-id.memberId"},
                    "payer": {"value": "$input.payer"},
                },
            },
            "empty": {"properties": {"x": {"value": "$input.nothing"}}},
            "source": {"value": "flowdesk"},
            "zips": {"value": ["$input.patient.addresses[0].zip"]},
            "absent": {"value": "$input.nothing"},
        },
    }
    assert project(schema, CONTEXT) == {
        "name": "Ada",
        "coverage": {"memberId": "W123456789"},
        "empty": {},
        "source": "flowdesk",
        "zips": ["02139"],
    }


def test_project_reads_response_when_given():
    schema = {"properties": {"found": {"value": "$response.found"}}}
    assert project(schema, {**CONTEXT, "response": {"found": True}}) == {"found": True}
    assert project(schema, CONTEXT) == {}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
KEY = st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True)


@given(value=JSON)
def test_render_value_leaves_dollar_free_data_unchanged(value):
    def has_dollar(item):
        if isinstance(item, str):
            return item.startswith("$")
        if isinstance(item, dict):
            return any(map(has_dollar, item.values()))
        if isinstance(item, list):
            return any(map(has_dollar, item))
        return False

    if not has_dollar(value):
        assert render_value(value, CONTEXT) == value


@given(keys=st.lists(KEY | st.integers(0, 3), min_size=1, max_size=5), leaf=JSON)
def test_resolve_path_finds_what_was_put_there(keys, leaf):
    data = leaf
    for key in reversed(keys):
        data = [None] * key + [data] if isinstance(key, int) else {key: data}
    text = "$input" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys)
    assert resolve_path(text, {"input": data, "states": {}}) == leaf
