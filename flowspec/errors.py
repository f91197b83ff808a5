"""The errors flowspec raises: all of a template's problems at once, each with its location."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SpecError:
    """One problem in a template document.

    `location` is the dotted path to the offending key (`states.verify.next`,
    `states.discover.catch[0].errors`, `startsAt`), or `document` for the text as a whole.
    """

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class TemplateInvalid(ValueError):
    """A template that cannot be published; `errors` lists every problem found."""

    def __init__(self, errors: Iterable[SpecError]) -> None:
        # Duplicates arise when two checks see the same fault; keep the first, keep the order.
        self.errors: list[SpecError] = list(dict.fromkeys(errors))
        super().__init__("\n".join(map(str, self.errors)))


class NoChoiceMatched(LookupError):
    """A choice state found no rule that holds and has no `default` to fall back on."""

    def __init__(self, state_id: str) -> None:
        self.state_id = state_id
        super().__init__(f"no choice matched in state {state_id!r} and it has no default")
