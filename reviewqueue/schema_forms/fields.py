"""The form fields of schema forms: each parses what was typed into the JSON value to send.

`clean()` returns the JSON value, or `EMPTY` when nothing was answered; `display()` turns a JSON
value back into what the widget shows, so that an answer round-trips exactly.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

import flowspec
from flowspec import numbers
from flowspec.renderable import Option

EMPTY: Final = flowspec.MISSING
"""No answer: the key is left out of the JSON (distinct from None, which is JSON null)."""

# Names


def escape_key(key: str) -> str:
    """A property name as one part of a field name (JSON Pointer's escapes, `.` for `/`)."""
    return key.replace("~", "~0").replace(".", "~1")


def field_name(path: tuple[str | int, ...]) -> str:
    """`("diagnoses", 0, "code")` → `"diagnoses.0.code"`: stable across renders and versions."""
    return ".".join(str(part) if isinstance(part, int) else escape_key(part) for part in path)


def html_id(name: str) -> str:
    """An element id for a node, safe in a CSS selector (`#sf-diagnoses-0`) for hx-target."""
    encoded = "".join(
        c if c.isascii() and c.isalnum() else "-" if c == "." else f"_{ord(c):x}_" for c in name
    )
    return f"sf-{encoded}" if name else "sf-root"


def humanize(key: str) -> str:
    """`dateOfBirth` → `Date of birth`: a label for a property without a title."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[_-]+", " ", key).split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:] if text else key


# Fields: each parses what was typed into the JSON value, or EMPTY for no answer.


class TextField(forms.CharField):
    """Text kept as typed (no stripping, so values round-trip), line breaks as `\\n`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strip=False, empty_value=EMPTY, **kwargs)  # type: ignore[arg-type]

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        return value.replace("\r\n", "\n") if isinstance(value, str) else value

    def display(self, value: Any) -> Any:
        return value if isinstance(value, str) else json.dumps(value)


# The schema keyword a template author uses to mark a signature (our annotation, like
# `x-display`: validators ignore it): a string the form fills with the signed-in person's name.
SIGNATURE: Final = "x-signature"


class SignatureField(TextField):
    """A signature: the signed-in person's name (``signer``), never what a request carries.

    Shown read-only, and what is posted for it is ignored rather than checked, so neither an
    edited page nor a crafted POST can sign in another name. A form built with nobody signed in
    (``signer`` None: a benchmark, a property test) treats it as `readOnly`: its initial value.
    """

    def __init__(self, *, signer: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.signer = signer
        self.widget.attrs["readonly"] = True
        self.disabled = signer is None

    def bound_data(self, data: Any, initial: Any) -> Any:
        return initial if self.signer is None else self.signer

    def has_changed(self, initial: Any, data: Any) -> bool:
        return False

    def clean(self, value: Any) -> Any:
        return super().clean(value if self.signer is None else self.signer)


def _utc(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class FormattedField(TextField):
    """A string `format`. Date-times and times are entered in UTC through the browser's pickers
    (which know no offsets) and sent as RFC 3339 with `Z`; a date is sent exactly as typed."""

    MESSAGES: Final = {
        "date": "Enter a date like 2026-03-14.",
        "date-time": "Enter a date and time like 2026-03-14 09:30.",
        "time": "Enter a time like 09:30.",
        "email": "Enter an email address like name@example.com.",
        "uri": "Enter a full web address like https://example.com.",
        "uuid": "Enter an ID like 123e4567-e89b-12d3-a456-426614174000.",
    }

    def __init__(self, *, fmt: str, **kwargs: Any) -> None:
        self.fmt = fmt
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        if value is EMPTY:
            return value
        parsed = self._parse(value.strip())
        if parsed is None:
            raise ValidationError(self.MESSAGES[self.fmt], code="invalid")
        return parsed

    def _parse(self, text: str) -> str | None:
        match self.fmt:
            case "date":
                ok = re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) and _is_date(text)
                return text if ok else None
            case "date-time":
                if not re.fullmatch(
                    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}:\d{2})?",
                    text,
                ):
                    return None
                moment = _utc(text.replace(" ", "T"))
                return _rfc3339(moment) if moment else None
            case "time":
                if not re.fullmatch(r"\d{2}:\d{2}(:\d{2})?(Z|z|[+-]\d{2}:\d{2})?", text):
                    return None
                moment = _utc(f"2000-01-01T{text}")
                return _rfc3339(moment)[11:] if moment else None
            case "email":
                return text if re.fullmatch(r"[^@\s]+@[^@\s]+", text) else None
            case "uri":
                parts = urlsplit(text)
                scheme_ok = re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme) is not None
                return text if scheme_ok and not re.search(r"\s", text) else None
            case "uuid":
                try:
                    uuid.UUID(text)
                except ValueError:
                    return None
                return text if re.fullmatch(r"[0-9a-fA-F-]{36}", text) else None
        return text

    def display(self, value: Any) -> Any:
        if not isinstance(value, str):
            return super().display(value)
        if self.fmt == "date-time" and (moment := _utc(value)):
            return _rfc3339(moment)[:-1]
        if self.fmt == "time" and (moment := _utc(f"2000-01-01T{value}")):
            return _rfc3339(moment)[11:-1]
        return value


def _rfc3339(moment: datetime) -> str:
    """`2026-03-14T09:30:00Z`; isoformat, unlike strftime, always writes four-digit years."""
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


# The only text a number input submits (HTML's "valid floating-point number"): no `+`, no
# spaces inside, no `Infinity`. Anything else came from something other than the widget.
HTML_NUMBER = re.compile(r"-?(\d+|\d*\.\d+)([eE][-+]?\d+)?")


class IntegerField(forms.Field):
    """A whole number, sent as a JSON integer."""

    default_error_messages: ClassVar[dict[str, Any]] = {"invalid": "Enter a whole number, like 12."}

    def to_python(self, value: Any) -> Any:
        text = str(value).strip() if value is not None else ""
        if not text:
            return EMPTY
        # `3.0` is the integer 3 in JSON Schema, and a number input lets it be typed.
        whole = re.fullmatch(r"(-?\d{1,300})(\.0*)?", text)
        if not whole:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return int(whole.group(1))

    def display(self, value: Any) -> Any:
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


class NumberField(forms.Field):
    """A number: written without a decimal point it is sent as an integer, otherwise as a float
    whose JSON is the number typed (`12.5`, `1234.57`; see flowspec.numbers). A number with
    more digits than a float keeps is refused rather than sent rounded."""

    default_error_messages: ClassVar[dict[str, Any]] = {
        "invalid": "Enter a number, like 12.50.",
        "inexact": "Enter at most 15 significant digits.",
    }

    def to_python(self, value: Any) -> Any:
        text = str(value).strip() if value is not None else ""
        if not text:
            return EMPTY
        if HTML_NUMBER.fullmatch(text) is None:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or len(text) > 300:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        if not math.isfinite(float(number)):  # 1e999 is a finite Decimal but no JSON number
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            return numbers.exact_float(text)
        except numbers.InexactNumber:
            raise ValidationError(self.error_messages["inexact"], code="inexact") from None

    def display(self, value: Any) -> Any:
        return repr(value) if isinstance(value, float) else str(value)


class CheckboxInput(forms.CheckboxInput):
    """Django's checkbox, read strictly: the value as posted (None when unticked), where Django
    would turn any text but "false" and "0" into true. (Named like Django's, so templates still
    see `widget_type == "checkbox"`.)"""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, check_test=lambda value: value is True or value == TICKED)

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return data.get(name)


TICKED: Final = "on"
"""What a ticked checkbox sends: it is rendered without a value attribute, so "on"."""


class CheckboxField(forms.BooleanField):
    """A required boolean (or one with a default): ticked is true, unticked is false; any
    other value is one the checkbox cannot send, so an error rather than a guess."""

    widget = CheckboxInput
    default_error_messages: ClassVar[dict[str, Any]] = {
        "invalid": "Tick the box or leave it empty."
    }

    def to_python(self, value: Any) -> Any:
        if value is None or value is False:
            return False
        if value is True or value == TICKED:
            return True
        raise ValidationError(self.error_messages["invalid"], code="invalid")

    def display(self, value: Any) -> Any:
        return value is True


CHOICE_MESSAGES: Final[dict[str, Any]] = {
    "invalid_choice": "Choose one of the options.",
    "invalid_list": "Choose one or more of the options.",
}


class YesNoField(forms.ChoiceField):
    """An optional boolean: Yes, No, or not answered, so false and "no answer" stay apart."""

    default_error_messages = CHOICE_MESSAGES

    def __init__(self, *, required: bool, **kwargs: Any) -> None:
        choices = [("true", "Yes"), ("false", "No")]
        if not required:
            choices.append(("", "Not answered"))
        super().__init__(choices=choices, required=required, **kwargs)

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        return EMPTY if value in ("", None) else value == "true"

    def display(self, value: Any) -> Any:
        return {True: "true", False: "false"}.get(value, "")


class Choices:
    """The options of an enum as form values: the string itself when every option is a
    non-empty string (readable in the page and in tests), otherwise the option's JSON text."""

    def __init__(self, options: tuple[Option, ...]) -> None:
        self.options = options
        self.raw = all(isinstance(o.value, str) and o.value for o in options)

    def encode(self, value: Any) -> str:
        return value if self.raw else json.dumps(value, sort_keys=True)

    def decode(self, text: str) -> Any:
        return text if self.raw else json.loads(text)

    def pairs(self) -> list[tuple[str, str]]:
        return [(self.encode(o.value), o.label) for o in self.options]


class ChoiceField(forms.ChoiceField):
    default_error_messages = CHOICE_MESSAGES

    def __init__(self, *, choices: Choices, blank: str | None, **kwargs: Any) -> None:
        self.options = choices
        pairs = choices.pairs()
        super().__init__(choices=[("", blank), *pairs] if blank else pairs, **kwargs)

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        return EMPTY if value in ("", None) else self.options.decode(value)

    def display(self, value: Any) -> Any:
        return self.options.encode(value)


class MultiChoiceField(forms.MultipleChoiceField):
    """An array of enum values: a set of checkboxes (or a multi-select), in option order."""

    default_error_messages = CHOICE_MESSAGES

    def __init__(self, *, choices: Choices, empty: Any, **kwargs: Any) -> None:
        self.options = choices
        self.empty = empty  # [] for a list that must be sent, EMPTY for an optional one
        super().__init__(choices=choices.pairs(), **kwargs)

    def clean(self, value: Any) -> Any:
        chosen = [self.options.decode(v) for v in super().clean(value)]
        return chosen or self.empty

    def display(self, value: Any) -> Any:
        return [self.options.encode(v) for v in value] if isinstance(value, list) else []


class JsonField(forms.CharField):
    """The fallback for what a form cannot render: JSON typed by hand, validated the same way."""

    default_error_messages: ClassVar[dict[str, Any]] = {
        "invalid": 'Enter valid JSON, like {"key": "value"} or "text".'
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strip=True, empty_value=EMPTY, **kwargs)  # type: ignore[arg-type]

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        if value is EMPTY:
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None

    def display(self, value: Any) -> Any:
        return json.dumps(value, indent=2)
