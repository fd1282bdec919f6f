"""Nobody can lock the office out by typing wrong passwords for the admin's address.

The attack, as first tried: ten wrong passwords for the admin's address, from anywhere,
and the admin's own correct password answered 429 for 15 minutes. Now the client that
sends wrong passwords is refused, and the account only makes every attempt at it wait a
little (growing, capped): its owner logs in from another client meanwhile.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from fastapi import FastAPI

from infra.rate_limits import STAFF_LOGIN_PER_ACCOUNT_CLIENT
from tests.conftest import STAFF_PASSWORD, Browser, Office, some_client_address
from web.office.auth import ACCOUNT_DELAYS


def client_at(app: FastAPI, address: str | None = None) -> Browser:
    address = address or some_client_address()
    return Browser(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://portal.test",
    )


def delay_after(failures: int) -> float:
    """The wait the log-in page promises after this many recent wrong passwords."""
    return max((seconds for count, seconds in ACCOUNT_DELAYS if failures >= count), default=0.0)


async def wrong_password(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/login", data={"email": email, "password": "Summer2024!"})


async def test_attacker_is_refused_while_the_admin_logs_in_from_another_client(
    app: FastAPI, office: Office
) -> None:
    allowed = STAFF_LOGIN_PER_ACCOUNT_CLIENT.attempts
    async with client_at(app) as attacker, client_at(app) as admin:
        answers = [(await wrong_password(attacker, office.email)) for _ in range(allowed + 5)]
        assert [a.status_code for a in answers] == [401] * allowed + [429] * 5
        assert "Too many wrong passwords from this device" in answers[-1].text
        # Refused at that client even with the right password: the guesser learns nothing.
        right_from_attacker = await attacker.post(
            "/login", data={"email": office.email, "password": STAFF_PASSWORD}
        )
        assert right_from_attacker.status_code == 429

        started = time.monotonic()
        login = await admin.post("/login", data={"email": office.email, "password": STAFF_PASSWORD})
        waited = time.monotonic() - started
        assert login.status_code == 303
        assert login.headers["location"] == "/"
        assert (await admin.get("/")).status_code == 200
    # The account's wrong passwords did slow it: each attempt at it waits a little.
    assert delay_after(allowed) > 0
    assert waited >= delay_after(allowed)
    # Each counted guess is in the log; the refused ones were never checked.
    assert len(await office.audit_events(action="staff.log_in_failed")) == allowed


async def test_guesses_from_many_clients_never_lock_the_owner_out(
    app: FastAPI, office: Office
) -> None:
    # More than the ten that used to lock the account, and enough to reach the cap.
    many = max(10, ACCOUNT_DELAYS[-1][0]) + 1
    guessers = [client_at(app) for _ in range(many)]
    answers = await asyncio.gather(*(wrong_password(g, office.email) for g in guessers))
    assert {a.status_code for a in answers} == {401}
    async with client_at(app) as owner:
        started = time.monotonic()
        login = await owner.post("/login", data={"email": office.email, "password": STAFF_PASSWORD})
        waited = time.monotonic() - started
    assert login.status_code == 303
    # The wait is capped: seconds, never the 15 minutes an account lock-out would be.
    assert waited >= ACCOUNT_DELAYS[-1][1]
    assert ACCOUNT_DELAYS[-1][1] <= 5
    for guesser in guessers:
        await guesser.aclose()


async def test_a_typo_or_two_does_not_refuse_the_owner(app: FastAPI, office: Office) -> None:
    assert delay_after(ACCOUNT_DELAYS[0][0] - 1) == 0
    async with client_at(app) as owner:
        for _ in range(ACCOUNT_DELAYS[0][0] - 1):
            assert (await wrong_password(owner, office.email)).status_code == 401
        login = await owner.post("/login", data={"email": office.email, "password": STAFF_PASSWORD})
        assert login.status_code == 303
