"""A campaign's list of patients as uploaded: its shape checked in the request, its rows read by the check.

The list comes as a CSV file exported from the clinical system's search (EMIS Web, SystmOne and
Vision all write a column headed "NHS number", spelt and spaced their own way), or as NHS
numbers pasted one a line, which are stored as a one-column CSV so the check reads one format.

`campaign_list_shape` runs in the request and reads the whole file once, quickly (no database):
the limits (5 MB, 50,000 rows), that it is text and CSV at all, the header's NHS number column;
each failure a `CampaignListUnreadable` with a message the manager can act on. The rows
themselves are checked later by the scheduler (messaging/campaigns/checks.py), which streams
them with `campaign_list_rows`.

Cells are only ever read as text: a cell that a spreadsheet would run as a formula (`=`, `+`,
`-`, `@` first) is never evaluated; its NHS number is taken from its digits only when the rest of
the cell is a plain number (`="943 476 5919"`, Excel's way of keeping leading zeros).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from booking.nhs_numbers import normalise_nhs_number

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
# The header may follow a few lines the search export writes first (its name, the date run).
HEADER_SEARCH_LINES = 10
# What the NHS number column's header reads once lowered and stripped of spaces and punctuation.
NHS_NUMBER_HEADERS = frozenset({"nhsnumber", "nhsno"})
DELIMITERS = (",", ";", "\t")
# Stored in CampaignEntry.nhs_number: a cell longer than this is cut (it can't be a number anyway).
CELL_KEPT = 40
PASTED_HEADER = "NHS number"
FORMULA_STARTS = ("=", "+", "-", "@")
# The start of a zip file (.xlsx, .ods) and of an old Excel file (.xls).
SPREADSHEET_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class CampaignListUnreadable(ValueError):
    """The uploaded list can't be used; `message` says why and what to do."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class ListLayout:
    """Where the NHS numbers are: the encoding, the delimiter, the header's line and the column."""

    encoding: str
    delimiter: str
    header_line: int
    column: int


def campaign_list_from_pasted(text: str) -> bytes:
    """Pasted NHS numbers, one a line, as the one-column CSV the check reads (blank lines dropped)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "\r\n".join([PASTED_HEADER, *lines]).encode()


def campaign_list_shape(*, content: bytes) -> tuple[ListLayout, int]:
    """The list's layout and how many rows it has; raises CampaignListUnreadable for a file the check can't read.

    Reads the whole file once, as the check will: every row counted, nothing stored.
    """
    if len(content) > MAX_BYTES:
        raise CampaignListUnreadable(
            f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB. Export only the NHS number column, "
            "or split the list into two campaigns."
        )
    if content.startswith(SPREADSHEET_SIGNATURES):
        raise CampaignListUnreadable(
            "The file is a spreadsheet (like .xlsx), not CSV. In your spreadsheet choose Save As, "
            "then “CSV UTF-8”, and upload that file."
        )
    encoding = _encoding_of(content)
    text = content.decode(encoding)
    if _CONTROL.search(text):
        raise CampaignListUnreadable(
            "The file isn't a CSV file: it has characters no text file has. Export the search as CSV and upload that."
        )
    if not text.strip():
        raise CampaignListUnreadable("The file is empty. Choose the CSV file your search exported.")
    layout = _layout_of(text, encoding=encoding)
    rows = sum(1 for _ in _data_rows(text, layout=layout))
    if rows == 0:
        raise CampaignListUnreadable("The file has a header but no rows under it. Choose the file with the patients.")
    if rows > MAX_ROWS:
        raise CampaignListUnreadable(
            f"The file has {rows:,} rows; a campaign can have at most {MAX_ROWS:,}. Split the list into two campaigns."
        )
    return layout, rows


def campaign_list_rows(*, content: bytes) -> Iterator[tuple[int, str]]:
    """Each data row as (its line in the file, the NHS number as read), in the file's order.

    Streams: the text is decoded and parsed as it is read, never held as a list of rows.
    `content` has passed `campaign_list_shape` (it was stored only then).
    """
    encoding = _encoding_of(content)
    # The header is within the first lines: decode only as much as holds them.
    layout = _layout_of(content[:65536].decode(encoding, errors="ignore"), encoding=encoding)
    stream = io.TextIOWrapper(io.BytesIO(content), encoding=layout.encoding, newline="")
    yield from _data_rows(stream, layout=layout)


def nhs_number_as_read(cell: str) -> str:
    """The NHS number in a cell, spaces and dashes out; a formula cell's digits only if it is otherwise a number.

    `="943 476 5919"` gives "9434765919"; `=HYPERLINK("x")` gives the cell as it is (cut to
    CELL_KEPT), which the check then finds invalid. Never evaluated.
    """
    value = cell.strip()
    if value.startswith(FORMULA_STARTS):
        inner = value.lstrip("=+-@").strip().strip('"').strip()
        digits = normalise_nhs_number(inner)
        if digits.isdigit():
            return digits
        return value[:CELL_KEPT]
    return normalise_nhs_number(value)[:CELL_KEPT]


def _encoding_of(content: bytes) -> str:
    """UTF-8 (its byte-order mark dropped), else Windows-1252 as older exports write; else unreadable."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            codecs.decode(content, encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    raise CampaignListUnreadable(
        "The file isn't readable text. Export the search as CSV (“CSV UTF-8” in a spreadsheet) and upload that."
    )


def _header_key(cell: str) -> str:
    return re.sub(r"[^a-z]", "", cell.lower())


def _layout_of(text: str, *, encoding: str) -> ListLayout:
    """The delimiter and NHS number column, from the first line within HEADER_SEARCH_LINES that names it."""
    head = io.StringIO(text, newline="")
    lines = [head.readline() for _ in range(HEADER_SEARCH_LINES)]
    for number, line in enumerate(lines, start=1):
        # The delimiter is the one that splits this line into a cell headed NHS number.
        for delimiter in DELIMITERS:
            cells = next(csv.reader([line], delimiter=delimiter), [])
            for column, cell in enumerate(cells):
                if _header_key(cell) in NHS_NUMBER_HEADERS:
                    return ListLayout(encoding=encoding, delimiter=delimiter, header_line=number, column=column)
    raise CampaignListUnreadable(
        "The file has no column headed “NHS number”. Add the NHS number to the search's output, "
        "or paste the NHS numbers one a line instead."
    )


def _data_rows(source: str | io.TextIOBase, *, layout: ListLayout) -> Iterator[tuple[int, str]]:
    lines = io.StringIO(source, newline="") if isinstance(source, str) else source
    reader = csv.reader(lines, delimiter=layout.delimiter)
    for cells in reader:
        if reader.line_num <= layout.header_line:
            continue
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, and the empty rows a spreadsheet leaves at the end
        cell = cells[layout.column] if layout.column < len(cells) else ""
        yield reader.line_num, nhs_number_as_read(cell)
