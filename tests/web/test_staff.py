"""The Staff page and ``/api/v1/staff``: admins add staff, change roles, deactivate and
reset passwords; a temporary password is shown once and replaced at the next log-in."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from domain.staff import StaffRole
from infra.accounts import create_api_token, create_staff_user
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import AuditEvent, Practice, StaffSession, StaffUser
from infra.settings import Settings
from tests.conftest import STAFF_PASSWORD, Browser, Office, some_client_address, staff_elsewhere
from workers.admin import create_staff

NEW_PASSWORD = "four unrelated words here"


@dataclass
class Member:
    """A staff member signed in at a browser of their own, with an API token."""

    id: str
    email: str
    token: str
    browser: Browser
    api: httpx.AsyncClient


def browser_for(app: FastAPI) -> Browser:
    transport = httpx.ASGITransport(app=app, client=(some_client_address(), 50000))
    return Browser(transport=transport, base_url="http://portal.test")


def api_for(app: FastAPI, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(some_client_address(), 50000)),
        base_url="http://portal.test",
        headers={"Authorization": f"Bearer {token}"},
    )


async def add_member(
    app: FastAPI,
    settings: Settings,
    practice_id: str,
    *,
    role: StaffRole = StaffRole.CLERK,
    name: str = "Front Desk",
) -> Member:
    """Made as the command line makes accounts; signed in through the log-in page."""
    engine = make_engine(settings.database_url)
    email = f"{role.value}-{uuid.uuid4().hex[:8]}@smile-dental.example"
    async with make_sessionmaker(engine)() as db:
        practice = await db.get(Practice, practice_id)
        assert practice is not None
        user = await create_staff_user(db, practice, email, STAFF_PASSWORD, name=name, role=role)
        token = await create_api_token(db, user, f"{name}'s token")
        await db.commit()
        user_id = user.id
    await engine.dispose()
    browser = browser_for(app)
    response = await browser.post("/login", data={"email": email, "password": STAFF_PASSWORD})
    assert response.status_code == 303, response.text
    return Member(user_id, email, token, browser, api_for(app, token))


async def scalar(settings: Settings, statement: Any) -> Any:
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        value = await db.scalar(statement)
    await engine.dispose()
    return value


async def sessions_of(settings: Settings, staff_id: str) -> int:
    statement = select(func.count()).select_from(StaffSession)
    return int(await scalar(settings, statement.where(StaffSession.staff_id == staff_id)))


def temporary_password_on(page: str) -> str:
    found = re.search(r'<code id="temporary-password">([^<]+)</code>', page)
    assert found, page
    return found.group(1)


async def staff_list(office: Office) -> list[dict[str, Any]]:
    response = await office.api.get("/api/v1/staff")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


# The page --------------------------------------------------------------------------


async def test_staff_page_lists_the_practice_staff_only(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    clerk = await add_member(app, settings, office.practice_id, name="Grace Hopper")
    await staff_elsewhere(settings)

    page = await office.browser.get("/staff")
    assert page.status_code == 200
    assert "Grace Hopper" in page.text and clerk.email in page.text
    assert office.email in page.text
    assert "other.example" not in page.text
    assert [m["email"] for m in await staff_list(office)].count(clerk.email) == 1
    menu = await office.browser.get("/")
    assert 'href="/staff"' in menu.text and 'href="/tokens"' in menu.text
    clerk_menu = await clerk.browser.get("/")
    assert 'href="/staff"' not in clerk_menu.text
    assert 'href="/tokens"' not in clerk_menu.text
    assert 'href="/settings"' not in clerk_menu.text


async def test_added_member_must_choose_a_password_before_anything_else(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    email = f"new-{uuid.uuid4().hex[:6]}@smile-dental.example"
    added = await office.browser.post(
        "/staff", data={"name": "Katherine Johnson", "email": email, "role": "clerk"}
    )
    assert added.status_code == 200, added.text
    temporary = temporary_password_on(added.text)
    # Shown once: not on the next visit, and in no event of the audit log.
    assert temporary not in (await office.browser.get("/staff")).text
    events = await office.audit_events(action="staff.add")
    assert events and all(temporary not in str(e) for e in events)
    member = next(m for m in await staff_list(office) if m["email"] == email)
    assert member["role"] == "clerk" and member["must_change_password"] is True
    assert events[-1]["detail"] == f"staff {member['id']} as clerk"

    newcomer = browser_for(app)
    login = await newcomer.post("/login", data={"email": email, "password": temporary})
    assert login.status_code == 303
    assert login.headers["location"] == "/change-password"
    for path in ("/", "/patients", "/email-client"):
        response = await newcomer.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/change-password"
    form = await newcomer.get("/change-password")
    assert "temporary password" in form.text

    refusals = {
        "Your current password is not correct": {
            "current_password": "not it",
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
        "at least 12 characters": {
            "current_password": temporary,
            "new_password": "short",
            "confirm_password": "short",
        },
        "do not match": {
            "current_password": temporary,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD + "!",
        },
    }
    for message, data in refusals.items():
        refused = await newcomer.post("/change-password", data=data)
        assert refused.status_code == 422
        assert message in refused.text
    assert (await newcomer.get("/")).headers["location"] == "/change-password"

    changed = await newcomer.post(
        "/change-password",
        data={
            "current_password": temporary,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert changed.status_code == 303
    assert (await newcomer.get("/")).status_code == 200
    again = browser_for(app)
    assert (
        await again.post("/login", data={"email": email, "password": temporary})
    ).status_code == 401
    login = await again.post("/login", data={"email": email, "password": NEW_PASSWORD})
    assert login.headers["location"] == "/"
    changes = await office.audit_events(action="staff.password_change")
    assert [e["actor_id"] for e in changes] == [member["id"]]


async def test_add_refuses_bad_input_and_an_address_already_in_use(office: Office) -> None:
    before = await staff_list(office)
    invalid = await office.browser.post(
        "/staff", data={"name": " ", "email": "not-an-address", "role": "clerk"}
    )
    assert invalid.status_code == 422
    assert "Nobody was added" in invalid.text
    taken = await office.browser.post(
        "/staff", data={"name": "Twin", "email": office.email.upper(), "role": "clerk"}
    )
    assert taken.status_code == 409
    assert "already has a Secure Email account" in taken.text
    operator = await office.browser.post(
        "/staff", data={"name": "Op", "email": "op@smile-dental.example", "role": "operator"}
    )
    assert operator.status_code in (409, 422)
    assert "administrator or clerk" in operator.text.lower()
    assert await staff_list(office) == before


async def test_make_admin_and_clerk(app: FastAPI, settings: Settings, office: Office) -> None:
    clerk = await add_member(app, settings, office.practice_id)
    assert (await clerk.browser.get("/settings")).status_code == 403
    promoted = await office.browser.post(f"/staff/{clerk.id}/role", data={"role": "admin"})
    assert promoted.status_code == 303
    assert "Role changed" in (await office.browser.get(promoted.headers["location"])).text
    # The change holds for the session already open, at once.
    assert (await clerk.browser.get("/settings")).status_code == 200
    assert (await clerk.api.get("/api/v1/staff")).status_code == 200
    demoted = await office.browser.post(f"/staff/{clerk.id}/role", data={"role": "clerk"})
    assert demoted.status_code == 303
    assert (await clerk.browser.get("/settings")).status_code == 403
    events = await office.audit_events(action="staff.role_change")
    assert [e["detail"] for e in events] == [
        f"staff {clerk.id}: clerk → admin",
        f"staff {clerk.id}: admin → clerk",
    ]


async def test_deactivate_ends_sessions_and_tokens_at_once(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    clerk = await add_member(app, settings, office.practice_id)
    assert (await clerk.browser.get("/")).status_code == 200
    assert (await clerk.api.get("/api/v1/patients")).status_code == 200
    assert await sessions_of(settings, clerk.id) == 1

    done = await office.browser.post(f"/staff/{clerk.id}/deactivate")
    assert done.status_code == 303
    page = await office.browser.get(done.headers["location"])
    assert "Account deactivated" in page.text and "Deactivated" in page.text

    assert (await clerk.browser.get("/")).headers["location"] == "/login"
    assert (await clerk.api.get("/api/v1/patients")).status_code == 401
    assert await sessions_of(settings, clerk.id) == 0
    relogin = await browser_for(app).post(
        "/login", data={"email": clerk.email, "password": STAFF_PASSWORD}
    )
    assert relogin.status_code == 403
    assert "deactivated" in relogin.text
    tokens = (await office.api.get("/api/v1/tokens")).json()["items"]
    assert {t["state"] for t in tokens if t["staff_id"] == clerk.id} == {"revoked"}
    events = await office.audit_events(action="staff.deactivate")
    assert [e["detail"] for e in events] == [f"staff {clerk.id}"]


async def test_reset_password_shows_a_new_temporary_password_once(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    clerk = await add_member(app, settings, office.practice_id)
    reset = await office.browser.post(f"/staff/{clerk.id}/reset-password")
    assert reset.status_code == 200
    temporary = temporary_password_on(reset.text)
    # Whoever held the old password is signed out everywhere, and it no longer works.
    assert (await clerk.browser.get("/")).headers["location"] == "/login"
    fresh = browser_for(app)
    old = await fresh.post("/login", data={"email": clerk.email, "password": STAFF_PASSWORD})
    assert old.status_code == 401
    login = await fresh.post("/login", data={"email": clerk.email, "password": temporary})
    assert login.headers["location"] == "/change-password"
    events = await office.audit_events(action="staff.password_reset")
    assert [e["detail"] for e in events] == [f"staff {clerk.id}"]
    assert temporary not in str(events)

    own = await office.browser.post(f"/staff/{(await own_id(office))}/reset-password")
    assert own.status_code == 409
    # The Staff page again, saying why (not the error page).
    assert "<h1>Staff</h1>" in own.text and "use Change password" in own.text


async def own_id(office: Office) -> str:
    return str(next(m["id"] for m in await staff_list(office) if m["email"] == office.email))


async def test_staff_of_another_practice_cannot_be_touched(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    stranger_id = await staff_elsewhere(settings)
    for path in ("role", "deactivate", "reset-password"):
        page = await office.browser.post(f"/staff/{stranger_id}/{path}", data={"role": "admin"})
        assert page.status_code == 404
        assert "No staff member of this practice" in page.text
    api = await office.api.post(f"/api/v1/staff/{stranger_id}/deactivate")
    assert api.status_code == 404
    assert api.json()["detail"] == "No staff member of this practice has that id"
    assert await scalar(settings, select(StaffUser.active).where(StaffUser.id == stranger_id))
    found = await scalar(settings, select(StaffUser.role).where(StaffUser.id == stranger_id))
    assert found == "clerk"


# The API ----------------------------------------------------------------------------


async def test_staff_api(app: FastAPI, settings: Settings, office: Office) -> None:
    email = f"api-{uuid.uuid4().hex[:6]}@smile-dental.example"
    created = await office.api.post(
        "/api/v1/staff", json={"name": "Dorothy Vaughan", "email": email, "role": "clerk"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["must_change_password"] is True and body["temporary_password"]
    assert "password_hash" not in body
    assert all(
        "temporary_password" not in m and "password_hash" not in m for m in await staff_list(office)
    )

    duplicate = await office.api.post(
        "/api/v1/staff", json={"name": "Again", "email": email, "role": "clerk"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"][0]["loc"][-1] == "email"
    operator = await office.api.post(
        "/api/v1/staff", json={"name": "Op", "email": "o@x.example", "role": "operator"}
    )
    assert operator.status_code == 422

    promoted = await office.api.patch(f"/api/v1/staff/{body['id']}", json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    reset = await office.api.post(f"/api/v1/staff/{body['id']}/reset-password")
    assert reset.status_code == 200
    assert reset.json()["temporary_password"] not in (body["temporary_password"], "")
    gone = await office.api.post(f"/api/v1/staff/{body['id']}/deactivate")
    assert gone.status_code == 200 and gone.json()["active"] is False
    actions = [
        e["action"]
        for e in (await office.api.get("/api/v1/audit")).json()["items"]
        if e["action"].startswith("staff.") and e["action"] != "staff.log_in"
    ]
    assert actions == [
        "staff.add",
        "staff.role_change",
        "staff.password_reset",
        "staff.deactivate",
    ]


async def test_command_line_staff_are_audited(settings: Settings) -> None:
    practice_name = f"Practice {uuid.uuid4().hex[:8]}"
    email = f"cli-{uuid.uuid4().hex[:6]}@smile-dental.example"
    await create_staff(settings, email, "Mary Jackson", practice_name, STAFF_PASSWORD, True)
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        practice_id = await db.scalar(select(Practice.id).where(Practice.name == practice_name))
        user_id = await db.scalar(select(StaffUser.id).where(StaffUser.email == email))
        events = (
            await db.execute(
                select(AuditEvent.action, AuditEvent.actor_type, AuditEvent.detail).where(
                    AuditEvent.practice_id == practice_id
                )
            )
        ).all()
    await engine.dispose()
    assert [tuple(e) for e in events] == [
        ("staff.add", "system", f"staff {user_id} as admin (command line)")
    ]
