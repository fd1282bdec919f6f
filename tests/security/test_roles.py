"""A clerk is not an admin: every admin route refuses a clerk, page and API alike, in words,
and changes nothing. Deactivated accounts, expired and revoked tokens stop at once; the
last admin stays.

Written as the attacks were first tried: a clerk's session and a clerk's API token
changing the practice name (printed in every notice), the sender address and the expiry.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import web.api
import web.office
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.forms import settings_form
from tests.web.test_staff import Member, add_member, staff_list
from web.deps import admin_from_bearer, admin_from_cookie

ADMINS_ONLY = "Office administrators only"
PHISHING = {
    "name": "Smile Dental - verify your bank details at evil.example",
    "sender_address": "billing@evil.example",
    "expiry_days": "90",
    "secure_email_enabled": "on",
}

# Open Dental's keys, which would hand a clerk every patient's record there.
OPEN_DENTAL_FORM = {
    "base_url": "https://evil.example/api/v1",
    "developer_key": "stolen-developer",
    "customer_key": "stolen-customer",
}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def admin_routes() -> set[tuple[str, str, bool]]:
    """Every route of ``web.api`` and ``web.office`` that requires an admin: (method, path
    within its router, whether it is an ``/api/v1`` one)."""
    found = set()
    for package in (web.api, web.office):
        for module_info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{module_info.name}")
            found |= _admin_routes_of(module, api=package is web.api)
    return found


def _admin_routes_of(module: Any, *, api: bool) -> set[tuple[str, str, bool]]:
    found = set()
    for router in vars(module).values():
        if not isinstance(router, APIRouter):
            continue
        for route in router.routes:
            if isinstance(route, APIRoute) and {admin_from_cookie, admin_from_bearer} & set(
                _calls(route.dependant)
            ):
                found |= {(method, route.path, api) for method in route.methods or ()}
    return found


def tried(route: tuple[str, str, bool], requests: set[tuple[str, str]]) -> bool:
    method, path, api = route
    return any(
        m == method and full.endswith(path) and full.startswith("/api/v1/") == api
        for m, full in requests
    )


async def snapshot(office: Office) -> dict[str, Any]:
    """What an admin sees of the practice, its staff and its tokens."""
    practice = (await office.api.get("/api/v1/practice")).json()
    tokens = (await office.api.get("/api/v1/tokens")).json()["items"]
    for token in tokens:
        token.pop("last_used_at")  # the admin's own token, used to take this snapshot
    clinics = (await office.api.get("/api/v1/clinics")).json()
    return {
        "practice": practice,
        "clinics": clinics,
        "staff": await staff_list(office),
        "tokens": tokens,
    }


def refused_in_words(response: httpx.Response, *, api: bool) -> None:
    assert response.status_code == 403, (response.request.url, response.status_code)
    if api:
        assert response.json() == {"detail": ADMINS_ONLY}
    else:
        assert response.headers["content-type"].startswith("text/html")
        assert ADMINS_ONLY in response.text


async def test_a_clerk_gets_403_on_every_admin_route_and_changes_nothing(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    clerk: Member = await add_member(app, settings, office.practice_id)
    admin_id = next(m["id"] for m in await staff_list(office) if m["email"] == office.email)
    token_id = (await office.api.get("/api/v1/tokens")).json()["items"][0]["id"]
    clinic = await office.api.post(
        "/api/v1/clinics", json={"name": "Downtown", "sender_address": "d@smile-dental.example"}
    )
    clinic_id = clinic.json()["id"]
    before = await snapshot(office)
    new_person = {"name": "Mallory", "email": f"m-{uuid.uuid4().hex[:6]}@evil.example"}

    page_requests: dict[tuple[str, str], tuple[str, dict[str, str] | None]] = {
        ("GET", "/settings"): ("/settings", None),
        ("POST", "/settings"): ("/settings", PHISHING),
        ("POST", "/settings/logo"): ("/settings/logo", {}),
        ("POST", "/settings/logo/remove"): ("/settings/logo/remove", {}),
        ("GET", "/settings/clinics"): ("/settings/clinics", None),
        ("POST", "/settings/clinics"): ("/settings/clinics", {"name": PHISHING["name"]}),
        ("GET", "/settings/clinics/{clinic_id}"): (f"/settings/clinics/{clinic_id}", None),
        ("POST", "/settings/clinics/{clinic_id}"): (
            f"/settings/clinics/{clinic_id}",
            {"name": "Downtown", "sender_address": PHISHING["sender_address"]},
        ),
        ("GET", "/staff"): ("/staff", None),
        ("POST", "/staff"): ("/staff", {**new_person, "role": "admin"}),
        ("POST", "/staff/{staff_id}/role"): (f"/staff/{admin_id}/role", {"role": "clerk"}),
        ("POST", "/staff/{staff_id}/clinics"): (
            f"/staff/{admin_id}/clinics",
            {"clinic_ids": clinic_id},
        ),
        ("POST", "/staff/{staff_id}/deactivate"): (f"/staff/{admin_id}/deactivate", {}),
        ("POST", "/staff/{staff_id}/reset-password"): (f"/staff/{admin_id}/reset-password", {}),
        ("GET", "/tokens"): ("/tokens", None),
        ("POST", "/tokens"): ("/tokens", {"label": "mine now", "lifetime": ""}),
        ("POST", "/tokens/{token_id}/revoke"): (f"/tokens/{token_id}/revoke", {}),
        ("GET", "/audit"): ("/audit", None),
        ("GET", "/audit.csv"): ("/audit.csv", None),
        ("GET", "/settings/open-dental"): ("/settings/open-dental", None),
        ("POST", "/settings/open-dental"): ("/settings/open-dental", OPEN_DENTAL_FORM),
        ("POST", "/settings/open-dental/test"): ("/settings/open-dental/test", {}),
        ("POST", "/settings/open-dental/sync"): ("/settings/open-dental/sync", {}),
    }
    api_requests: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
        ("PUT", "/api/v1/practice"): ("/api/v1/practice", {"name": PHISHING["name"]}),
        ("PATCH", "/api/v1/practice"): ("/api/v1/practice", {"expiry_days": 90}),
        ("GET", "/api/v1/staff"): ("/api/v1/staff", None),
        ("POST", "/api/v1/staff"): ("/api/v1/staff", {**new_person, "role": "admin"}),
        ("PATCH", "/api/v1/staff/{staff_id}"): (f"/api/v1/staff/{admin_id}", {"role": "clerk"}),
        ("POST", "/api/v1/staff/{staff_id}/deactivate"): (
            f"/api/v1/staff/{admin_id}/deactivate",
            {},
        ),
        ("POST", "/api/v1/staff/{staff_id}/reset-password"): (
            f"/api/v1/staff/{admin_id}/reset-password",
            {},
        ),
        ("GET", "/api/v1/tokens"): ("/api/v1/tokens", None),
        ("POST", "/api/v1/tokens"): ("/api/v1/tokens", {"label": "mine now"}),
        ("POST", "/api/v1/tokens/{token_id}/revoke"): (f"/api/v1/tokens/{token_id}/revoke", {}),
        ("GET", "/api/v1/audit"): ("/api/v1/audit", None),
        ("POST", "/api/v1/clinics"): ("/api/v1/clinics", {"name": PHISHING["name"]}),
        ("PATCH", "/api/v1/clinics/{clinic_id}"): (
            f"/api/v1/clinics/{clinic_id}",
            {"sender_address": PHISHING["sender_address"]},
        ),
        ("GET", "/api/v1/integrations/open-dental"): ("/api/v1/integrations/open-dental", None),
        ("PUT", "/api/v1/integrations/open-dental"): (
            "/api/v1/integrations/open-dental",
            OPEN_DENTAL_FORM,
        ),
        ("POST", "/api/v1/integrations/open-dental/test"): (
            "/api/v1/integrations/open-dental/test",
            None,
        ),
        ("POST", "/api/v1/integrations/open-dental/sync"): (
            "/api/v1/integrations/open-dental/sync",
            None,
        ),
    }
    # A new admin route that this test does not try fails here until it is added above.
    declared = admin_routes()
    assert {("PUT", "/practice", True), ("POST", "/settings", False)} <= declared
    untried = {r for r in declared if not tried(r, set(page_requests) | set(api_requests))}
    assert untried == set()

    for (method, _), (url, form) in page_requests.items():
        if method == "GET":
            response = await clerk.browser.get(url)
        else:
            response = await clerk.browser.post(url, data=form)
        refused_in_words(response, api=False)
    for (method, _), (url, body) in api_requests.items():
        response = await clerk.api.request(method, url, json=body)
        refused_in_words(response, api=True)

    assert await snapshot(office) == before
    settings_changes = await office.audit_events(action="office.settings_change")
    assert [event["detail"] for event in settings_changes] == [
        f"clinic {clinic_id} added: Downtown"
    ]
    for action in ("staff.add", "token.create", "token.revoke"):
        assert await office.audit_events(action=action) == []
    # Reading the settings stays open to clerks: practice software acting as one needs
    # to know whether Secure Email is on.
    assert (await clerk.api.get("/api/v1/practice")).json() == before["practice"]


async def test_settings_changes_are_audited_old_to_new(office: Office) -> None:
    form = settings_form("Smile Dental & Sons", "Front@Smile-Dental.example", "14")
    saved = await office.browser.post("/settings", data=form)
    assert saved.status_code == 303, saved.text
    patched = await office.api.patch("/api/v1/practice", json={"expiry_days": 21})
    assert patched.status_code == 200
    assert patched.json()["expiry_days"] == 21
    unchanged = await office.api.put("/api/v1/practice", json={"expiry_days": 21})
    assert unchanged.status_code == 200
    refused = await office.api.put(
        "/api/v1/practice", json={"secure_email_enabled": True, "sender_address": None}
    )
    assert refused.status_code == 422

    events = await office.audit_events(action="office.settings_change")
    stored_sender = (await office.api.get("/api/v1/practice")).json()["sender_address"]
    assert sorted(e["detail"] for e in events) == sorted(
        [
            "name: Smile Dental → Smile Dental & Sons",
            f"sender_address: office@smile-dental.example → {stored_sender}",
            "expiry_days: 7 → 14",
            "expiry_days: 14 → 21",
        ]
    )
    assert {e["actor_type"] for e in events} == {"staff"}


async def test_a_deactivated_member_stops_at_once(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    clerk = await add_member(app, settings, office.practice_id)
    assert (await clerk.browser.get("/patients")).status_code == 200
    assert (await clerk.api.get("/api/v1/patients")).status_code == 200
    gone = await office.api.post(f"/api/v1/staff/{clerk.id}/deactivate")
    assert gone.status_code == 200
    # The very next request of the open session and of the token.
    page = await clerk.browser.get("/patients")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    api = await clerk.api.get("/api/v1/patients")
    assert api.status_code == 401
    assert "detail" in api.json()


async def test_the_last_admin_can_be_neither_demoted_nor_deactivated(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    admin_id = next(m["id"] for m in await staff_list(office) if m["email"] == office.email)
    before = await staff_list(office)
    for response in (
        await office.browser.post(f"/staff/{admin_id}/role", data={"role": "clerk"}),
        await office.browser.post(f"/staff/{admin_id}/deactivate"),
    ):
        assert response.status_code == 409
        assert "last active administrator" in response.text
    for response in (
        await office.api.patch(f"/api/v1/staff/{admin_id}", json={"role": "clerk"}),
        await office.api.post(f"/api/v1/staff/{admin_id}/deactivate"),
    ):
        assert response.status_code == 409
        assert "last active administrator" in response.json()["detail"]
    assert await staff_list(office) == before

    # With a second admin, the first may step down; then the second is the last.
    second = await add_member(app, settings, office.practice_id, name="Second Admin")
    assert (await office.api.patch(f"/api/v1/staff/{second.id}", json={"role": "admin"})).is_success
    assert (await office.api.patch(f"/api/v1/staff/{admin_id}", json={"role": "clerk"})).is_success
    second_admin = await second.api.post(f"/api/v1/staff/{second.id}/deactivate")
    assert second_admin.status_code == 409
    # The former admin, now a clerk, is refused admin routes in turn.
    refused_in_words(await office.api.get("/api/v1/staff"), api=True)
