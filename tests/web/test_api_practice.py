"""Practice settings over ``/api/v1/practice`` (R1, R8)."""

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
    ],
)
async def test_change_practice_refuses_bad_input(
    office: Office, body: dict[str, object], field: str
) -> None:
    before = (await office.api.get("/api/v1/practice")).json()
    response = await office.api.put("/api/v1/practice", json=body)
    assert response.status_code == 422
    assert field in [str(item["loc"][-1]) for item in response.json()["detail"]]
    assert (await office.api.get("/api/v1/practice")).json() == before


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
