"""reviewqueue.present: values for people. Money where the schema says so, Yes/No, codes by
their titles, one date format, nested values as labelled rows, moments in the active zone with
its name, and due times read from now."""

import zoneinfo
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from reviewqueue import present

CENTS = {"type": "integer", "x-display": "cents"}
DOLLARS = {"type": "number", "x-display": "dollars"}
PAYER = {
    "type": "string",
    "oneOf": [
        {"const": "60054", "title": "Aetna"},
        {"const": "87726", "title": "UnitedHealthcare"},
    ],
}
NOW = datetime(2026, 12, 5, 19, 3, tzinfo=UTC)
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


@pytest.fixture
def new_york():
    timezone.activate(NEW_YORK)
    yield
    timezone.deactivate()


@pytest.mark.parametrize(
    ("data", "schema", "expected"),
    [
        (123457, CENTS, "$1,234.57"),
        (7, CENTS, "$0.07"),
        (0, CENTS, "$0.00"),
        (-1200, CENTS, "-$12.00"),
        (199900.0, CENTS, "$1,999.00"),  # a whole float, as some JSON writers send integers
        (19.99, DOLLARS, "$19.99"),
        (Decimal("1234.57"), DOLLARS, "$1,234.57"),
        (1500, DOLLARS, "$1,500.00"),
        # Without the schema's word a number is shown as it is: it may be an id.
        (123457, {"type": "integer"}, "123457"),
        (19.99, None, "19.99"),
        (1e-05, None, "0.00001"),
        # Cents that are not whole are not cents: shown as written, never rounded away.
        (12.5, CENTS, "12.5"),
    ],
)
def test_money_reads_as_dollars_where_the_schema_says_so(data, schema, expected):
    assert present.value(data, schema) == expected


def test_booleans_read_yes_and_no():
    assert present.value(True) == "Yes"
    assert present.value(False, {"type": "boolean"}) == "No"


def test_a_code_reads_as_its_title_and_an_unknown_code_as_itself():
    assert present.value("60054", PAYER) == "Aetna"
    assert present.value("99999", PAYER) == "99999"
    # Lists of codes, each by its title.
    assert present.value(["60054", "87726"], {"type": "array", "items": PAYER}) == (
        "Aetna, UnitedHealthcare"
    )


def test_nothing_reads_as_a_dash():
    for empty in (None, "", [], {}):
        assert present.value(empty) == present.EMPTY


def test_dates_read_in_one_format():
    assert present.value("2024-01-31", {"type": "string", "format": "date"}) == "Jan 31, 2024"
    # A result without a schema still carries dates.
    assert present.value("1980-02-29") == "Feb 29, 1980"
    assert present.day(date(2027, 1, 15)) == "Jan 15, 2027"
    # Well formed but not a date, or a string whose schema says it is something else: as written.
    assert present.value("2024-02-30") == "2024-02-30"
    assert present.value("2024-01-31", {"type": "string", "pattern": "^.*$", "format": "x"}) == (
        "2024-01-31"
    )


def test_a_moment_in_a_value_reads_in_the_active_zone(new_york):
    with_zone = present.value("2024-01-31T15:00:00Z", {"type": "string", "format": "date-time"})
    assert with_zone == "Jan 31, 2024, 10:00 EST"
    # Without an offset it is no moment anywhere: shown as written.
    assert present.value("2024-01-31T15:00:00") == "2024-01-31T15:00:00"


def test_moments_name_their_zone(new_york):
    assert present.moment(NOW, now=NOW) == "Dec 5, 14:03 EST"
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert present.moment(summer, now=NOW) == "Jul 1, 08:00 EDT"
    # Another year says which.
    assert present.moment(NOW - timedelta(days=365), now=NOW) == "Dec 5, 2025, 14:03 EST"
    assert present.moment(None) == present.EMPTY


def test_moments_in_the_site_zone_by_default():
    assert present.moment(NOW, now=NOW) == "Dec 5, 19:03 UTC"


def test_nested_values_read_as_labelled_rows_never_a_dict():
    schema = {
        "type": "object",
        "properties": {
            "patient": {
                "title": "Patient",
                "properties": {"firstName": {"title": "First name"}, "active": {}},
            },
            "diagnoses": {
                "type": "array",
                "items": {"properties": {"code": {"title": "Code"}, "primary": {}}},
            },
            "copay": CENTS,
        },
    }
    data = {
        "patient": {"firstName": "Maria", "active": True},
        "diagnoses": [{"code": "M17.11", "primary": True}, {"code": "E11.9", "primary": False}],
        "copay": 2500,
        "extra": {"note": None},
    }
    assert present.rows(schema, data) == [
        ("Patient › First name", "Maria"),
        ("Patient › Active", "Yes"),
        ("Diagnoses 1 › Code", "M17.11"),
        ("Diagnoses 1 › Primary", "Yes"),
        ("Diagnoses 2 › Code", "E11.9"),
        ("Diagnoses 2 › Primary", "No"),
        ("Copay", "$25.00"),
        ("Extra › Note", present.EMPTY),
    ]
    shown = present.value(data, schema)
    assert "{" not in shown and "'" not in shown


def test_rows_find_the_fields_of_a_conditional_branch():
    schema = {
        "type": "object",
        "properties": {"decision": {"title": "Decision"}},
        "allOf": [
            {
                "if": {"properties": {"decision": {"const": "deny"}}},
                "then": {
                    "properties": {
                        "reason": {
                            "title": "Denial reason",
                            "oneOf": [
                                {"const": "nmn", "title": "Not medically necessary"},
                            ],
                        }
                    }
                },
            }
        ],
    }
    assert present.rows(schema, {"decision": "deny", "reason": "nmn"}) == [
        ("Decision", "deny"),
        ("Denial reason", "Not medically necessary"),
    ]


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(hours=3), "due in 3 h"),
        (timedelta(hours=3, minutes=20), "due in 3 h 20 min"),
        (timedelta(minutes=45), "due in 45 min"),
        (timedelta(seconds=20), "due now"),
        (timedelta(seconds=61), "due in 1 min"),
        (timedelta(hours=30), "due in 1 d 6 h"),
        (timedelta(days=5, hours=2), "due in 5 d"),
        (timedelta(hours=12, minutes=5), "due in 12 h"),
        (-timedelta(minutes=20), "overdue 20 min"),
        (-timedelta(hours=2, minutes=1), "overdue 2 h 1 min"),
        (timedelta(0), "due now"),
        (-timedelta(seconds=61), "overdue 1 min"),
    ],
)
def test_due_times_read_from_now(delta, expected):
    assert present.due(NOW + delta, now=NOW) == expected


def test_age_reads_how_long_since():
    assert present.age(NOW - timedelta(hours=3, minutes=20), now=NOW) == "3 h 20 min"
    assert present.age(NOW, now=NOW) == "1 min"
    assert present.age(None) == present.EMPTY
