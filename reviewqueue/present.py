"""Values for people: the one layer that turns JSON, codes and moments into what staff read.

Templates reach it through the filters in ``templatetags/reviewqueue_tags.py``; selectors call it
for the rows of the side column. Nothing shown to staff is ``{{ value }}`` of raw JSON:

- a value is read with its schema: a `oneOf` code by its title, money by the schema's
  ``x-display`` (docs/template-language.md), a boolean as Yes/No, a date in one format;
- an object or a list of objects becomes labelled rows (`Diagnoses 1 › Code`), never a dict;
- a moment is shown in the current time zone (the person's, else the site's, activated by
  ``config.middleware.time_zone``) and always names it: `Dec 5, 14:03 EST`.
"""

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import Any, Final

from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_date, parse_datetime

import flowspec
from reviewqueue.schema_forms.labels import title_of, value_title

# The schema keyword a template author uses to say how a number reads (our annotation: JSON
# Schema validators ignore it). `cents`: an integer count of cents; `dollars`: a number of them.
DISPLAY: Final = "x-display"
DISPLAYS: Final = ("cents", "dollars")

EMPTY: Final = "—"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A moment as JSON carries it: a date, a time and an offset (or Z). Without an offset it is
# not a moment anywhere in particular, so it is shown as written.
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})")

# --- One value -----------------------------------------------------------------------------------


def value(data: Any, schema: Any = None) -> str:
    """One JSON value as a person reads it, in the light of the schema that describes it."""
    schema = schema if isinstance(schema, Mapping) else {}
    title = value_title(schema, data)
    if title is not None:
        return title
    if data is None or data == "" or data == [] or data == {}:
        return EMPTY
    if isinstance(data, bool):
        return "Yes" if data else "No"
    if isinstance(data, int | float | Decimal):
        return _number(data, schema.get(DISPLAY))
    if isinstance(data, str):
        return _text(data, schema.get("format"))
    if isinstance(data, list):
        return ", ".join(value(item, schema.get("items")) for item in data)
    if isinstance(data, Mapping):
        return "; ".join(f"{label}: {shown}" for label, shown in rows(schema, data))
    return str(data)


def money(amount: Decimal) -> str:
    """`$1,234.57`; a negative amount `-$12.00`."""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount).quantize(Decimal('0.01')):,}"


def _number(number: int | float | Decimal, display: Any) -> str:
    if display == "cents" and (isinstance(number, int) or _whole(number)):
        return money(Decimal(int(number)) / 100)
    if display == "dollars":
        return money(_decimal(number))
    if isinstance(number, int):
        # No thousands separators: numbers in a Run are as often ids (a claim number) as amounts.
        return str(number)
    # The decimal text of the JSON number, never `1e-05` or `19.990000000000002`.
    return format(_decimal(number).normalize(), "f")


def _decimal(number: int | float | Decimal) -> Decimal:
    try:
        return number if isinstance(number, Decimal) else Decimal(str(number))
    except InvalidOperation:  # inf or nan cannot reach JSON, but a float could be one
        return Decimal(0)


def _whole(number: float | Decimal) -> bool:
    return _decimal(number) == _decimal(number).to_integral_value()


def _text(text: str, fmt: Any) -> str:
    """A string; a date or a moment in the one format people read everywhere."""
    if fmt in ("date", None) and _DATE.fullmatch(text):
        try:
            parsed = parse_date(text)
        except ValueError:  # 2024-02-30: well formed, not a date
            parsed = None
        if parsed is not None:
            return day(parsed)
    if fmt in ("date-time", None) and _MOMENT.fullmatch(text):
        try:
            moment_ = parse_datetime(text)
        except ValueError:
            moment_ = None
        if moment_ is not None:
            return moment(moment_)
    return text


# --- Objects and lists as labelled rows ----------------------------------------------------------


def rows(schema: Any, data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(label, value) rows for a JSON value: objects are walked (`Patient › First name`), a list
    of objects numbers its entries (`Diagnoses 2 › Code`), everything else is one row."""
    return [(label, value(found, sub)) for label, found, sub in _leaves(schema, data, prefix)]


# --- What a page shows of a Run's data -----------------------------------------------------------

# A Run's input, a step's result and its output come from Flows and have no size of their own:
# an input of 2 MB (or of 100,000 small values) was rendered in full and the page took seconds
# and megabytes. A page shows at most this much of each, and says what it left out.
SHOWN_ROWS: Final = 200  # rows of one part (the input, one step's result, the output)
SHOWN_CHARS: Final = 2_000  # characters of one value
SHOWN_DEPTH: Final = 20  # levels of nesting walked; deeper values are named, not shown
TOO_DEEP: Final = "(nested too deeply to show)"


def truncated(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text``, or its first ``limit`` characters and how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (truncated, {len(text) - limit:,} more characters)"


def value_shown(data: Any, schema: Any = None) -> str:
    """``value`` for a page: at most SHOWN_CHARS characters, and a long list is formatted only
    as far as it can be shown."""
    if data is _TOO_DEEP:
        return TOO_DEEP
    if isinstance(data, list) and len(data) > SHOWN_ROWS:
        shown = value(data[:SHOWN_ROWS], schema)
        more = len(data) - SHOWN_ROWS
        return f"{truncated(shown)}… (truncated, {more:,} more items)"
    return truncated(value(data, schema))


def shown_rows(
    schema: Any, data: Any, prefix: str = "", *, limit: int = SHOWN_ROWS
) -> list[tuple[str, str]]:
    """``rows`` for a page: at most ``limit`` rows of at most SHOWN_CHARS characters, then one
    row that says how many more values there are."""
    leaves = _leaves(schema, data, prefix, depth_left=SHOWN_DEPTH)
    shown = [(label, value_shown(found, sub)) for label, found, sub in islice(leaves, limit)]
    more = sum(1 for _ in leaves)
    if more:
        shown.append(("…", f"(truncated, {more:,} more values)"))
    return shown


_TOO_DEEP: Final = object()


def _leaves(
    schema: Any, data: Any, prefix: str, depth_left: int | None = None
) -> Iterator[tuple[str, Any, Any]]:
    """(label, value, its schema) for each row of ``rows``, lazily, so that a page can stop."""
    schema = schema if isinstance(schema, Mapping) else {}
    nested = isinstance(data, Mapping) or (
        isinstance(data, list) and any(isinstance(entry, Mapping | list) for entry in data)
    )
    if nested and depth_left is not None and depth_left <= 0:
        yield (prefix or "Value", _TOO_DEEP, None)
        return
    deeper = None if depth_left is None else depth_left - 1
    if isinstance(data, Mapping):
        properties = flowspec.declared_properties(schema)
        for key, sub in data.items():
            label = title_of(key, properties.get(key, {}))
            yield from _leaves(
                properties.get(key), sub, f"{prefix} › {label}" if prefix else label, deeper
            )
    elif nested:
        for index, entry in enumerate(data, start=1):
            yield from _leaves(schema.get("items"), entry, f"{prefix} {index}".strip(), deeper)
    else:
        yield (prefix or "Value", data, schema)


# --- Moments and spans ---------------------------------------------------------------------------


def day(value_: date) -> str:
    """A calendar date: `Jan 31, 2024`."""
    return date_format(value_, "M j, Y")


def moment(value_: datetime | None, *, now: datetime | None = None) -> str:
    """A moment in the current time zone, naming it: `Dec 5, 14:03 EST` (the year too when it is
    not this year's). A moment without a zone is taken as UTC, as Django stores them."""
    if value_ is None:
        return EMPTY
    if timezone.is_naive(value_):
        value_ = timezone.make_aware(value_, UTC)
    local = timezone.localtime(value_)
    this_year = timezone.localtime(now or timezone.now()).year
    return date_format(local, "M j, H:i T" if local.year == this_year else "M j, Y, H:i T")


def span(seconds: float) -> str:
    """A length of time, as coarse as people say it: `40 min`, `3 h 20 min`, `2 d 4 h`."""
    minutes = max(1, int(abs(seconds) // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        # Past ten hours the minutes are noise.
        return f"{hours} h {minutes} min" if minutes and hours < 10 else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours and days < 3 else f"{days} d"


def due(value_: datetime | None, *, now: datetime | None = None) -> str:
    """A due time read from now: `due in 3 h`, `overdue 20 min`, `due now` within a minute."""
    if value_ is None:
        return ""
    left = (value_ - (now or timezone.now())).total_seconds()
    if abs(left) < 60:
        return "due now"
    return f"due in {span(left)}" if left > 0 else f"overdue {span(left)}"


def age(value_: datetime | None, *, now: datetime | None = None) -> str:
    """How long ago something began: `3 h 20 min` (at least a minute)."""
    if value_ is None:
        return EMPTY
    return span(((now or timezone.now()) - value_).total_seconds())
