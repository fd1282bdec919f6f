"""Send Secure over ``/api/v1/secure-emails``: every refusal sends and stores nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from infra.db.engine import make_engine
from infra.db.models import Attachment, SecureEmail
from tests.conftest import SENDER
from tests.fixtures.stack import Stack
from workers.smtp_catcher import read_maildir

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


async def count_rows(stack: Stack) -> tuple[int, int]:
    engine = make_engine(stack.settings.database_url)
    async with engine.connect() as connection:
        emails = await connection.scalar(
            select(func.count())
            .select_from(SecureEmail)
            .where(SecureEmail.practice_id == stack.office.practice_id)
        )
        files = await connection.scalar(select(func.count()).select_from(Attachment))
    await engine.dispose()
    return int(emails or 0), int(files or 0)


def stored_objects(stack: Stack, s3_root: Path) -> list[Path]:
    bucket = s3_root / stack.settings.s3_bucket
    return [path for path in bucket.rglob("*") if path.is_file()] if bucket.exists() else []


async def assert_nothing_sent(stack: Stack, s3_root: Path, files_before: int) -> None:
    emails, files = await count_rows(stack)
    assert emails == 0
    assert files == files_before
    assert stored_objects(stack, s3_root) == []
    # Mail goes out later, from a workflow. A secure email sent after the refused one has
    # its notice delivered: it must be the only mail there is.
    await stack.office.api.put("/api/v1/practice", json={"secure_email_enabled": True})
    patient_id = await stack.add_patient("Next Patient", "next@example.com")
    sent = await stack.office.api.post(
        "/api/v1/secure-emails", data={"patient_id": patient_id, "subject": "Hi", "body": "Hi"}
    )
    assert sent.status_code == 201, sent.text
    await stack.notice_link("next@example.com")
    assert [message["To"] for message in read_maildir(stack.maildir)] == ["next@example.com"]


@pytest.fixture
def s3_root(stack: Stack, s3_server: object) -> Path:
    return s3_server.data_dir  # type: ignore[attr-defined, no-any-return]


async def test_send_secure_refused_when_disabled(stack: Stack, s3_root: Path) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    await stack.office.api.put("/api/v1/practice", json={"secure_email_enabled": False})
    _, files_before = await count_rows(stack)
    response = await stack.office.api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, "subject": "Hi", "body": "Hello"},
    )
    assert response.status_code == 409
    assert "not enabled" in response.json()["detail"][0]["msg"]
    await assert_nothing_sent(stack, s3_root, files_before)


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"subject": "  ", "body": "Hello"}, "subject", "Subject is required"),
        ({"subject": "Hi", "body": "\n\t "}, "body", "Body is required"),
        ({"subject": "Hi", "body": "Hello", "cc": "mum@example.com"}, "cc", "CC and BCC"),
        ({"subject": "Hi", "body": "Hello", "bcc": "dad@example.com"}, "bcc", "CC and BCC"),
        ({"subject": "Hi", "body": "Hello", "patient_id": "no-such"}, "patient_id", "no such"),
    ],
)
async def test_send_secure_refuses_bad_form(
    stack: Stack, s3_root: Path, form: dict[str, str], field: str, words: str
) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    _, files_before = await count_rows(stack)
    response = await stack.office.api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, **form},
        files=[("attachments", ("scan.png", PNG, "image/png"))],
    )
    assert response.status_code == 422
    problems = {item["loc"][-1]: item["msg"] for item in response.json()["detail"]}
    assert words.lower() in problems[field].lower()
    await assert_nothing_sent(stack, s3_root, files_before)


async def test_send_secure_refuses_missing_fields(stack: Stack) -> None:
    response = await stack.office.api.post("/api/v1/secure-emails", data={})
    assert response.status_code == 422
    fields = {item["loc"][-1] for item in response.json()["detail"]}
    assert {"patient_id", "subject", "body"} <= fields


async def test_send_secure_refuses_patient_at_sender_address(stack: Stack, s3_root: Path) -> None:
    patient_id = await stack.add_patient("Front desk", SENDER.upper())
    _, files_before = await count_rows(stack)
    response = await stack.office.api.post(
        "/api/v1/secure-emails", data={"patient_id": patient_id, "subject": "Hi", "body": "Hello"}
    )
    assert response.status_code == 422
    assert "no notification could be delivered" in response.json()["detail"][0]["msg"]
    await assert_nothing_sent(stack, s3_root, files_before)


@pytest.mark.parametrize(
    ("filename", "content", "words"),
    [
        ("setup.exe", b"MZ\x90\x00", ".exe"),
        ("scan.png", PDF, "not a PNG"),
        ("notes.txt", b"", "empty"),
    ],
)
async def test_send_secure_refuses_bad_attachment(
    stack: Stack, s3_root: Path, filename: str, content: bytes, words: str
) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    _, files_before = await count_rows(stack)
    response = await stack.office.api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, "subject": "Hi", "body": "Hello"},
        files=[
            ("attachments", ("good.pdf", PDF, "application/pdf")),
            ("attachments", (filename, content, "application/octet-stream")),
        ],
    )
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    assert filename in message and words in message
    assert "good.pdf" not in message
    await assert_nothing_sent(stack, s3_root, files_before)


async def test_send_secure_refuses_attachment_over_20_mb(stack: Stack, s3_root: Path) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    _, files_before = await count_rows(stack)
    big = PDF + b"0" * (20 * 1024 * 1024)
    response = await stack.office.api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, "subject": "Hi", "body": "Hello"},
        files=[("attachments", ("big.pdf", big, "application/pdf"))],
    )
    assert response.status_code == 422
    assert "20 MB" in response.json()["detail"][0]["msg"]
    await assert_nothing_sent(stack, s3_root, files_before)


async def test_read_secure_email_of_other_practice_not_found(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    sent = await stack.office.api.post(
        "/api/v1/secure-emails", data={"patient_id": patient_id, "subject": "Hi", "body": "Yo"}
    )
    from tests.conftest import make_office

    other = await make_office(stack.app, stack.settings)
    response = await other.api.get(f"/api/v1/secure-emails/{sent.json()['id']}")
    assert response.status_code == 404
    await other.aclose()
