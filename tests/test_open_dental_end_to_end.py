"""The Open Dental connector on the whole product (web app, the worker as it is built,
Temporal dev server) against the stand-in: connect, sync now (250 patients, three
pages), send to a synced patient who replies with a PNG: the file is in the patient's
Imaging module and both are commlogs there; an Open Dental patient of a status not sent
to is refused."""

from __future__ import annotations

from typing import Any

from tests.fixtures.open_dental import CUSTOMER_KEY, DEVELOPER_KEY, FakeOpenDental
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from tests.web.test_portal import sign_in

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

URL = "/api/v1/integrations/open-dental"


async def test_sync_now_brings_patients_that_can_be_sent_to(
    stack: Stack, open_dental_api: FakeOpenDental
) -> None:
    for _ in range(250):
        open_dental_api.add_patient()
    open_dental_api.change_patient(3, PatStatus="Archived", Email="archived@example.com")
    api = stack.office.api
    body = {"base_url": open_dental_api.url, "developer_key": DEVELOPER_KEY}
    body |= {"customer_key": CUSTOMER_KEY, "document_category": 187}
    saved = await api.put(URL, json=body)
    assert saved.status_code == 200, saved.text
    assert (await api.post(f"{URL}/sync")).status_code == 202

    async def synced() -> dict[str, Any] | None:
        shown = (await api.get(URL)).json()
        return shown if shown["last_sync_at"] else None

    shown = await eventually(synced, timeout=60, what="the sync to finish")
    assert shown["last_sync"] == "250 read: 250 added, 0 changed, 0 unchanged, 0 without an email"
    found = (await api.get("/api/v1/patients", params={"q": "pat17@example.com"})).json()
    [synced] = found["items"]
    patient_id = synced["id"]
    sent = await api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, "subject": "Your visit", "body": "See you soon"},
    )
    assert sent.status_code == 201, sent.text
    # Paged as the cloud API pages: 100, 100, then a short page of 50.
    offsets = [r for r in open_dental_api.requests if r.startswith("GET /api/v1/patients")]
    assert [r.partition("Offset=")[2] for r in offsets] == ["0", "100", "200"]
    link = await stack.notice_link("pat17@example.com")
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "pat17@example.com")
        replied = await patient.post(
            f"{message_path}/reply",
            data={"subject": "RE: Your visit", "body": "Here is the photo of my tooth"},
            files=[("attachments", ("tooth photo.png", PNG, "image/png"))],
        )
        assert replied.status_code == 303

    async def in_open_dental() -> bool:
        return len(open_dental_api.documents) == 1 and len(open_dental_api.commlogs) == 2

    await eventually(in_open_dental, timeout=60, what="the reply's file and two commlogs")
    [document] = open_dental_api.documents
    assert document["PatNum"] == 17
    assert (document["extension"], document["DocCategory"]) == (".png", 187)
    assert document["Description"] == "Secure email reply: tooth photo.png"
    assert document["content"] == PNG
    sent_log, reply_log = open_dental_api.commlogs
    assert (sent_log["PatNum"], sent_log["Mode_"], sent_log["SentOrReceived"]) == (
        17,
        "Email",
        "Sent",
    )
    assert sent_log["Note"].startswith("Secure email sent, readable until ")
    assert (reply_log["PatNum"], reply_log["Mode_"], reply_log["SentOrReceived"]) == (
        17,
        "Email",
        "Received",
    )
    assert reply_log["Note"] == "Secure email reply received, 1 file"
    # Nothing the office or the patient wrote went to Open Dental.
    for commlog in (sent_log, reply_log):
        for words in ("Your visit", "See you soon", "tooth"):
            assert words not in commlog["Note"]
    # The file is in this product's chart too.
    chart = (await api.get(f"/api/v1/patients/{patient_id}/chart")).json()
    assert [item["filename"] for item in chart["items"]] == ["tooth photo.png"]
    [archived] = (await api.get("/api/v1/patients", params={"q": "archived@"})).json()["items"]
    assert archived["status"] == "Archived"
    refused = await api.post(
        "/api/v1/secure-emails",
        data={"patient_id": archived["id"], "subject": "Your visit", "body": "See you soon"},
    )
    assert refused.status_code == 422
    assert "This patient is archived" in refused.text
