"""Choice rules: data that compares a path's value, never code.

`evaluate_rule` assumes the rule passed validation (`rule_problems` is what validation uses), so
at run time it only ever answers True or False.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from flowspec.paths import MISSING, resolve_path

COMPARISONS: Final = (
    "equals",
    "notEquals",
    "in",
    "greaterThan",
    "lessThan",
    "isPresent",
    "matches",
)
COMBINATIONS: Final = ("all", "any", "not")
OPERATORS: Final = COMPARISONS + COMBINATIONS


def json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON sees it: `1 == 1.0`, but `1 != true` and `0 != false` (Python disagrees)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return type(left) is type(right) and bool(left == right)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ordered(value: Any, operand: Any, compare: Callable[[Any, Any], bool]) -> bool:
    """Order only like with like: numbers with numbers, strings with strings (ISO dates sort)."""
    if _is_number(value) and _is_number(operand):
        return compare(value, operand)
    if isinstance(value, str) and isinstance(operand, str):
        return compare(value, operand)
    return False


@functools.lru_cache(maxsize=1024)
def compiled(pattern: str) -> re.Pattern[str]:
    """Compile once per pattern: rules run on every step of every Run."""
    return re.compile(pattern)


def _compare(operator: str, value: Any, operand: Any) -> bool:
    """Apply one comparison operator to a value that is present."""
    match operator:
        case "equals":
            return json_equal(value, operand)
        case "notEquals":
            return not json_equal(value, operand)
        case "in":
            return any(json_equal(value, option) for option in operand)
        case "greaterThan":
            return _ordered(value, operand, lambda a, b: a > b)
        case "lessThan":
            return _ordered(value, operand, lambda a, b: a < b)
        case "isPresent":
            return operand is True
        case "matches":
            return isinstance(value, str) and compiled(operand).search(value) is not None
    raise ValueError(f"unknown rule operator {operator!r}")


def evaluate_rule(rule: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Whether `rule` holds in `context`. A missing path makes every comparison false, except
    `isPresent: false`, which is exactly the question "is it missing?"."""
    if "all" in rule:
        return all(evaluate_rule(part, context) for part in rule["all"])
    if "any" in rule:
        return any(evaluate_rule(part, context) for part in rule["any"])
    if "not" in rule:
        return not evaluate_rule(rule["not"], context)
    operator = _operator_of(rule)
    value = resolve_path(rule["path"], context)
    if value is MISSING:
        return operator == "isPresent" and rule[operator] is False
    return _compare(operator, value, rule[operator])


def _operator_of(rule: Mapping[str, Any]) -> str:
    found = [key for key in COMPARISONS if key in rule]
    if len(found) != 1:
        raise ValueError(f"a rule needs exactly one operator, found {found or 'none'}")
    return found[0]


def rule_problems(rule: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Shape problems of one rule (not of its sub-rules) as (key, message) pairs.

    The JSON Schema checks each key's type; what it cannot say clearly is "exactly one operator"
    and "path goes with a comparison, not with a combination", so that is checked here.
    """
    operators = [key for key in OPERATORS if key in rule]
    if len(operators) != 1:
        found = ", ".join(operators) if operators else "none"
        return [("", f"needs exactly one operator of {', '.join(OPERATORS)}; found {found}")]
    operator = operators[0]
    if operator in COMPARISONS and "path" not in rule:
        return [("path", f"is required with {operator}")]
    if operator in COMBINATIONS and "path" in rule:
        return [("path", f"is not used with {operator}")]
    if operator == "matches":
        try:
            compiled(rule["matches"])
        except re.error as error:
            return [("matches", f"is not a valid regular expression: {error}")]
    return []
