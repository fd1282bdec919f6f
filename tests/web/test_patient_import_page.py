"""Patients → Import: the file checked and shown first, written only on "Import N
patients"; nothing of it in a URL."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI

from domain.patient_import import NOT_UTF8
from domain.staff import StaffRole
from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_staff import add_member
from web.office.patient_import import FILE_LOST, NO_FILE

FILE = (
    "first_name;last_name;email;family_id;external_id\n"
    "Ana;Diaz;diaz@example.com;D;1\n"
    "Bo;Diaz;diaz@example.com;D;2\n"
    "Cy;Moss;not-an-address;;3\n"
)


async def upload(browser: httpx.AsyncClient, data: bytes) -> httpx.Response:
    return await browser.post(
        "/patients/import/preview", files={"file": ("patients.csv", data, "text/csv")}
    )


def confirmation(page: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="/patients/import">(.*?)</form>', page, re.S)
    assert form, page
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(1)))


async def names(office: Office) -> set[str]:
    listing = await office.api.get("/api/v1/patients")
    return {p["name"] for p in listing.json()["items"]}


async def test_import_page_is_linked_from_patients(office: Office) -> None:
    page = await office.browser.follow_link(
        "/patients", "/patients/import", "Import patients from a CSV file"
    )
    assert '<label for="file">CSV file</label>' in page.text
    assert 'enctype="multipart/form-data"' in page.text


async def test_import_page_previews_then_imports_on_confirm(office: Office) -> None:
    preview = await upload(office.browser, FILE.encode("utf-8"))
    assert preview.status_code == 200
    assert "Nothing has been imported yet" in preview.text
    assert "would add 2 patients, update 0 and leave 0 unchanged" in preview.text
    assert "Ana Diaz" in preview.text and "Bo Diaz" in preview.text
    # The refused row: by row and column, its value not repeated.
    assert '<td data-label="Row">4</td><td data-label="Column">email</td>' in preview.text
    assert "not-an-address" not in preview.text
    assert "Import 2 patients" in preview.text
    assert await names(office) == set()

    fields = confirmation(preview.text)
    assert fields["skip_errors"] == "1"
    done = await office.browser.post("/patients/import", data=fields)
    assert done.status_code == 200
    assert "2 patients added, 0 updated, 0 unchanged" in done.text
    assert await names(office) == {"Ana Diaz", "Bo Diaz"}
    listing = await office.browser.get("/patients")
    assert "Ana Diaz" in listing.text

    # The same file again: nothing new.
    again = await upload(office.browser, FILE.encode("utf-8"))
    assert "would add 0 patients, update 0 and leave 2 unchanged" in again.text
    assert "There is nothing to import" in again.text


async def test_import_page_keeps_the_file_byte_for_byte(office: Office) -> None:
    # A quoted name over two lines, Excel's BOM and CRLF: what is imported is what was
    # previewed, whatever a browser does to a form's line breaks.
    data = '\ufefffirst_name,last_name,email\r\n"=A\nB",-Lee,ab@example.com\r\n'.encode()
    preview = await upload(office.browser, data)
    fields = confirmation(preview.text)
    assert "skip_errors" not in fields
    await office.browser.post("/patients/import", data=fields)
    assert await names(office) == {"=A\nB -Lee"}


async def test_import_page_refuses_in_words(office: Office) -> None:
    latin_1 = await upload(
        office.browser, "first_name,last_name,email\nJosé,N,j@x.org\n".encode("latin-1")
    )
    assert latin_1.status_code == 422
    assert NOT_UTF8.replace('"', "&#34;") in latin_1.text
    assert (
        'aria-invalid="true"' in latin_1.text
        and 'aria-describedby="file-hint file-error"' in latin_1.text
    )
    empty = await upload(office.browser, b"")
    assert empty.status_code == 422 and NO_FILE in empty.text
    lost = await office.browser.post("/patients/import", data={"file": "%%%"})
    assert lost.status_code == 422 and FILE_LOST in lost.text
    assert await names(office) == set()


async def test_import_page_for_clerks_and_with_the_form_token_only(
    app: FastAPI, settings: Settings, office: Office, anonymous: httpx.AsyncClient
) -> None:
    clerk = await add_member(app, settings, office.practice_id, role=StaffRole.CLERK)
    assert (await clerk.browser.get("/patients/import")).status_code == 200
    preview = await upload(clerk.browser, FILE.encode())
    assert "Import 2 patients" in preview.text
    await clerk.api.aclose()
    await clerk.browser.aclose()
    # Signed out: to the log-in page. No form token: refused before the file is read.
    signed_out = await anonymous.get("/patients/import")
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login"
    forged: Any = await httpx.AsyncClient.post(
        office.browser,
        "/patients/import/preview",
        files={"file": ("patients.csv", FILE.encode(), "text/csv")},
    )
    assert forged.status_code == 403
    assert await names(office) == set()


async def test_import_page_confirm_checks_the_file_again(office: Office) -> None:
    """The directory changed between the preview and the confirmation: the import, which
    the preview showed without errors, now has one and imports nothing."""
    text = "first_name,last_name,email\nAda,Lovelace,ada@example.com\n"
    preview = await upload(office.browser, text.encode())
    fields = confirmation(preview.text)
    assert "skip_errors" not in fields
    added = await office.api.post(
        "/api/v1/patients", json={"name": "By Hand", "email": "ada@example.com"}
    )
    assert added.status_code == 201
    done = await office.browser.post("/patients/import", data=fields)
    assert done.status_code == 200
    assert "Nothing was imported: the rows below have errors." in done.text
    assert "Another patient of the practice has this address" in done.text
    assert await names(office) == {"By Hand"}


async def test_import_page_previews_the_first_ten_rows(office: Office) -> None:
    rows = "".join(f"P{n},Row,p{n}@example.com\n" for n in range(12))
    preview = await upload(office.browser, f"first_name,last_name,email\n{rows}".encode())
    assert "The first 10 of 12 rows, as they will be stored" in preview.text
    assert "P9 Row" in preview.text and "P10 Row" not in preview.text
    assert "Import 12 patients" in preview.text


async def test_import_page_takes_a_file_over_a_form_s_megabyte(office: Office) -> None:
    padding = "x" * 150
    rows = "".join(f"P{n}{padding},Row,p{n}@example.com\n" for n in range(12_000))
    data = f"first_name,last_name,email\n{rows}".encode()
    assert 1024 * 1024 < len(data) < 5 * 1024 * 1024
    preview = await upload(office.browser, data)
    assert preview.status_code == 200
    assert "Import 12000 patients" in preview.text
