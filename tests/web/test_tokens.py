"""API tokens: admins create (shown once), list and revoke them, page and API alike;
expired and revoked tokens are refused; each use is noted, cheaply."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import select, update

from infra.db.engine import make_engine
from infra.db.models import ApiToken
from infra.security import token_hash
from infra.settings import Settings
from tests.conftest import Office, staff_elsewhere
from tests.web.test_staff import add_member, api_for, scalar
from workers.admin import create_token


async def tokens(office: Office) -> list[dict[str, object]]:
    response = await office.api.get("/api/v1/tokens")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def run(settings: Settings, statement: object) -> None:
    engine = make_engine(settings.database_url)
    async with engine.begin() as connection:
        await connection.execute(statement)  # type: ignore[call-overload]
    await engine.dispose()


async def test_token_made_on_the_page_is_shown_once_and_works(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    made = await office.browser.post(
        "/tokens", data={"label": "Open Dental sync", "staff_id": "", "lifetime": "30"}
    )
    assert made.status_code == 200, made.text
    found = re.search(r'<code id="new-token">([^<]+)</code>', made.text)
    assert found
    token = found.group(1)
    later = await office.browser.get("/tokens")
    assert "Open Dental sync" in later.text
    assert token not in later.text and token_hash(token) not in later.text

    listed = next(t for t in await tokens(office) if t["label"] == "Open Dental sync")
    assert set(listed) == {
        "id",
        "label",
        "staff_id",
        "owner",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
        "state",
    }
    assert listed["state"] == "active" and listed["last_used_at"] is None
    expires = datetime.fromisoformat(str(listed["expires_at"]))
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    software = api_for(app, token)
    assert (await software.get("/api/v1/patients")).status_code == 200
    used = next(t for t in await tokens(office) if t["id"] == listed["id"])
    assert used["last_used_at"] is not None
    events = await office.audit_events(action="token.create")
    assert events[-1]["detail"].startswith(f"token {listed['id']} for staff ")
    assert token not in str(events)


async def test_revoked_token_is_refused_at_once(app: FastAPI, office: Office) -> None:
    made = await office.api.post("/api/v1/tokens", json={"label": "old server"})
    assert made.status_code == 201, made.text
    software = api_for(app, made.json()["token"])
    assert (await software.get("/api/v1/patients")).status_code == 200

    revoked = await office.api.post(f"/api/v1/tokens/{made.json()['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked"
    refused = await software.get("/api/v1/patients")
    assert refused.status_code == 401
    assert refused.json()["detail"] == "This API token has been revoked"
    # Revoking again changes nothing and records nothing more.
    assert (await office.api.post(f"/api/v1/tokens/{made.json()['id']}/revoke")).is_success
    assert [e["detail"] for e in await office.audit_events(action="token.revoke")] == [
        f"token {made.json()['id']}"
    ]


async def test_revoke_on_the_page(app: FastAPI, office: Office) -> None:
    made = (await office.api.post("/api/v1/tokens", json={"label": "laptop"})).json()
    page = await office.browser.post(f"/tokens/{made['id']}/revoke")
    assert page.status_code == 303
    assert "Token revoked" in (await office.browser.get(page.headers["location"])).text
    assert (await api_for(app, made["token"]).get("/api/v1/patients")).status_code == 401


async def test_expired_token_is_refused(app: FastAPI, settings: Settings, office: Office) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    made = await office.api.post(
        "/api/v1/tokens", json={"label": "trial", "expires_at": soon.isoformat()}
    )
    assert made.status_code == 201, made.text
    software = api_for(app, made.json()["token"])
    assert (await software.get("/api/v1/patients")).status_code == 200
    # An hour passes.
    await run(
        settings,
        update(ApiToken)
        .where(ApiToken.id == made.json()["id"])
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)),
    )
    refused = await software.get("/api/v1/patients")
    assert refused.status_code == 401
    assert refused.json()["detail"] == "This API token has expired"
    assert next(t for t in await tokens(office) if t["id"] == made.json()["id"])["state"] == (
        "expired"
    )


async def test_token_refuses_bad_input(settings: Settings, office: Office) -> None:
    before = await tokens(office)
    past = await office.api.post(
        "/api/v1/tokens",
        json={"label": "x", "expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
    )
    assert past.status_code == 422
    assert past.json()["detail"][0]["loc"][-1] == "expires_at"
    blank = await office.api.post("/api/v1/tokens", json={"label": ""})
    assert blank.status_code == 422
    stranger_id = await staff_elsewhere(settings)
    foreign = await office.api.post("/api/v1/tokens", json={"label": "x", "staff_id": stranger_id})
    assert foreign.status_code == 422
    assert foreign.json()["detail"][0]["loc"][-1] == "staff_id"
    page = await office.browser.post("/tokens", data={"label": " ", "lifetime": "forever"})
    assert page.status_code == 422
    assert "Label is required" in page.text and "choose one of the listed" in page.text
    assert await tokens(office) == before
    unknown = await office.api.post(f"/api/v1/tokens/{uuid.uuid4()}/revoke")
    assert unknown.status_code == 404


async def test_token_for_a_clerk_acts_as_a_clerk(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    clerk = await add_member(app, settings, office.practice_id, name="Front Desk")
    made = await office.api.post(
        "/api/v1/tokens", json={"label": "front desk software", "staff_id": clerk.id}
    )
    assert made.status_code == 201, made.text
    assert made.json()["owner"] == "Front Desk"
    software = api_for(app, made.json()["token"])
    assert (await software.get("/api/v1/patients")).status_code == 200
    refused = await software.put("/api/v1/practice", json={"expiry_days": 90})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Office administrators only"


async def test_last_use_is_written_at_most_once_a_minute(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    made = (await office.api.post("/api/v1/tokens", json={"label": "busy"})).json()
    software = api_for(app, made["token"])
    await software.get("/api/v1/patients")
    statement = select(ApiToken.last_used_at).where(ApiToken.id == made["id"])
    first = await scalar(settings, statement)
    assert first is not None
    await software.get("/api/v1/patients")
    assert await scalar(settings, statement) == first
    two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)
    await run(
        settings,
        update(ApiToken).where(ApiToken.id == made["id"]).values(last_used_at=two_minutes_ago),
    )
    await software.get("/api/v1/patients")
    assert await scalar(settings, statement) > two_minutes_ago + timedelta(minutes=1)


async def test_command_line_token_still_works(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    token = await create_token(settings, office.email, "from the command line")
    assert (await api_for(app, token).get("/api/v1/patients")).status_code == 200
    listed = [t["label"] for t in await tokens(office)]
    assert "from the command line" in listed
