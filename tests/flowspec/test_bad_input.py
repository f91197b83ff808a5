"""Hostile template text and JSON: a clear TemplateInvalid or ValueError, never a blow-up."""

import time

import pytest

from flowspec import SpecError
from flowspec.loading import EXPANDED_MAX
from flowspec.numbers import TooDeep, exact_loads
from tests.flowspec.test_flowspec_loading import MINIMAL, errors_of


def laughs(levels: int, width: int = 9) -> str:
    """The "billion laughs": each level an anchored list of ``width`` aliases of the last."""
    lines = ["lol0: &lol0 ['lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol']"]
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*lol{level - 1}"] * width)
        lines.append(f"lol{level}: &lol{level} [{aliases}]")
    return MINIMAL + "\n".join(lines) + "\n"


EXPANDED = [
    SpecError(
        "document",
        f"the document would be larger than {EXPANDED_MAX:,} characters with its YAML "
        "aliases (*name) written out; write the repeated parts out, or repeat less",
    )
]


@pytest.mark.parametrize("levels", [6, 9])
def test_alias_expansion_past_the_limit_is_refused_quickly(levels):
    source = laughs(levels)
    assert len(source) < 1_000
    started = time.monotonic()
    assert errors_of(source) == EXPANDED
    assert time.monotonic() - started < 1


def test_a_few_aliases_are_still_fine():
    # Merge keys and small aliases are part of YAML authors' toolkit (test_yaml_merge_keys...):
    # only the expansion is capped. Unknown top-level keys are reported as before.
    errors = errors_of(laughs(2))
    assert errors and all(error != EXPANDED[0] for error in errors)


def test_an_alias_inside_its_own_anchor_is_refused():
    assert errors_of(MINIMAL + "loop: &loop [*loop]\n") == [
        SpecError("document", "a YAML alias refers to the node that contains it")
    ]


@pytest.mark.parametrize(
    "source",
    ["a: " + "[" * 10_000 + "]" * 10_000, '{"a": ' + "[" * 10_000 + "]" * 10_000 + "}"],
    ids=["yaml", "json"],
)
def test_nesting_10000_deep_is_invalid_not_a_recursion_error(source):
    assert errors_of(source) == [SpecError("document", "nested too deeply to read")]


def test_exact_loads_refuses_nesting_past_max_depth_and_any_that_exhausts_the_stack():
    assert exact_loads("[[[]]]", max_depth=3) == [[[]]]
    with pytest.raises(TooDeep, match="more than 2 levels"):
        exact_loads("[[[]]]", max_depth=2)
    with pytest.raises(TooDeep):
        exact_loads("[" * 10_000 + "]" * 10_000)
    with pytest.raises(ValueError):
        exact_loads("9" * 5_000)
    with pytest.raises(ValueError):
        exact_loads('{"a": NaN}')
