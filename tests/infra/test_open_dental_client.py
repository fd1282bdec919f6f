"""The Open Dental client against the stand-in, and the stand-in against what Open
Dental's API documentation says: the exact auth header, Offset paging, DateTStamp and
serverDateTime, 400 with an explanation for a missing required field, 401, 429."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import httpx
import pytest

from infra.open_dental_client import (
    Keys,
    KeysRefused,
    OpenDentalClient,
    RequestRefused,
    TryLater,
    Unreachable,
)
from tests.fixtures.open_dental import CUSTOMER_KEY, DEVELOPER_KEY, FakeOpenDental
from tests.fixtures.processes import free_port

KEYS = Keys(DEVELOPER_KEY, CUSTOMER_KEY)


async def test_patients_page_by_offset_with_server_date_time(
    open_dental_api: FakeOpenDental,
) -> None:
    for _ in range(250):
        open_dental_api.add_patient()
    client = OpenDentalClient(open_dental_api.url, KEYS)
    pages = [await client.patients_changed(None, offset) for offset in (0, 100, 200)]
    assert [len(page.patients) for page in pages] == [100, 100, 50]
    assert pages[2].patients[-1]["PatNum"] == 250
    stamp = pages[0].server_date_time
    assert stamp is not None and len(stamp) == len("2026-12-06 23:41:19")
    open_dental_api.change_patient(42, LName="Changed")
    changed = await client.patients_changed(stamp, 0)
    assert 42 in [patient["PatNum"] for patient in changed.patients]
    assert open_dental_api.requests[-1].endswith(f"Offset=0&DateTStamp={quote_plus(stamp)}")


async def test_open_dental_refusals_arrive_as_their_kind(open_dental_api: FakeOpenDental) -> None:
    with pytest.raises(KeysRefused):
        await OpenDentalClient(open_dental_api.url, Keys(DEVELOPER_KEY, "wrong")).check_keys()
    client = OpenDentalClient(open_dental_api.url, KEYS)
    open_dental_api.script = [429]
    with pytest.raises(TryLater):
        await client.check_keys()
    open_dental_api.script = [500]
    with pytest.raises(TryLater):
        await client.check_keys()
    with pytest.raises(Unreachable):
        await OpenDentalClient(f"http://127.0.0.1:{free_port()}/api/v1", KEYS).check_keys()
    with pytest.raises(RequestRefused):
        await client.add_commlog({"PatNum": 1})
    await client.check_keys()


async def test_stand_in_checks_what_open_dental_would(open_dental_api: FakeOpenDental) -> None:
    number = open_dental_api.add_patient()
    headers = {"Authorization": open_dental_api.authorization}
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    async with httpx.AsyncClient(base_url=open_dental_api.url, headers=headers) as http:
        # The header's exact form: "ODFHIR developer/customer", nothing else.
        for wrong in (f"Bearer {CUSTOMER_KEY}", f"ODFHIR {CUSTOMER_KEY}/{DEVELOPER_KEY}"):
            refused = await http.get("/patients/Simple", headers={"Authorization": wrong})
            assert refused.status_code == 401
        lower = await http.get("/patients/Simple", params={"offset": "100"})
        assert (lower.status_code, lower.json()) == (400, "Invalid parameter: offset.")
        document = {"PatNum": number, "rawBase64": png, "extension": ".png"}
        for missing in ("PatNum", "rawBase64", "extension"):
            answer = await http.post("/documents/Upload", json=document | {missing: None})
            assert (answer.status_code, answer.json()) == (400, f"{missing} is required.")
        no_dot = await http.post("/documents/Upload", json=document | {"extension": "png"})
        assert (no_dot.status_code, no_dot.json()) == (400, "extension must start with a period.")
        category = await http.post("/documents/Upload", json=document | {"DocCategory": 999})
        assert (category.status_code, category.json()) == (400, "DocCategory is invalid.")
        nobody = await http.post("/documents/Upload", json=document | {"PatNum": number + 1})
        assert (nobody.status_code, nobody.json()) == (404, "Patient not found.")
        open_dental_api.script.append(429)
        busy = await http.post("/documents/Upload", json=document)
        assert busy.status_code == 429
        stored = await http.post("/documents/Upload", json=document | {"DocCategory": 187})
        assert stored.status_code == 201 and stored.json()["DocNum"] == 1
        commlog = {"PatNum": number, "Note": "Secure email sent", "Mode_": "Email"}
        for missing in ("PatNum", "Note"):
            answer = await http.post("/commlogs", json=commlog | {missing: ""})
            assert (answer.status_code, answer.json()) == (400, f"{missing} is required.")
        mode = await http.post("/commlogs", json=commlog | {"Mode_": "email"})
        assert (mode.status_code, mode.json()) == (400, "Mode_ is invalid.")
        nobody = await http.post("/commlogs", json=commlog | {"PatNum": number + 1})
        assert nobody.status_code == 404
        added = await http.post("/commlogs", json=commlog | {"SentOrReceived": "Sent"})
        assert added.status_code == 201 and added.json()["CommlogNum"] == 1
    assert len(open_dental_api.documents) == 1 and len(open_dental_api.commlogs) == 1
    [kept] = open_dental_api.documents
    assert (kept["DocCategory"], kept["extension"], kept["content"]) == (
        187,
        ".png",
        b"\x89PNG\r\n\x1a\n",
    )
