"""Rate limits on staff log-in and the portal's passcode endpoints."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import STAFF_PASSWORD, Browser, Office
from tests.fixtures.stack import Stack


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    return Browser(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://portal.test",
    )


# Guesses at one account from many clients slow it but never lock it: see
# tests/security/test_lockout.py.


async def test_log_in_limited_per_client(app: FastAPI, office: Office) -> None:
    async with client_at(app, "10.8.0.1") as guesser:
        for attempt in range(20):
            response = await guesser.post(
                "/login", data={"email": f"nobody{attempt}@example.com", "password": "x"}
            )
            assert response.status_code == 401
        refused = await guesser.post(
            "/login", data={"email": office.email, "password": STAFF_PASSWORD}
        )
        assert refused.status_code == 429
    async with client_at(app, "10.8.0.2") as other:
        allowed = await other.post(
            "/login", data={"email": office.email, "password": STAFF_PASSWORD}
        )
        assert allowed.status_code == 303


async def test_verify_limited_per_client(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    await stack.office.api.post(
        "/api/v1/secure-emails", data={"patient_id": patient_id, "subject": "S", "body": "B"}
    )
    link = await stack.notice_link("ada@example.com")
    async with client_at(stack.app, "10.7.0.1") as guesser:
        for _ in range(30):
            # Malformed codes never reach the workflow, but still count.
            await guesser.post(f"{link}/verify", data={"passcode": "1"})
        refused = await guesser.post(f"{link}/verify", data={"passcode": "12345678"})
        assert refused.status_code == 429
        assert "Too many attempts" in refused.text
