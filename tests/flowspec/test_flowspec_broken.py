"""The corpus of broken templates: each file's `# expect: <location>: <message>` header lines are
exactly the errors it must produce (location equal, message containing the text)."""

from pathlib import Path

import pytest

from flowspec import SpecError, TemplateInvalid, load_template

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(BROKEN.glob("*.yaml"))


def expectations(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        if line.startswith("# expect: "):
            location, _, message = line.removeprefix("# expect: ").partition(": ")
            pairs.append((location, message))
    return pairs


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=lambda path: path.stem)
def test_broken_template_reports_exactly_the_expected_errors(case: Path):
    text = case.read_text()
    expected = expectations(text)
    assert expected, f"{case.name} has no '# expect:' header"

    with pytest.raises(TemplateInvalid) as caught:
        load_template(text)

    errors = caught.value.errors
    assert all(isinstance(error, SpecError) for error in errors)
    unmatched = list(errors)
    for location, message in expected:
        match = next(
            (e for e in unmatched if e.location == location and message in e.message), None
        )
        assert match is not None, f"no error {location}: {message!r} in {errors}"
        unmatched.remove(match)
    assert unmatched == [], f"unexpected errors: {unmatched}"
