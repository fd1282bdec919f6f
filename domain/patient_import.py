"""Patients from a CSV file, as any practice-management system exports them: reading the
file and checking each row on its own (no database here).

The file is UTF-8 (Excel's "CSV UTF-8" included, whose byte-order mark is skipped),
separated by commas or, as Excel writes in much of Europe, semicolons: the header line
decides. Quoted fields may hold separators and line breaks. A cell is kept exactly as
written: one that starts like a spreadsheet formula (``=``, ``+``, ``-``, ``@``) is a name
like any other here, never evaluated and never stripped.

Rows are numbered as a spreadsheet shows them: the header is row 1, and a quoted value
over several lines is still one row. Errors name the row and the column, never the
cell's value: the values are names and addresses (PHI), and the messages end up in logs
and on screens that the file itself does not.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel, EmailStr, TypeAdapter, ValidationError

from domain.addresses import normalise_address
from domain.languages import DEFAULT_LANGUAGE, Language
from domain.patients import PatientStatus

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MAX_NAME = 200  # a patient's whole name, as ``PatientName`` allows
MAX_EMAIL = 320
MAX_ID = 64  # ``Patient.external_id``; a family_id is held to the same

REQUIRED = ("first_name", "last_name", "email")
COLUMNS = (*REQUIRED, "language", "status", "clinic", "family_id", "external_id")

_LANGUAGES: dict[str, Language] = {
    "en": "en",
    "eng": "en",
    "english": "en",
    "es": "es",
    "spa": "es",
    "spanish": "es",
    "español": "es",
    "espanol": "es",
}
_STATUSES = {status.value.casefold(): status for status in PatientStatus}
_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)
_BOM = "\ufeff"

NOT_UTF8 = (
    "The file is not UTF-8 text. Save the file as CSV UTF-8 (in Excel: File, Save As, "
    '"CSV UTF-8 (Comma delimited)") and import it again.'
)
EMPTY = "The file is empty: its first line must name the columns."
TOO_LARGE = (
    f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB: split it and import each part."
)
TOO_MANY_ROWS = f"The file has more than {MAX_ROWS:,} patients: split it and import each part."
UNREADABLE_ROW = (
    'Row {row} cannot be read as CSV: is a quote (") opened and never closed? Nothing was imported.'
)
REQUIRED_VALUE = "Required"
NOT_AN_EMAIL = "Not an email address"
NOT_A_LANGUAGE = "Not a language patients can be written to in: en (English) or es (Spanish)"
NOT_A_STATUS = "Not a status: Patient or NonPatient"
TOO_LONG_NAME = f"First and last name together are longer than {MAX_NAME} characters"
TOO_LONG_ID = f"Longer than {MAX_ID} characters"
EXTRA_VALUES = "More values than the header has columns: is a value with a separator unquoted?"
NAMELESS_COLUMN = "A value in a column whose header is empty"
SAME_EXTERNAL_ID = "Another row of the file has this external_id (row {row})"
SAME_ADDRESS_IN_FILE = (
    "Another row of the file has this address (row {row}): give both the same family_id to share it"
)
HEAD_REFUSED = "The family's first row (row {row}) has an error, so its family cannot be imported"


class FileRefused(Exception):
    """The file as a whole cannot be read: nothing of it is imported."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RowError(BaseModel):
    # The row as a spreadsheet numbers it: the header is 1.
    row: int
    # The column's name as the header has it (lower case); None for the row as a whole.
    column: str | None
    message: str


class ImportResult(BaseModel):
    """What an import did (or, on a dry run, would do)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = []


@dataclass(frozen=True)
class ImportRow:
    """One row, checked on its own: its values as they will be stored."""

    row: int
    first_name: str
    last_name: str
    email: str
    language: Language
    status: PatientStatus
    clinic: str | None
    family_id: str | None
    external_id: str | None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def email_normalised(self) -> str:
        return normalise_address(self.email)


@dataclass
class ParsedFile:
    # The rows that passed every check made without the database, in the file's order.
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # Rows with content (checked or refused), blank lines left out.
    count: int = 0
    # Each family's first row (its head), whether that row was refused or not.
    heads: dict[str, int] = field(default_factory=dict)


def read_file(data: bytes) -> ParsedFile:
    """The file's rows, each checked on its own and against the file's other rows;
    ``FileRefused`` when the file cannot be read at all."""
    if len(data) > MAX_BYTES:
        raise FileRefused(TOO_LARGE)
    text = _text(data)
    first_line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    if not first_line.strip():
        raise FileRefused(EMPTY)
    separator = ";" if first_line.count(";") > first_line.count(",") else ","
    records = _records(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
    _, header = next(records)
    columns = _columns(header)
    parsed = ParsedFile()
    for number, cells in records:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, or a row of empty cells: nothing to import
        parsed.count += 1
        if parsed.count > MAX_ROWS:
            raise FileRefused(TOO_MANY_ROWS)
        row, errors = _row(number, columns, cells)
        family_id = _family_of(columns, cells)
        if family_id:
            parsed.heads.setdefault(family_id, number)
        parsed.errors.extend(errors)
        if row is not None:
            parsed.rows.append(row)
    _check_across_rows(parsed)
    return parsed


def _records(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Each record and its row number (the header is 1); ``FileRefused`` naming the row
    where the file stops being CSV (a value over ``csv``'s 128 KB: in practice a quote
    never closed, which runs on to the end of the file)."""
    number = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise FileRefused(UNREADABLE_ROW.format(row=number)) from error
        yield number, cells
        number += 1


def _text(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRefused(NOT_UTF8)  # UTF-16, Excel's "Unicode Text"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileRefused(NOT_UTF8) from error
    return text.removeprefix(_BOM)


def _family_of(columns: list[str | None], cells: list[str]) -> str | None:
    if "family_id" not in columns:
        return None
    at = columns.index("family_id")
    return cells[at].strip() or None if at < len(cells) else None


def _columns(header: list[str]) -> list[str | None]:
    """The header's column names, lower case; None for an empty header cell (Excel adds
    one for a trailing separator). Refuses an unknown, repeated or missing column."""
    names = [cell.strip().casefold() or None for cell in header]
    unknown = [name for name in names if name is not None and name not in COLUMNS]
    if unknown:
        listed = ", ".join(f'"{name}"' for name in unknown)
        noun = "column" if len(unknown) == 1 else "columns"
        raise FileRefused(f"Unknown {noun} {listed}: the columns are {', '.join(COLUMNS)}.")
    repeated = sorted({name for name in names if name is not None and names.count(name) > 1})
    if repeated:
        raise FileRefused(f"The column {', '.join(repeated)} is in the header more than once.")
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise FileRefused(f"The header has no {', '.join(missing)} column: it is required.")
    return names


def _row(
    number: int, columns: list[str | None], cells: list[str]
) -> tuple[ImportRow | None, list[RowError]]:
    errors: list[RowError] = []

    def refuse(column: str | None, message: str) -> None:
        errors.append(RowError(row=number, column=column, message=message))

    if len(cells) > len(columns) and any(cell.strip() for cell in cells[len(columns) :]):
        refuse(None, EXTRA_VALUES)
    values: dict[str, str] = {}
    for name, cell in zip(columns, cells, strict=False):
        if name is None:
            if cell.strip():
                refuse(None, NAMELESS_COLUMN)
            continue
        values[name] = cell

    def value(column: str) -> str:
        return values.get(column, "").strip()

    first_name, last_name = value("first_name"), value("last_name")
    for column, given in (("first_name", first_name), ("last_name", last_name)):
        if not given:
            refuse(column, REQUIRED_VALUE)
    if len(first_name) + 1 + len(last_name) > MAX_NAME:
        refuse("last_name", TOO_LONG_NAME)
    email = value("email")
    if not email:
        refuse("email", REQUIRED_VALUE)
    elif len(email) > MAX_EMAIL or not _is_email(email):
        refuse("email", NOT_AN_EMAIL)
    language = _LANGUAGES.get(value("language").casefold() or DEFAULT_LANGUAGE)
    if language is None:
        refuse("language", NOT_A_LANGUAGE)
    status = _STATUSES.get(value("status").casefold() or PatientStatus.PATIENT.value.casefold())
    if status is None:
        refuse("status", NOT_A_STATUS)
    for column in ("family_id", "external_id"):
        if len(value(column)) > MAX_ID:
            refuse(column, TOO_LONG_ID)
    if errors or language is None or status is None:
        return None, errors
    row = ImportRow(
        row=number,
        first_name=first_name,
        last_name=last_name,
        email=email,
        language=language,
        status=status,
        clinic=value("clinic") or None,
        family_id=value("family_id") or None,
        external_id=value("external_id") or None,
    )
    return row, errors


def _is_email(text: str) -> bool:
    try:
        _EMAIL.validate_python(text)
    except ValidationError:
        return False
    return True


def _check_across_rows(parsed: ParsedFile) -> None:
    """Refuses a row whose external_id an earlier row has, and one whose address an
    earlier row of another family (or of none) has; then every row of a family whose
    first row was refused."""
    by_external_id: dict[str, int] = {}
    # The first row at each address, and its family.
    by_address: dict[str, tuple[int, str | None]] = {}
    kept: list[ImportRow] = []
    refused_rows = {error.row for error in parsed.errors}
    for row in parsed.rows:
        if row.external_id is not None:
            earlier = by_external_id.setdefault(row.external_id, row.row)
            if earlier != row.row:
                message = SAME_EXTERNAL_ID.format(row=earlier)
                parsed.errors.append(RowError(row=row.row, column="external_id", message=message))
                continue
        first, family = by_address.setdefault(row.email_normalised, (row.row, row.family_id))
        if first != row.row and (family is None or family != row.family_id):
            message = SAME_ADDRESS_IN_FILE.format(row=first)
            parsed.errors.append(RowError(row=row.row, column="email", message=message))
            continue
        kept.append(row)
    parsed.rows = kept
    refused_rows |= {error.row for error in parsed.errors}
    parsed.rows, orphans = without_refused_heads(parsed.rows, refused_rows, parsed.heads)
    parsed.errors.extend(orphans)
    parsed.errors.sort(key=lambda error: error.row)


def without_refused_heads(
    rows: list[ImportRow], refused_rows: set[int], heads: dict[str, int]
) -> tuple[list[ImportRow], list[RowError]]:
    """The rows whose family's head was not refused, and an error for each other one."""
    kept: list[ImportRow] = []
    errors: list[RowError] = []
    for row in rows:
        head = heads.get(row.family_id) if row.family_id is not None else None
        if head is not None and head != row.row and head in refused_rows:
            message = HEAD_REFUSED.format(row=head)
            errors.append(RowError(row=row.row, column="family_id", message=message))
        else:
            kept.append(row)
    return kept, errors
