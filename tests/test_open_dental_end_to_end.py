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
SUBJECT, BODY = "Your visit", "See you soon"


async def connected_and_synced(
    stack: Stack, fake: FakeOpenDental, *, patients: int = 250, category: int | None = 187
) -> dict[str, Any]:
    """The stand-in holding ``patients``, connected with ``category`` for reply files,
    synced now: what the settings show after."""
    for _ in range(patients):
        fake.add_patient()
    body = {"base_url": fake.url, "developer_key": DEVELOPER_KEY, "customer_key": CUSTOMER_KEY}
    saved = await stack.office.api.put(URL, json=body | {"document_category": category})
    assert saved.status_code == 200, saved.text
    assert (await stack.office.api.post(f"{URL}/sync")).status_code == 202

    async def synced() -> dict[str, Any] | None:
        shown: dict[str, Any] = (await stack.office.api.get(URL)).json()
        return shown if shown["last_sync_at"] else None

    return await eventually(synced, timeout=60, what="the sync to finish")


async def sent_to(stack: Stack, address: str) -> tuple[str, str]:
    """A secure email to the synced patient at ``address``: the patient's id and its id."""
    api = stack.office.api
    [patient] = (await api.get("/api/v1/patients", params={"q": address})).json()["items"]
    sent = await api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient["id"], "subject": SUBJECT, "body": BODY},
    )
    assert sent.status_code == 201, sent.text
    return patient["id"], sent.json()["id"]


async def replied_with(stack: Stack, address: str, name: str, content: bytes) -> None:
    """The patient at ``address`` opens the notice's link and replies with one file."""
    link = await stack.notice_link(address)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, address)
        replied = await patient.post(
            f"{message_path}/reply",
            data={"subject": f"RE: {SUBJECT}", "body": "Here is the photo of my tooth"},
            files=[("attachments", (name, content, "image/png"))],
        )
        assert replied.status_code == 303


async def test_sync_send_and_reply_land_in_open_dental(
    stack: Stack, open_dental_api: FakeOpenDental
) -> None:
    open_dental_api.add_patient(PatStatus="Archived", Email="archived@example.com")
    shown = await connected_and_synced(stack, open_dental_api, patients=249)
    assert shown["last_sync"] == "250 read: 250 added, 0 changed, 0 unchanged, 0 without an email"
    # Paged as the cloud API pages: 100, 100, then a short page of 50.
    offsets = [r for r in open_dental_api.requests if r.startswith("GET /api/v1/patients")]
    assert [r.partition("Offset=")[2] for r in offsets] == ["0", "100", "200"]
    patient_id, _ = await sent_to(stack, "pat17@example.com")
    await replied_with(stack, "pat17@example.com", "tooth photo.png", PNG)

    async def in_open_dental() -> bool:
        return len(open_dental_api.documents) == 1 and len(open_dental_api.commlogs) == 2

    await eventually(in_open_dental, timeout=60, what="the reply's file and two commlogs")
    [document] = open_dental_api.documents
    assert document["PatNum"] == 17
    assert (document["extension"], document["DocCategory"]) == (".png", 187)
    assert document["Description"] == "Secure email reply: tooth photo.png"
    assert document["content"] == PNG
    sent_log, reply_log = open_dental_api.commlogs
    for commlog, direction in ((sent_log, "Sent"), (reply_log, "Received")):
        assert (commlog["PatNum"], commlog["Mode_"], commlog["SentOrReceived"]) == (
            17,
            "Email",
            direction,
        )
        # Nothing the office or the patient wrote went to Open Dental.
        for words in (SUBJECT, BODY, "tooth"):
            assert words not in commlog["Note"]
    assert sent_log["Note"].startswith("Secure email sent, readable until ")
    assert reply_log["Note"] == "Secure email reply received, 1 file"
    # The file is in this product's chart too.
    chart = (await stack.office.api.get(f"/api/v1/patients/{patient_id}/chart")).json()
    assert [item["filename"] for item in chart["items"]] == ["tooth photo.png"]

    api = stack.office.api
    [archived] = (await api.get("/api/v1/patients", params={"q": "archived@"})).json()["items"]
    assert archived["status"] == "Archived"
    refused = await api.post(
        "/api/v1/secure-emails",
        data={"patient_id": archived["id"], "subject": SUBJECT, "body": BODY},
    )
    assert refused.status_code == 422
    assert "This patient is archived" in refused.text
