"""Reading a CSV file of patients (``domain.patient_import``): Excel's ways of writing one,
each refusal by row and column, and no cell's value in any message."""

from __future__ import annotations

import pytest

from domain.patient_import import (
    EMPTY,
    EXTRA_VALUES,
    MAX_BYTES,
    MAX_ROWS,
    NAMELESS_COLUMN,
    NOT_A_LANGUAGE,
    NOT_A_STATUS,
    NOT_AN_EMAIL,
    NOT_UTF8,
    REQUIRED_VALUE,
    TOO_LARGE,
    TOO_LONG_ID,
    TOO_LONG_NAME,
    TOO_MANY_ROWS,
    UNREADABLE_ROW,
    FileRefused,
    ParsedFile,
    read_file,
)
from domain.patients import PatientStatus

HEADER = "first_name,last_name,email"


def parsed(text: str) -> ParsedFile:
    return read_file(text.encode("utf-8"))


def refusals(result: ParsedFile) -> list[tuple[int, str | None, str]]:
    return [(error.row, error.column, error.message) for error in result.errors]


def refused(text: str | bytes) -> str:
    with pytest.raises(FileRefused) as caught:
        read_file(text if isinstance(text, bytes) else text.encode("utf-8"))
    return caught.value.message


def test_read_file_rows_with_defaults() -> None:
    result = parsed(f"{HEADER}\nAda,Lovelace,Ada@Example.com\n")
    assert result.errors == []
    [row] = result.rows
    assert (row.row, row.name, row.email) == (2, "Ada Lovelace", "Ada@Example.com")
    assert row.email_normalised == "ada@example.com"
    assert (row.language, row.status) == ("en", PatientStatus.PATIENT)
    assert (row.clinic, row.family_id, row.external_id) == (None, None, None)


def test_read_file_columns_in_any_order_and_case() -> None:
    text = (
        "External_ID,EMAIL,Status,Language,Clinic,First_Name,LAST_NAME,family_id\n"
        "17,bo@example.com,nonpatient,Spanish,Downtown,Bo,Diaz,f1\n"
    )
    [row] = parsed(text).rows
    assert (row.first_name, row.last_name, row.email) == ("Bo", "Diaz", "bo@example.com")
    assert (row.language, row.status) == ("es", PatientStatus.NON_PATIENT)
    assert (row.clinic, row.family_id, row.external_id) == ("Downtown", "f1", "17")


@pytest.mark.parametrize(
    ("given", "language"),
    [("", "en"), ("en", "en"), ("ENG", "en"), ("English", "en"), ("es", "es"), ("spa", "es")],
)
def test_read_file_languages(given: str, language: str) -> None:
    [row] = parsed(f"{HEADER},language\nAda,L,ada@example.com,{given}\n").rows
    assert row.language == language


def test_read_file_skips_excels_bom_and_reads_semicolons() -> None:
    data = (
        "\ufefffirst_name;last_name;email;clinic\r\nAda;Lovelace;ada@example.com;Main, Upstairs\r\n"
    )
    result = read_file(data.encode("utf-8"))
    assert result.errors == []
    [row] = result.rows
    assert (row.first_name, row.clinic) == ("Ada", "Main, Upstairs")


def test_read_file_quoted_separators_and_line_breaks_are_one_row() -> None:
    text = (
        f"{HEADER},clinic\n"
        '"Lovelace, Ada",Byron,ada@example.com,"North\nWing"\n'
        "Bo,Diaz,not-an-address\n"
    )
    result = parsed(text)
    [row] = result.rows
    assert (row.first_name, row.clinic) == ("Lovelace, Ada", "North\nWing")
    # The second record starts on the file's fourth line but is the spreadsheet's row 3.
    assert refusals(result) == [(3, "email", NOT_AN_EMAIL)]


def test_read_file_keeps_formula_like_cells_as_written() -> None:
    text = f'{HEADER}\n=1+2,"+SUM(A1)",ada@example.com\n-Ada,@Lovelace,bo@example.com\n'
    result = parsed(text)
    assert result.errors == []
    assert [(r.first_name, r.last_name) for r in result.rows] == [
        ("=1+2", "+SUM(A1)"),
        ("-Ada", "@Lovelace"),
    ]


def test_read_file_blank_lines_are_skipped_but_counted_as_rows() -> None:
    result = parsed(f"{HEADER}\n\nAda,L,ada@example.com\n,,\nBo,D,bo\n")
    assert [row.row for row in result.rows] == [3]
    assert refusals(result) == [(5, "email", NOT_AN_EMAIL)]
    assert result.count == 2


def test_read_file_each_row_error_by_row_and_column_without_the_value() -> None:
    long_id = "x" * 65
    text = (
        "first_name,last_name,email,language,status,family_id,external_id\n"
        "Secretname,,secret@,Klingon,Former,,\n"
        f",Lastname,ok@example.com,,,{long_id},{long_id}\n"
        f"{'A' * 150},{'B' * 60},ok2@example.com,,,,\n"
    )
    result = parsed(text)
    assert result.rows == []
    assert refusals(result) == [
        (2, "last_name", REQUIRED_VALUE),
        (2, "email", NOT_AN_EMAIL),
        (2, "language", NOT_A_LANGUAGE),
        (2, "status", NOT_A_STATUS),
        (3, "first_name", REQUIRED_VALUE),
        (3, "family_id", TOO_LONG_ID),
        (3, "external_id", TOO_LONG_ID),
        (4, "last_name", TOO_LONG_NAME),
    ]
    shown = " ".join(error.message for error in result.errors)
    for value in ("Secretname", "secret@", "Klingon", "Former", "Lastname", long_id):
        assert value not in shown


def test_read_file_required_email_and_extra_values() -> None:
    result = parsed(f"{HEADER}\nAda,L,\nBo,D,bo@example.com,stray\nCy,E,cy@example.com,,\n")
    assert refusals(result) == [(2, "email", REQUIRED_VALUE), (3, None, EXTRA_VALUES)]
    assert [row.row for row in result.rows] == [4]


def test_read_file_nameless_trailing_column_only_when_empty() -> None:
    result = parsed(f"{HEADER},\nAda,L,ada@example.com,\nBo,D,bo@example.com,x\n")
    assert refusals(result) == [(3, None, NAMELESS_COLUMN)]


def test_read_file_same_external_id_twice() -> None:
    result = parsed(f"{HEADER},external_id\nAda,L,ada@example.com,7\nBo,D,bo@example.com,7\n")
    assert [row.row for row in result.rows] == [2]
    assert [(e.row, e.column) for e in result.errors] == [(3, "external_id")]
    assert "row 2" in result.errors[0].message


def test_read_file_families_share_an_address_others_may_not() -> None:
    text = (
        f"{HEADER},family_id\n"
        "Ana,Diaz,diaz@example.com,F\n"
        "Bo,Diaz,diaz@example.com,F\n"
        "Cy,Other,DIAZ@example.com,\n"
        "Dee,Else,diaz@example.com,G\n"
    )
    result = parsed(text)
    assert [row.row for row in result.rows] == [2, 3]
    assert [(e.row, e.column) for e in result.errors] == [(4, "email"), (5, "email")]
    assert all("family_id" in e.message and "row 2" in e.message for e in result.errors)


def test_read_file_family_of_a_refused_head_is_refused() -> None:
    text = f"{HEADER},family_id\nAna,Diaz,not-an-address,F\nBo,Diaz,bo@example.com,F\n"
    result = parsed(text)
    assert result.rows == []
    assert [(e.row, e.column) for e in result.errors] == [(2, "email"), (3, "family_id")]
    assert result.heads == {"F": 2}


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("first_name,last_name,email,middle_name", 'Unknown column "middle_name"'),
        ("first_name,last_name,email,Phone,DOB", 'Unknown columns "phone", "dob"'),
        ("first_name,last_name,email,Email", "email is in the header more than once"),
        ("first_name,email", "no last_name column"),
    ],
)
def test_read_file_refuses_a_bad_header_by_column_name(header: str, words: str) -> None:
    assert words in refused(f"{header}\nAda,L,ada@example.com\n")


def test_read_file_refuses_latin_1_and_utf_16_in_words() -> None:
    latin_1 = f"{HEADER}\nJosé,Núñez,jose@example.com\n".encode("latin-1")
    assert refused(latin_1) == NOT_UTF8
    assert "Save the file as CSV UTF-8" in NOT_UTF8
    assert refused(f"{HEADER}\n".encode("utf-16")) == NOT_UTF8


def test_read_file_refuses_empty_too_large_and_too_many_rows() -> None:
    assert refused(b"") == EMPTY
    assert refused("\n\nAda,L,a@example.com") == EMPTY
    assert refused(b"x" * (MAX_BYTES + 1)) == TOO_LARGE
    rows = "".join(f"P{i},L,p{i}@example.com\n" for i in range(MAX_ROWS + 1))
    assert refused(f"{HEADER}\n{rows}") == TOO_MANY_ROWS


def test_read_file_accepts_the_most_rows() -> None:
    rows = "".join(f"P{i},L,p{i}@example.com\n" for i in range(MAX_ROWS))
    result = parsed(f"{HEADER}\n{rows}")
    assert len(result.rows) == MAX_ROWS and result.errors == []


def test_read_file_refuses_a_quote_never_closed_by_row() -> None:
    rows = "".join(f"P{i},L,p{i}@example.com\n" for i in range(8000))
    text = f'{HEADER}\nAda,"Lovelace,ada@example.com\n{rows}'
    assert refused(text) == UNREADABLE_ROW.format(row=2)


def test_read_file_old_mac_line_endings() -> None:
    result = parsed(f"{HEADER};clinic\rAda;L;ada@example.com;North, Wing\r".replace(",", ";", 2))
    assert result.errors == []
    assert [(r.first_name, r.clinic) for r in result.rows] == [("Ada", "North, Wing")]
