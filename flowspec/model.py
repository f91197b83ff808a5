"""The parsed form of a valid template: what the engine walks when it runs a Flow.

These objects are only built by `flowspec.validate_document`, after every check has passed, so
their methods can trust the data (a `next` names a state, a path parses, a regex compiles).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal

from flowspec.checks import reachable, reversed_graph, state_graph
from flowspec.errors import NoChoiceMatched
from flowspec.paths import project, render_value
from flowspec.rules import evaluate_rule

PRODUCTS: Final = ("Discovery", "Verification", "NetworkStatus", "CostEstimate")
ERROR_NAMES: Final = ("ProductUnavailable", "InvalidRequest", "ProductError")
ANY_ERROR: Final = "*"

Context = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Retry:
    """How a request state retries. `max_attempts` counts every attempt, the first included."""

    max_attempts: int = 1
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_interval_seconds: float = 300.0
    errors: tuple[str, ...] = ("ProductUnavailable",)

    def should_retry(self, error_name: str, attempts_made: int) -> bool:
        """Whether another attempt follows `attempts_made` attempts that ended in `error_name`."""
        retryable = error_name in self.errors or ANY_ERROR in self.errors
        return retryable and attempts_made < self.max_attempts

    def delay_before(self, attempt_number: int) -> float:
        """Seconds to wait before attempt `attempt_number` (the first attempt waits 0)."""
        if attempt_number < 2:
            return 0.0
        delay = self.interval_seconds * self.backoff_rate ** (attempt_number - 2)
        return float(min(delay, self.max_interval_seconds))


@dataclass(frozen=True, slots=True)
class Catch:
    """Route the errors named in `errors` (or any, with "*") to the state `next`."""

    errors: tuple[str, ...]
    next: str

    def handles(self, error_name: str) -> bool:
        return error_name in self.errors or ANY_ERROR in self.errors


@dataclass(frozen=True, slots=True)
class RequestState:
    """Calls a product with rendered parameters and keeps what `result_selector` selects."""

    type: ClassVar[Literal["request"]] = "request"

    id: str
    resource: str
    parameters: dict[str, Any] = field(default_factory=dict)
    result_selector: dict[str, Any] | None = None
    retry: Retry = Retry()
    catch: tuple[Catch, ...] = ()
    next: str | None = None
    end: bool = False

    def render_parameters(self, context: Context) -> dict[str, Any]:
        """The product's parameters for this Run; parameters whose path is missing are left out."""
        rendered: dict[str, Any] = render_value(self.parameters, context)
        return rendered

    def select_result(self, response: Any, context: Context) -> Any:
        """What this state produced: the selected result, or the whole response without one."""
        if self.result_selector is None:
            return response
        return project(self.result_selector, {**context, "response": response})

    def catch_target(self, error_name: str) -> str | None:
        """The state that the first matching `catch` routes `error_name` to, if any."""
        return next((c.next for c in self.catch if c.handles(error_name)), None)


@dataclass(frozen=True, slots=True)
class ChoiceBranch:
    when: dict[str, Any]
    next: str


@dataclass(frozen=True, slots=True)
class ChoiceState:
    """Branches on data: the first rule that holds wins, else `default`."""

    type: ClassVar[Literal["choice"]] = "choice"

    id: str
    choices: tuple[ChoiceBranch, ...]
    default: str | None = None

    def next_state(self, context: Context) -> str:
        """The state to go to; raises `NoChoiceMatched` when nothing holds and there is no
        default (the engine ends the Run in ERROR)."""
        for branch in self.choices:
            if evaluate_rule(branch.when, context):
                return branch.next
        if self.default is None:
            raise NoChoiceMatched(self.id)
        return self.default


@dataclass(frozen=True, slots=True)
class CallbackTimeout:
    """After `seconds` in PENDING the engine applies `input` as if a person had sent it."""

    seconds: int
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallbackState:
    """Pauses the Run (PENDING) until Update Run supplies input that satisfies `input_schema`."""

    type: ClassVar[Literal["callback"]] = "callback"

    id: str
    title: str
    instructions: str
    input_schema: dict[str, Any]
    ui: dict[str, Any] = field(default_factory=dict)
    timeout: CallbackTimeout | None = None
    next: str | None = None
    end: bool = False

    def context_values(self, context: Context) -> list[Any]:
        """The values of `ui.context`, shown read-only to staff (None where a path is missing)."""
        values: list[Any] = render_value(list(self.ui.get("context", [])), context)
        return values

    def prefill_values(self, context: Context) -> dict[str, Any]:
        """Initial form values from `ui.prefill`; fields whose path is missing are left out."""
        values: dict[str, Any] = render_value(dict(self.ui.get("prefill", {})), context)
        return values


State = RequestState | ChoiceState | CallbackState


@dataclass(frozen=True)
class Template:
    """A validated template document and its parsed states."""

    document: dict[str, Any]
    name: str
    description: str
    input_schema: dict[str, Any]
    starts_at: str
    states: dict[str, State]
    output_schema: dict[str, Any] | None = None

    def state(self, state_id: str) -> State:
        """The state named `state_id`; KeyError when there is none."""
        return self.states[state_id]

    def callback_states(self) -> list[CallbackState]:
        return [state for state in self.states.values() if isinstance(state, CallbackState)]

    def states_after(self, state_id: str) -> set[str]:
        """Every state a Run at `state_id` can go on to, one or more steps later (the state
        itself too when a loop leads back to it)."""
        graph = state_graph(self.document["states"])
        return reachable(graph[state_id], graph)

    def states_before(self, state_id: str) -> set[str]:
        """Every state from which a Run can come to `state_id`, one or more steps later."""
        reverse = reversed_graph(state_graph(self.document["states"]))
        return reachable(reverse[state_id], reverse)

    def evaluate_output(self, context: Context) -> dict[str, Any]:
        """Get Run's `output` once the Run reaches an `end: true` state ({} without `output`)."""
        if self.output_schema is None:
            return {}
        return project(self.output_schema, context)
