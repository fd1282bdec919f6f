"""The chart (R11): the files a patient sent, listed and downloaded byte for byte."""

from __future__ import annotations

from typing import Any

from tests.conftest import make_office
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from tests.web.test_alerts import opened_secure_email, patient_replies
from tests.web.test_portal import SUBJECT

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 300  # more than one encrypted segment
PDF = b"%PDF-1.7\n" + b"1 0 obj\n" * 20


async def filed(stack: Stack, patient_id: str, count: int) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        response = await stack.office.api.get(f"/api/v1/patients/{patient_id}/chart")
        assert response.status_code == 200
        items: list[dict[str, Any]] = response.json()["items"]
        return items if len(items) >= count else None

    return await eventually(check)


async def test_chart_lists_and_downloads_files(stack: Stack) -> None:
    secure_email_id, patient_id = await opened_secure_email(stack, "ada@example.com")
    await patient_replies(
        stack,
        secure_email_id,
        files=[("insurance card.png", PNG, "image/png"), ("claim.pdf", PDF, "application/pdf")],
    )
    documents = {item["filename"]: item for item in await filed(stack, patient_id, 2)}
    assert set(documents) == {"insurance card.png", "claim.pdf"}
    card = documents["insurance card.png"]
    assert card["size"] == len(PNG) and card["content_type"] == "image/png"
    assert card["secure_email_id"] == secure_email_id and card["filed_at"]

    page = await stack.office.browser.get(f"/patients/{patient_id}/chart")
    assert page.status_code == 200
    assert "Chart: Ada" in page.text
    assert "insurance card.png" in page.text and "claim.pdf" in page.text
    assert SUBJECT in page.text and f'href="/secure-emails/{secure_email_id}"' in page.text
    # The office's own attachment was not the patient's: it is not in the chart.
    assert "plan.pdf" not in page.text

    for filename, data in (("insurance card.png", PNG), ("claim.pdf", PDF)):
        document_id = documents[filename]["id"]
        assert f'href="/patients/{patient_id}/chart/{document_id}"' in page.text
        for client, path in (
            (stack.office.browser, f"/patients/{patient_id}/chart/{document_id}"),
            (stack.office.api, f"/api/v1/patients/{patient_id}/chart/{document_id}"),
        ):
            download = await client.get(path)
            assert download.status_code == 200, download.text
            assert download.content == data
            disposition = download.headers["content-disposition"]
            assert disposition.startswith("attachment;")
            assert filename.replace(" ", "%20") in disposition
            assert download.headers["content-length"] == str(len(data))

    patients = await stack.office.browser.get("/patients")
    assert f'href="/patients/{patient_id}/chart"' in patients.text


async def test_chart_of_other_practice_or_patient_not_found(stack: Stack) -> None:
    secure_email_id, patient_id = await opened_secure_email(stack, "ada@example.com")
    grace_id = await stack.add_patient("Grace", "grace@example.com")
    await patient_replies(stack, secure_email_id, files=[("claim.pdf", PDF, "application/pdf")])
    [document] = await filed(stack, patient_id, 1)

    # Another patient of the same practice: an empty chart, and not Ada's file.
    assert (await stack.office.api.get(f"/api/v1/patients/{grace_id}/chart")).json() == {
        "items": []
    }
    grace_page = await stack.office.browser.get(f"/patients/{grace_id}/chart")
    assert grace_page.status_code == 200 and "No files yet." in grace_page.text
    for path in (
        f"/api/v1/patients/{grace_id}/chart/{document['id']}",
        f"/patients/{grace_id}/chart/{document['id']}",
    ):
        client = stack.office.api if path.startswith("/api/") else stack.office.browser
        response = await client.get(path)
        assert response.status_code == 404 and PDF not in response.content

    other = await make_office(stack.app, stack.settings)
    try:
        for path in (
            f"/api/v1/patients/{patient_id}/chart",
            f"/api/v1/patients/{patient_id}/chart/{document['id']}",
        ):
            response = await other.api.get(path)
            assert response.status_code == 404
        for path in (
            f"/patients/{patient_id}/chart",
            f"/patients/{patient_id}/chart/{document['id']}",
        ):
            response = await other.browser.get(path)
            assert response.status_code == 404
            assert "claim.pdf" not in response.text
    finally:
        await other.aclose()
