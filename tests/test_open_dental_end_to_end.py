"""The Open Dental sync on the whole product (web app, the worker as it is built,
Temporal dev server) against the stand-in: connect, sync now, then send to a synced
patient, and find an Open Dental patient of a status not sent to refused."""

from __future__ import annotations

from typing import Any

from tests.fixtures.open_dental import CUSTOMER_KEY, DEVELOPER_KEY, FakeOpenDental
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually

URL = "/api/v1/integrations/open-dental"


async def test_sync_now_brings_patients_that_can_be_sent_to(
    stack: Stack, open_dental_api: FakeOpenDental
) -> None:
    for _ in range(250):
        open_dental_api.add_patient()
    open_dental_api.change_patient(3, PatStatus="Archived", Email="archived@example.com")
    api = stack.office.api
    body = {"base_url": open_dental_api.url, "developer_key": DEVELOPER_KEY}
    saved = await api.put(URL, json=body | {"customer_key": CUSTOMER_KEY})
    assert saved.status_code == 200, saved.text
    assert (await api.post(f"{URL}/sync")).status_code == 202

    async def synced() -> dict[str, Any] | None:
        shown = (await api.get(URL)).json()
        return shown if shown["last_sync_at"] else None

    shown = await eventually(synced, timeout=60, what="the sync to finish")
    assert shown["last_sync"] == "250 read: 250 added, 0 changed, 0 unchanged, 0 without an email"
    found = (await api.get("/api/v1/patients", params={"q": "pat17@example.com"})).json()
    [patient] = found["items"]
    sent = await api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient["id"], "subject": "Your visit", "body": "See you soon"},
    )
    assert sent.status_code == 201, sent.text
    await stack.notice_link("pat17@example.com")
    [archived] = (await api.get("/api/v1/patients", params={"q": "archived@"})).json()["items"]
    assert archived["status"] == "Archived"
    refused = await api.post(
        "/api/v1/secure-emails",
        data={"patient_id": archived["id"], "subject": "Your visit", "body": "See you soon"},
    )
    assert refused.status_code == 422
    assert "This patient is archived" in refused.text
