"""Cells for CSV files people open in a spreadsheet: no cell is ever read as a formula.

A spreadsheet treats a cell that starts with `=`, `+`, `-` or `@` (and, in some, a tab or a
carriage return) as a formula, so a patient's or organisation's name in a download could run
one on a manager's computer (CSV injection, OWASP). Such a cell gets a leading apostrophe,
which spreadsheets show as text and don't display. Every CSV the project writes passes its
cells through here.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Writable(Protocol):
    def write(self, text: str, /) -> object: ...


def spreadsheet_cell(value: object) -> str:
    """`value` as text a spreadsheet shows as it is: "'=1+1" for "=1+1"; None as ""."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def spreadsheet_rows_write(*, out: Writable, rows: Iterable[Iterable[object]]) -> None:
    """Write `rows` to `out` as CSV (Excel's dialect), every cell through `spreadsheet_cell`."""
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([spreadsheet_cell(value) for value in row])
