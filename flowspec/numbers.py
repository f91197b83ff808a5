"""Exact numbers: what a schema says about a number is checked on the number as written.

JSON numbers travel as Python floats (what `json.loads` gives and every JSON library reads),
and a float's shortest text (`repr`) is exactly the decimal that was written for every number of
up to 15 significant digits: `1234.57` is read, stored and sent as `1234.57`. What goes wrong is
arithmetic on the binary value: `1234.57 / 0.01` is `123456.99999999999`, so jsonschema's own
`multipleOf` refuses about one cent amount in nine. Here the check is done on the decimals
instead, exactly, and a number that a float cannot carry is refused where it is
read, so that nothing stored or sent is ever a rounded copy of what was given.
"""

from __future__ import annotations

import json
import math
import sys
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any


class InexactNumber(ValueError):
    """A JSON number that a float cannot hold exactly (too many digits, or out of range)."""

    def __init__(self, text: str) -> None:
        self.text = text
        shown = text if len(text) <= 40 else text[:37] + "..."
        super().__init__(
            f"the number {shown} cannot be kept exactly: "
            "send at most 15 significant digits, within ±1.7e308"
        )


def exact_float(text: str) -> float:
    """`parse_float` for `json.loads`: the float whose shortest text is the number written.

    `1234.570` and `1.23457e3` are that number too; `0.1000000000000000000001` is not (a float
    would silently round it to 0.1), nor is `1e999` (infinity), so both raise InexactNumber.
    """
    number = float(text)
    try:
        same = math.isfinite(number) and Decimal(repr(number)) == Decimal(text)
    except InvalidOperation:
        same = False
    if not same:
        raise InexactNumber(text)
    return number


def _constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


class TooDeep(ValueError):
    """JSON nested deeper than a reader accepts (a hostile body nests thousands deep)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the JSON is nested more than {limit} levels deep")


def exact_loads(text: str | bytes, *, max_depth: int | None = None) -> Any:
    """`json.loads` that refuses `NaN`, `Infinity` and numbers it would round (ValueError).

    With ``max_depth``, objects and lists nested deeper than that are refused too (TooDeep, a
    ValueError): data that deep would later exhaust the stack of whatever walks it (a schema
    validator, a page that shows it), far from here. Nesting deep enough to exhaust the parser's
    own stack is TooDeep whatever ``max_depth`` says, never a RecursionError. An integer of more
    than 4,300 digits is Python's ValueError.
    """
    try:
        value = json.loads(text, parse_float=exact_float, parse_constant=_constant)
    except RecursionError:
        raise TooDeep(max_depth or sys.getrecursionlimit()) from None
    if max_depth is not None and depth_exceeds(value, max_depth):
        raise TooDeep(max_depth)
    return value


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether objects and lists in ``value`` nest more than ``limit`` deep (a scalar is 0, `{}`
    is 1). Walked with a stack of its own, so that any depth can be measured."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def exact(value: Any) -> Decimal | None:
    """The exact value of a JSON number as written (a float by its shortest text), or None
    for what is not a finite number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    return None


def is_multiple(value: Any, step: Any) -> bool:
    """`value` is a whole multiple of `step`, in decimal: 1234.57 of 0.01 is, 0.3 of 0.2 is not."""
    number, unit = exact(value), exact(step)
    if number is None or unit is None:
        return False
    if unit == 0:  # the meta-schema forbids it; a schema stored unchecked must not crash us
        return number == 0
    if number == 0:
        return True
    # The remainder is exact when the whole quotient fits in the context's precision.
    digits = number.adjusted() - unit.adjusted() + 2
    with localcontext(prec=max(28, digits)):
        return number % unit == 0
