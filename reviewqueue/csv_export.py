"""CSV for downloads (the audit export, the supervisors' reports): written row by row for a
``StreamingHttpResponse``, so an export of 100,000 rows never sits in memory, and every cell
guarded against spreadsheet formulas."""

import csv
from collections.abc import Iterable, Iterator
from typing import Any

# What a spreadsheet reads as the start of a formula (and tab/CR, which some strip first).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Echo:
    """A file that hands back what is written, for streaming CSV row by row."""

    def write(self, value: str) -> str:
        return value


def inert(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (``=HYPERLINK(...)`` as a person's name)
    is kept as text. Applying it twice changes nothing."""
    return "'" + cell if cell[:1] in FORMULA_STARTS else cell


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Each row as one CSV line: text made inert, None empty, a number as written (``-5`` is a
    number, not a formula: only text can carry one)."""
    writer = csv.writer(Echo())
    for row in rows:
        yield writer.writerow([_cell(cell) for cell in row])


def _cell(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return str(cell)
    return inert(str(cell))
