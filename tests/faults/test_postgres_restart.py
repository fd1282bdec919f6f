"""PostgreSQL stops and starts again while secure emails are being sent.

A cluster of this test's own (``own_postgres``) under the whole stack: secure emails are
sent and the cluster is stopped while their notices are on their way. During the
outage every request (the office's API and pages, the patient's link, a new Send
Secure) answers 503 with Retry-After, never a 500 nor a traceback. Once the cluster is
back, the web app and the worker carry on without being restarted: the activities cut
off are retried, every secure email reaches "sent" with exactly one notice, a new one
goes out, and the audit chain verifies.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from infra.audit_chain import verify_database
from tests.faults.conftest import OwnPostgres, duplicates, report
from tests.fixtures.s3 import S3Server
from tests.fixtures.stack import NOTICE_ID, Stack, own_settings, running_stack
from tests.fixtures.waiting import eventually
from workers.smtp_catcher import read_maildir

BEFORE = 6  # secure emails sent just before the outage
DOWN_FOR = 6.0


@pytest.fixture
async def stack_on_own_postgres(
    tmp_path: Path,
    own_postgres: OwnPostgres,
    s3_server: S3Server,
    dev_server_env: WorkflowEnvironment,
) -> AsyncIterator[Stack]:
    settings = own_settings(
        tmp_path, database_url=own_postgres.url, migration_database_url=own_postgres.url
    )
    async with running_stack(settings, s3_server, dev_server_env, tmp_path / "mail") as stack:
        yield stack


def refused_properly(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.headers.get("Retry-After", "").isdigit()
        and "Traceback" not in response.text
    )


async def during_outage(stack: Stack, patient_id: str, link: str) -> list[httpx.Response]:
    """What the office and a patient get while the database is down, asked again and
    again for the outage's length."""
    answers: list[httpx.Response] = []
    deadline = time.monotonic() + DOWN_FOR
    async with stack.browser() as patient:
        while time.monotonic() < deadline:
            answers += [
                await stack.office.api.get("/api/v1/secure-emails"),
                await stack.office.browser.get("/email-client/sent"),
                await patient.get(link),
                await stack.office.api.post(
                    "/api/v1/secure-emails",
                    data={"patient_id": patient_id, "subject": "During", "body": "Down"},
                ),
            ]
            await asyncio.sleep(0.5)
    return answers


@pytest.mark.timeout(240)
async def test_postgres_restart_loses_nothing(
    stack_on_own_postgres: Stack, own_postgres: OwnPostgres
) -> None:
    stack = stack_on_own_postgres
    addresses = [f"patient{n}@example.com" for n in range(BEFORE + 1)]
    patients = [await stack.add_patient(f"Patient {n}", a) for n, a in enumerate(addresses)]
    # One delivered before the outage: its patient opens the link during it.
    first = await stack.send_secure(patients[0], "Before", "Delivered.")
    link = await stack.notice_link(addresses[0])
    sent = [first] + [
        await stack.send_secure(patient_id, "Before", "On its way.")
        for patient_id in patients[1:BEFORE]
    ]

    # Stopped while the notices are on their way (and their statuses being recorded).
    own_postgres.stop()
    stopped_at = datetime.now(UTC)
    answers = await during_outage(stack, patients[0], link)
    own_postgres.start()
    started_at = datetime.now(UTC)

    wrong = [(r.request.method, r.request.url.path, r.status_code) for r in answers]
    assert all(refused_properly(r) for r in answers), [
        w for w, r in zip(wrong, answers, strict=True) if not refused_properly(r)
    ]

    # Back, with neither the web app nor the worker restarted.
    async def answering() -> bool:
        return (await stack.office.api.get("/api/v1/secure-emails")).status_code == 200

    await eventually(answering, what="the web app answering again", timeout=30)
    after = await stack.send_secure(patients[BEFORE], "After", "Sent after the restart.")
    sent.append(after)

    async def all_sent() -> bool:
        for secure_email_id in sent:
            shown = await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")
            if shown.json()["status"] != "sent":
                return False
        return True

    await eventually(all_sent, what="every secure email sent", timeout=90)
    listed = (await stack.office.api.get("/api/v1/secure-emails", params={"limit": 50})).json()
    # Nothing the outage refused was half-made: only the messages sent before and after.
    assert sorted(item["id"] for item in listed["items"]) == sorted(sent)

    everything = await asyncio.to_thread(read_maildir, stack.maildir)
    notices = [m for m in everything if NOTICE_ID.search(str(m["Message-ID"]))]
    per_patient = Counter(str(m["To"]) for m in notices)
    assert per_patient == Counter(addresses), per_patient
    assert duplicates(everything) == 0
    async with stack.browser() as patient:
        assert (await patient.get(link)).status_code == 200
    chain = await verify_database(stack.settings.database_url)
    assert chain.intact, chain

    report(
        f"PostgreSQL restart: down {stopped_at:%H:%M:%S}-{started_at:%H:%M:%S}; "
        f"{len(answers)} requests during the outage, all 503 with Retry-After; "
        f"{len(sent)} secure emails, all sent, each notice once; 0 lost"
    )
