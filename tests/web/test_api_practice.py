"""Practice settings over ``/api/v1/practice`` (R1, R8, R16)."""

from __future__ import annotations

import pytest

from infra.settings import Settings
from tests.conftest import SENDER, TEST_KEYS, TEST_PORTAL_KEYS, Office, make_office
from web.app import create_app


async def test_read_practice_settings(office: Office) -> None:
    response = await office.api.get("/api/v1/practice")
    assert response.status_code == 200
    assert response.json() | {"id": None} == {
        "id": None,
        "name": "Smile Dental",
        "secure_email_enabled": True,
        "sender_address": SENDER,
        "expiry_days": 7,
        "time_zone": "America/New_York",
        "reminder_after_hours": 48,
        "phone": None,
        "address": None,
    }


async def test_change_practice_settings(office: Office) -> None:
    response = await office.api.put(
        "/api/v1/practice",
        json={"secure_email_enabled": False, "expiry_days": 14, "sender_address": "x@y.example"},
    )
    assert response.status_code == 200
    again = (await office.api.get("/api/v1/practice")).json()
    assert again["secure_email_enabled"] is False
    assert again["expiry_days"] == 14
    assert again["sender_address"] == "x@y.example"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expiry_days": 0}, "expiry_days"),
        ({"expiry_days": 91}, "expiry_days"),
        ({"expiry_days": "soon"}, "expiry_days"),
        ({"sender_address": "front desk"}, "sender_address"),
        ({"secure_email_enabled": True, "sender_address": None}, "sender_address"),
        ({"colour": "blue"}, "colour"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "EST5"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"reminder_after_hours": -1}, "reminder_after_hours"),
        ({"reminder_after_hours": "a day"}, "reminder_after_hours"),
        # Seven days are 168 hours: a reminder then would come with the expiry.
        ({"reminder_after_hours": 168}, "reminder_after_hours"),
        ({"reminder_after_hours": 500}, "reminder_after_hours"),
        # Checked against the expiry asked for with it, not the one stored.
        ({"expiry_days": 1, "reminder_after_hours": 24}, "reminder_after_hours"),
        # A shorter expiry alone that the stored reminder (48 hours) would not come before.
        ({"expiry_days": 2}, "expiry_days"),
    ],
)
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_change_practice_refuses_bad_input(
    office: Office, body: dict[str, object], field: str, method: str
) -> None:
    before = (await office.api.get("/api/v1/practice")).json()
    response = await office.api.request(method, "/api/v1/practice", json=body)
    assert response.status_code == 422
    assert field in [str(item["loc"][-1]) for item in response.json()["detail"]]
    assert (await office.api.get("/api/v1/practice")).json() == before
    assert await office.audit_events(action="office.settings_change") == []


@pytest.mark.parametrize(
    "body",
    [
        {"expiry_days": 1, "reminder_after_hours": 0},
        {"expiry_days": 3, "reminder_after_hours": 71},
        {"expiry_days": 90, "reminder_after_hours": 90 * 24 - 1},
        {"reminder_after_hours": 0},
    ],
)
async def test_reminder_before_the_expiry_or_off_is_taken(
    office: Office, body: dict[str, object]
) -> None:
    response = await office.api.patch("/api/v1/practice", json=body)
    assert response.status_code == 200, response.text
    assert response.json() | body == response.json()


async def test_change_sender_must_be_verified_for_sendgrid(settings: Settings) -> None:
    production = settings.model_copy(
        update={
            "environment": "production",
            "mail_transport": "sendgrid",
            "sendgrid_verified_senders": "smile-dental.example, billing@partner.example",
            # Production generates no key ring of its own.
            **TEST_KEYS.settings_fields(),
            **TEST_PORTAL_KEYS.settings_fields(),
        }
    )
    app = create_app(production)
    async with app.router.lifespan_context(app):
        office = await make_office(app, production)
        refused = await office.api.put(
            "/api/v1/practice", json={"sender_address": "front@elsewhere.example"}
        )
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"][-1] == "sender_address"
        assert "not verified" in refused.json()["detail"][0]["msg"]
        for verified in ("desk@smile-dental.example", "billing@partner.example"):
            accepted = await office.api.put("/api/v1/practice", json={"sender_address": verified})
            assert accepted.status_code == 200, accepted.text
        await office.aclose()


async def test_put_takes_back_what_get_returns(office: Office) -> None:
    current = (await office.api.get("/api/v1/practice")).json()
    again = await office.api.put("/api/v1/practice", json={**current, "expiry_days": 10})
    assert again.status_code == 200, again.text
    assert again.json() == {**current, "expiry_days": 10}
    other = await office.api.put("/api/v1/practice", json={**current, "id": "another"})
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"][-1] == "id"
    assert (await office.api.get("/api/v1/practice")).json()["expiry_days"] == 10


async def test_put_of_get_body_changes_nothing(office: Office) -> None:
    current = (await office.api.get("/api/v1/practice")).json()
    again = await office.api.put("/api/v1/practice", json=current)
    assert again.status_code == 200, again.text
    assert again.json() == current
    assert await office.audit_events(action="office.settings_change") == []


async def test_put_round_trips_new_settings(office: Office) -> None:
    current = (await office.api.get("/api/v1/practice")).json()
    changed = {**current, "time_zone": "Asia/Tokyo", "reminder_after_hours": 24}
    response = await office.api.put("/api/v1/practice", json=changed)
    assert response.status_code == 200, response.text
    assert response.json() == changed
    assert (await office.api.get("/api/v1/practice")).json() == changed
    details = {e["detail"] for e in await office.audit_events(action="office.settings_change")}
    assert details == {
        "time_zone: America/New_York → Asia/Tokyo",
        "reminder_after_hours: 48 → 24",
    }


async def test_put_with_another_id_is_refused_naming_id(office: Office) -> None:
    current = (await office.api.get("/api/v1/practice")).json()
    response = await office.api.put(
        "/api/v1/practice", json={**current, "id": "another", "time_zone": "Asia/Tokyo"}
    )
    assert response.status_code == 422
    assert [item["loc"][-1] for item in response.json()["detail"]] == ["id"]
    assert (await office.api.get("/api/v1/practice")).json() == current


async def test_patch_changes_only_what_it_is_given(office: Office) -> None:
    current = (await office.api.get("/api/v1/practice")).json()
    response = await office.api.patch("/api/v1/practice", json={"time_zone": "Europe/Paris"})
    assert response.status_code == 200, response.text
    assert response.json() == {**current, "time_zone": "Europe/Paris"}
    response = await office.api.patch("/api/v1/practice", json={"reminder_after_hours": 12})
    assert response.json() == {**current, "time_zone": "Europe/Paris", "reminder_after_hours": 12}
    # PATCH takes no id: it is not a setting.
    refused = await office.api.patch("/api/v1/practice", json={"id": current["id"]})
    assert refused.status_code == 422


async def test_openapi_declares_the_refusals_of_changes(office: Office) -> None:
    paths = (await office.api.get("/openapi.json")).json()["paths"]["/api/v1/practice"]
    for method in ("put", "patch"):
        assert {"403", "413", "422"} <= set(paths[method]["responses"])
    schema = (await office.api.get("/openapi.json")).json()["components"]["schemas"]
    assert {"time_zone", "reminder_after_hours"} <= set(schema["PracticePublic"]["properties"])
