"""Numbers are checked in decimal: `multipleOf: 0.01` takes every amount in cents, the way the
template author wrote it, in publication, the engine and the forms alike."""

import json
from decimal import Decimal

import pytest

import flowspec
from flowspec import numbers

MONEY = {"type": "object", "properties": {"amount": {"type": "number", "multipleOf": 0.01}}}


def cents(low: int, high: int) -> list[str]:
    """`0.00` … as typed, every cent from low to high (in cents)."""
    return [f"{c // 100}.{c % 100:02d}" for c in range(low, high + 1)]


def test_every_cent_to_two_hundred_dollars_is_a_multiple_of_a_cent():
    # (tests/reviewqueue/test_schema_forms_numbers.py sweeps to 2,000.00 through the form.)
    validator = flowspec.input_validator(MONEY)
    refused = [text for text in cents(0, 20_000) if not validator.is_valid({"amount": float(text)})]
    assert refused == []


@pytest.mark.parametrize("amount", [1234.57, 19.99, 0.07, 0.29, 1.1, 4.35])
def test_amounts_binary_floats_get_wrong_are_accepted(amount):
    assert flowspec.input_errors(MONEY, {"amount": amount}) == []


@pytest.mark.parametrize(
    ("amount", "step"),
    [(1234.575, 0.01), (0.001, 0.01), (1.25, 0.5), (0.3, 0.2), (10**20 + 1, 2), (7, 0.5 + 1)],
)
def test_what_is_not_a_multiple_is_still_refused(amount, step):
    schema = {"type": "number", "multipleOf": step}
    errors = flowspec.input_errors(schema, amount)
    assert errors == [("", f"{amount!r} is not a multiple of {step!r}")]


@pytest.mark.parametrize(
    ("amount", "step"),
    [(0.3, 0.1), (1e300, 0.01), (1e-7, 1e-7), (2, 0.5), (10**30, 7 * 10**29 / 7), (-19.99, 0.01)],
)
def test_exact_multiples_of_any_size_pass(amount, step):
    assert flowspec.input_validator({"multipleOf": step}).is_valid(amount)


def test_a_decimal_is_checked_as_the_number_it_is():
    validator = flowspec.input_validator(MONEY)
    assert validator.is_valid({"amount": Decimal("1234.57")})
    assert not validator.is_valid({"amount": Decimal("1234.571")})


@pytest.mark.parametrize("text", ["1234.57", "0.07", "1e-7", "12345678901234.5", "-0.0", "1E+2"])
def test_a_number_a_double_carries_is_read_as_that_double(text):
    assert numbers.exact_float(text) == float(text)


@pytest.mark.parametrize(
    "text", ["0.1000000000000000000001", "1234.5700000000000001", "1e400", "-1e999"]
)
def test_a_number_a_double_cannot_carry_is_refused_not_rounded(text):
    with pytest.raises(numbers.InexactNumber):
        numbers.exact_float(text)


def test_exact_loads_reads_json_without_rounding_and_refuses_what_it_would_round():
    assert numbers.exact_loads('{"a": 1234.57, "b": [1, 2.50]}') == {"a": 1234.57, "b": [1, 2.5]}
    for text in ('{"a": NaN}', '{"a": Infinity}', '{"a": 1e999}', '{"a": 0.10000000000000000001}'):
        with pytest.raises(ValueError):
            numbers.exact_loads(text)


def test_what_is_read_is_written_back_as_the_same_number():
    for text in cents(0, 20_000):
        written = json.dumps(numbers.exact_loads(text))
        assert Decimal(written) == Decimal(text)
