"""Choice rules: every operator, JSON-strict equality, and missing paths."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowspec import evaluate_rule
from flowspec.rules import json_equal, rule_problems

CONTEXT = {
    "input": {
        "plan": "gold",
        "count": 1,
        "ratio": 1.0,
        "active": True,
        "zero": 0,
        "dob": "1990-05-01",
        "nothing": None,
        "tags": ["a", "b"],
        "member": {"id": "W1"},
    },
    "states": {"verify": {"active": False, "copay": 25}},
}


def holds(rule):
    return evaluate_rule(rule, CONTEXT)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"path": "$input.plan", "equals": "gold"}, True),
        ({"path": "$input.plan", "equals": "silver"}, False),
        ({"path": "$input.count", "equals": 1}, True),
        ({"path": "$input.count", "equals": 1.0}, True),  # one JSON number
        ({"path": "$input.count", "equals": True}, False),  # 1 is not true
        ({"path": "$input.active", "equals": 1}, False),
        ({"path": "$input.zero", "equals": False}, False),
        ({"path": "$input.active", "equals": True}, True),
        ({"path": "$input.nothing", "equals": None}, True),
        ({"path": "$input.tags", "equals": ["a", "b"]}, True),
        ({"path": "$input.member", "equals": {"id": "W1"}}, True),
        ({"path": "$input.member", "equals": {"id": "W1", "x": 1}}, False),
        ({"path": "$states.verify.active", "equals": False}, True),
    ],
)
def test_equals_is_json_strict(rule, expected):
    assert holds(rule) is expected


def test_not_equals():
    assert holds({"path": "$input.plan", "notEquals": "silver"})
    assert not holds({"path": "$input.plan", "notEquals": "gold"})
    assert holds({"path": "$input.count", "notEquals": True})


def test_in():
    assert holds({"path": "$input.plan", "in": ["silver", "gold"]})
    assert not holds({"path": "$input.plan", "in": ["silver"]})
    assert not holds({"path": "$input.count", "in": [True, "1"]})
    assert not holds({"path": "$input.plan", "in": []})


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"path": "$states.verify.copay", "greaterThan": 20}, True),
        ({"path": "$states.verify.copay", "greaterThan": 25}, False),
        ({"path": "$states.verify.copay", "lessThan": 25.5}, True),
        ({"path": "$input.dob", "lessThan": "2000-01-01"}, True),
        ({"path": "$input.dob", "greaterThan": "2000-01-01"}, False),
        ({"path": "$states.verify.copay", "greaterThan": "20"}, False),  # number vs string
        ({"path": "$input.plan", "lessThan": 5}, False),
        ({"path": "$input.active", "greaterThan": 0}, False),  # booleans are not numbers
        ({"path": "$input.count", "lessThan": True}, False),
        ({"path": "$input.nothing", "lessThan": 1}, False),
        ({"path": "$input.tags", "greaterThan": 1}, False),
    ],
)
def test_greater_than_and_less_than_compare_like_with_like(rule, expected):
    assert holds(rule) is expected


def test_is_present():
    assert holds({"path": "$input.plan", "isPresent": True})
    assert not holds({"path": "$input.plan", "isPresent": False})
    assert holds({"path": "$input.nothing", "isPresent": True})  # null is a value
    assert holds({"path": "$input.absent", "isPresent": False})
    assert not holds({"path": "$input.absent", "isPresent": True})


def test_matches():
    assert holds({"path": "$input.member.id", "matches": "^W[0-9]+$"})
    assert holds({"path": "$input.plan", "matches": "ol"})  # search, not fullmatch
    assert not holds({"path": "$input.plan", "matches": "^ol"})
    assert not holds({"path": "$input.count", "matches": "1"})  # only strings match


@pytest.mark.parametrize(
    "operator",
    [
        {"equals": None},
        {"notEquals": "x"},
        {"in": [None]},
        {"greaterThan": 0},
        {"lessThan": 0},
        {"isPresent": True},
        {"matches": ".*"},
    ],
)
def test_a_missing_path_makes_every_comparison_false(operator):
    assert not holds({"path": "$input.absent.deeper", **operator})
    assert not holds({"path": "$states.never-ran.x", **operator})


def test_combinations():
    gold = {"path": "$input.plan", "equals": "gold"}
    silver = {"path": "$input.plan", "equals": "silver"}
    assert holds({"all": [gold, {"path": "$input.active", "equals": True}]})
    assert not holds({"all": [gold, silver]})
    assert holds({"any": [silver, gold]})
    assert not holds({"any": [silver]})
    assert holds({"not": silver})
    assert not holds({"not": gold})
    assert holds({"not": {"any": [silver, {"not": gold}]}})


def test_evaluate_rule_refuses_a_rule_without_an_operator():
    with pytest.raises(ValueError, match="exactly one operator"):
        holds({"path": "$input.plan"})


@pytest.mark.parametrize(
    ("rule", "problems"),
    [
        ({"path": "$input.x", "equals": 1}, []),
        ({"all": [{"path": "$input.x", "equals": 1}]}, []),
        ({"path": "$input.x"}, [("", "needs exactly one operator of")]),
        ({"equals": 1, "in": [1]}, [("", "found equals, in")]),
        ({"equals": 1}, [("path", "is required with equals")]),
        ({"path": "$input.x", "not": {"equals": 1}}, [("path", "is not used with not")]),
        ({"path": "$input.x", "matches": "("}, [("matches", "is not a valid regular expression")]),
    ],
)
def test_rule_problems(rule, problems):
    found = rule_problems(rule)
    assert len(found) == len(problems)
    for (key, message), (expected_key, expected_message) in zip(found, problems, strict=True):
        assert key == expected_key
        assert expected_message in message


def test_json_equal():
    assert json_equal(1, 1.0)
    assert not json_equal(1, True)
    assert not json_equal(0, False)
    assert not json_equal("1", 1)
    assert not json_equal([1], [True])
    assert not json_equal({"a": 1}, {"a": True})
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal(None, False)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=15,
)
PATHS = st.sampled_from(["$input.a", "$input.a.b", "$input.a[0]", "$states.s.x", "$input"])


def comparisons(operand: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.builds(lambda p, v: {"path": p, "equals": v}, PATHS, operand),
        st.builds(lambda p, v: {"path": p, "notEquals": v}, PATHS, operand),
        st.builds(lambda p, v: {"path": p, "in": v}, PATHS, st.lists(operand, max_size=3)),
        st.builds(
            lambda p, v: {"path": p, "greaterThan": v},
            PATHS,
            st.integers() | st.floats() | st.text(),
        ),
        st.builds(
            lambda p, v: {"path": p, "lessThan": v}, PATHS, st.integers() | st.floats() | st.text()
        ),
        st.builds(lambda p, v: {"path": p, "isPresent": v}, PATHS, st.booleans()),
        st.builds(
            lambda p, v: {"path": p, "matches": v}, PATHS, st.sampled_from(["", "^a", "[0-9]+$"])
        ),
    )


RULES = st.recursive(
    comparisons(JSON),
    lambda children: (
        st.builds(lambda rules: {"all": rules}, st.lists(children, min_size=1))
        | st.builds(lambda rules: {"any": rules}, st.lists(children, min_size=1))
        | st.builds(lambda rule: {"not": rule}, children)
    ),
    max_leaves=6,
)


@given(rule=RULES, value=JSON, state=JSON)
def test_evaluate_rule_answers_a_bool_for_any_json_data(rule, value, state):
    assert rule_problems(rule) == []
    context = {"input": {"a": value}, "states": {"s": state}}
    assert evaluate_rule(rule, context) in (True, False)


@given(rule=comparisons(JSON))
def test_not_is_the_negation_of_its_rule(rule):
    context = {"input": {"a": {"b": 1}}, "states": {}}
    assert evaluate_rule({"not": rule}, context) is not evaluate_rule(rule, context)
