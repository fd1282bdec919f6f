"""A reply's files on their way to Open Dental when it does not simply take them: a
refusal for good (a category that is not an Imaging category, keys no longer accepted)
tells the office once, naming the patient and the file, which stays in the chart here;
a busy Open Dental (429, 5xx) is tried again until it takes the file, once; and an
attempt after the DocNum was recorded sends nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.to_open_dental import ToOpenDentalActivities
from domain.audit import AuditAction
from domain.open_dental import CommlogToAdd, ReplyFilesToUpload
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import AuditEvent
from infra.objects.encrypted import secure_object_store
from tests.fixtures.open_dental import FakeOpenDental
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from tests.test_open_dental_end_to_end import PNG, connected_and_synced, replied_with, sent_to

ADDRESS = "pat5@example.com"


@pytest.mark.parametrize("refusal", ["not an Imaging category", "keys no longer accepted"])
async def test_file_refused_for_good_alerts_once_and_stays_in_the_chart(
    stack: Stack, open_dental_api: FakeOpenDental, refusal: str
) -> None:
    category = 999 if refusal == "not an Imaging category" else 187
    await connected_and_synced(stack, open_dental_api, patients=20, category=category)
    patient_id, _ = await sent_to(stack, ADDRESS)
    if refusal == "keys no longer accepted":
        open_dental_api.customer_key = "disabled-in-open-dental"
    await replied_with(stack, ADDRESS, "tooth photo.png", PNG)
    api = stack.office.api

    async def refused_alerts() -> list[dict[str, str]] | None:
        items = (await api.get("/api/v1/alerts")).json()["items"]
        found = [item for item in items if item["kind"] == "open_dental_refused"]
        return found or None

    [alert] = await eventually(refused_alerts, timeout=60, what="the office's alert")
    assert alert["message"] == (
        "tooth photo.png from Pat5 Family5 could not be put into Open Dental: it is in the "
        "patient's chart here"
    )
    assert alert["href"] == f"/patients/{patient_id}/chart"
    menu = await stack.office.browser.get("/")
    assert f'<a href="/patients/{patient_id}/chart">tooth photo.png from Pat5 Family5' in menu.text
    assert open_dental_api.documents == []
    chart = (await api.get(f"/api/v1/patients/{patient_id}/chart")).json()
    assert [item["filename"] for item in chart["items"]] == ["tooth photo.png"]
    uploads = [r for r in open_dental_api.requests if r.startswith("POST /api/v1/documents")]
    assert len(uploads) == 1, "a refusal for good is not tried again"
    # Keys refused are the connector's: the Open Dental settings say so (sync paused).
    shown = (await api.get("/api/v1/integrations/open-dental")).json()
    assert (shown["keys_refused_at"] is not None) == (refusal == "keys no longer accepted")


async def test_busy_open_dental_takes_the_file_once(
    stack: Stack, open_dental_api: FakeOpenDental
) -> None:
    await connected_and_synced(stack, open_dental_api, patients=20)
    _, secure_email_id = await sent_to(stack, ADDRESS)
    await eventually(lambda: len(open_dental_api.commlogs) == 1, what="the sending's commlog")
    # The next two requests, the upload's first tries, find Open Dental busy.
    open_dental_api.script.extend([429, 503])
    await replied_with(stack, ADDRESS, "tooth photo.png", PNG)

    def taken() -> bool:
        return len(open_dental_api.documents) == 1 and len(open_dental_api.commlogs) == 2

    await eventually(taken, timeout=60, what="the file taken after two busy answers")
    uploads = [r for r in open_dental_api.requests if r.startswith("POST /api/v1/documents")]
    assert len(uploads) == 3
    assert (await stack.office.api.get("/api/v1/alerts")).json()["items"][0]["kind"] == "reply"

    # Tried again after Open Dental answered (a worker lost the activity's completion):
    # the recorded DocNum and CommlogNum stand, nothing goes twice.
    shown = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
    [reply] = shown["replies"]
    engine = make_engine(stack.settings.database_url)
    again = ToOpenDentalActivities(make_sessionmaker(engine), secure_object_store(stack.settings))
    try:
        files = ReplyFilesToUpload(secure_email_id=secure_email_id, reply_id=reply["id"])
        assert await ActivityEnvironment().run(again.upload_reply_files, files) == 0
        for reply_id in (None, reply["id"]):
            commlog = CommlogToAdd(secure_email_id=secure_email_id, reply_id=reply_id)
            await ActivityEnvironment().run(again.add_commlog, commlog)
        async with engine.connect() as connection:
            audited = await connection.scalars(
                select(AuditEvent.detail)
                .where(
                    AuditEvent.secure_email_id == secure_email_id,
                    AuditEvent.action == AuditAction.OPEN_DENTAL_SENT.value,
                )
                .order_by(AuditEvent.detail)
            )
            details = list(audited)
    finally:
        await engine.dispose()
    assert len(open_dental_api.documents) == 1 and len(open_dental_api.commlogs) == 2
    # Each thing sent once, audited once, by what it was and Open Dental's number.
    assert details == [
        "a file of a reply, DocNum 1",
        "the commlog of a reply, CommlogNum 2",
        "the commlog of the sending, CommlogNum 1",
    ]
