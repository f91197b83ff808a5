"""The scenario registry: a scenario is a function decorated with ``@scenario``.

A new scenario is a module in ``bench/scenarios/``; ``discover()`` imports every module there,
so adding one needs no change anywhere else::

    @scenario("webhooks", "Webhook receiver requests/s next to /ping")
    def webhooks(ctx: Context) -> Outcome:
        with provision("webhooks", ctx) as world:
            ...
        return Outcome(metrics=[...])
"""

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import scenarios


@dataclass(frozen=True)
class Context:
    """What the command line decided, handed to every scenario."""

    quick: bool
    pool: str  # the Celery worker pool: "threads" or "prefork"
    keep: bool = False  # leave logs, database and broker as they are, for a post-mortem


@dataclass
class Metric:
    """One figure of a scenario; ``baseline`` names the metric (by key) it is compared with."""

    key: str
    label: str
    value: float
    unit: str
    baseline: str | None = None
    # Per-round values when the figure is a median over rounds.
    rounds: list[float] = field(default_factory=list)


@dataclass
class Outcome:
    metrics: list[Metric]
    # Sizes, settings and process command lines: whatever someone needs to reproduce the run.
    config: dict[str, Any] = field(default_factory=dict)
    # Anything else worth keeping (CPU per component, memory, warnings).
    details: dict[str, Any] = field(default_factory=dict)


ScenarioFn = Callable[[Context], Outcome]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    run: ScenarioFn


_REGISTRY: dict[str, Scenario] = {}


def scenario(name: str, summary: str) -> Callable[[ScenarioFn], ScenarioFn]:
    """Register ``fn`` under ``name``; scenarios run in the order they are registered."""

    def register(fn: ScenarioFn) -> ScenarioFn:
        if name in _REGISTRY:
            raise ValueError(f"scenario {name!r} is registered twice")
        _REGISTRY[name] = Scenario(name=name, summary=summary, run=fn)
        return fn

    return register


def discover() -> dict[str, Scenario]:
    """Import every module of ``bench.scenarios`` and return the registry."""
    for module in sorted(pkgutil.iter_modules(scenarios.__path__), key=lambda m: m.name):
        importlib.import_module(f"{scenarios.__name__}.{module.name}")
    return dict(_REGISTRY)
