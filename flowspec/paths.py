"""Paths: the only expressions a template may contain.

A path is data, not code: `$input.patient.addresses[0].zip` is parsed by a small hand-written
parser into a root and a tuple of segments, then walked over plain JSON values. Parsing is cached
because the engine evaluates the same few paths on every step of every Run.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

ROOTS: Final = ("input", "states", "response")

_ROOT = re.compile(r"\$(input|states|response)(?![A-Za-z0-9_-])")
_SEGMENT = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]")


class _Missing(enum.Enum):
    """A one-member enum, so that `MISSING` is a singleton that mypy can narrow on."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        # A missing value is never truthy, so `if value:` cannot mistake it for data.
        return False


MISSING: Final = _Missing.MISSING
"""What a path that leads nowhere evaluates to. Distinct from `None`, which is JSON `null`."""


class PathError(ValueError):
    """A string that starts with `$` but is not a well-formed path."""


@dataclass(frozen=True, slots=True)
class Path:
    """A parsed path: `root` is "input", "states" or "response"; `segments` are keys and indexes.

    For `$states` paths the first segment is the state's id (see `state`).
    """

    text: str
    root: str
    segments: tuple[str | int, ...]

    @property
    def state(self) -> str | None:
        """The state a `$states.<state>` path reads, None for other roots."""
        if self.root != "states":
            return None
        first = self.segments[0]
        assert isinstance(first, str)  # parse_path guarantees it
        return first


def is_path(value: object) -> bool:
    """True for strings the engine treats as paths: they start with `$` but not with `$$`."""
    return isinstance(value, str) and value.startswith("$") and not value.startswith("$$")


@functools.lru_cache(maxsize=4096)
def parse_path(text: str) -> Path:
    """Parse `text` into a `Path`, or raise `PathError` saying what is wrong and where."""
    root_match = _ROOT.match(text)
    if root_match is None:
        raise PathError(
            f"{text!r} is not a path: a path starts with $input, $states.<state> or $response "
            "(write $$ for a literal '$')"
        )
    segments: list[str | int] = []
    position = root_match.end()
    while position < len(text):
        segment = _SEGMENT.match(text, position)
        if segment is None:
            raise PathError(
                f"{text!r} is not a well-formed path: unexpected {text[position:]!r} at character "
                f"{position + 1} (segments are .key with letters, digits, '_', '-', or [index])"
            )
        key, index = segment.groups()
        segments.append(key if key is not None else int(index))
        position = segment.end()
    root = root_match.group(1)
    if root == "states" and (not segments or not isinstance(segments[0], str)):
        raise PathError(f"{text!r} is not a well-formed path: $states must name a state")
    return Path(text=text, root=root, segments=tuple(segments))


def resolve_path(path: str, context: Mapping[str, Any]) -> Any:
    """The value `path` leads to in `context`, or `MISSING`.

    `context` has "input" (the Run's inputData), "states" (state id -> what it produced) and,
    inside a resultSelector only, "response". A root absent from the context is missing too.
    """
    parsed = parse_path(path)
    if parsed.root not in context:
        return MISSING
    current: Any = context[parsed.root]
    for segment in parsed.segments:
        current = _step(current, segment)
        if current is MISSING:
            break
    return current


def _step(value: Any, segment: str | int) -> Any:
    """One segment of a walk; keys only index objects and indexes only arrays."""
    if isinstance(segment, int):
        if isinstance(value, list) and segment < len(value):
            return value[segment]
        return MISSING
    if isinstance(value, Mapping) and segment in value:
        return value[segment]
    return MISSING


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """`value` with every path string replaced by what it leads to.

    Objects and arrays are walked. An object key whose path is missing is left out, so a product
    never receives `null` for something the Run does not know; in an array a missing path becomes
    `None` so that positions keep their meaning. A leading `$$` is unescaped to `$`. The result
    shares structure with `context`: treat it as read-only.
    """
    if isinstance(value, str):
        if value.startswith("$$"):
            return value[1:]
        if value.startswith("$"):
            return resolve_path(value, context)
        return value
    if isinstance(value, Mapping):
        rendered = {key: render_value(item, context) for key, item in value.items()}
        return {key: item for key, item in rendered.items() if item is not MISSING}
    if isinstance(value, list):
        items = [render_value(item, context) for item in value]
        return [None if item is MISSING else item for item in items]
    return value


def project(schema_with_values: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Build an object from a schema whose properties carry `value:` (used by resultSelector
    and output).

    A property with `value` takes what it renders to and is left out when that is missing; a
    property with nested `properties` becomes a nested object (present even when empty, so the
    shape of the result does not depend on which data happened to exist). Other JSON Schema
    keywords (`type`, `description`) document the result and are not enforced.
    """
    result: dict[str, Any] = {}
    for name, prop in schema_with_values.get("properties", {}).items():
        if "value" in prop:
            value = render_value(prop["value"], context)
            if value is not MISSING:
                result[name] = value
        elif "properties" in prop:
            result[name] = project(prop, context)
    return result
