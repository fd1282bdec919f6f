"""A burst of attempts sent at once gets no more tries than a patient typing (R17).

The attack: 100 wrong passwords for one account, all sent at once from one client. A
limit that reads its count and then records the attempt lets every request of the burst
read the same count; here each attempt is counted in the statement that decides it, so
at most the limit's number are checked, the rest are refused before any password or
passcode is looked at, and none answers 500.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import infra.db.engine
from domain.passcodes import MAX_PASSCODES_PER_HOUR
from infra.db.migrate import migrate_async
from infra.rate_limits import (
    PASSCODE_PER_ADDRESS,
    PASSCODE_PER_CLIENT,
    STAFF_LOGIN_PER_ACCOUNT_CLIENT,
    VERIFY_PER_CLIENT,
)
from infra.settings import Settings
from tests.conftest import Browser, Office, make_office, some_client_address
from tests.fixtures.stack import Stack
from tests.web.test_rate_limits import newest_link
from web.app import create_app
from web.portal.refusals import TOO_MANY_REQUESTS

BURST = 100


def client_at(app: FastAPI, address: str | None = None) -> Browser:
    return Browser(
        transport=httpx.ASGITransport(app=app, client=(address or some_client_address(), 40000)),
        base_url="http://portal.test",
    )


async def a_message(stack: Stack, name: str) -> tuple[str, str]:
    """A secure email to a new patient of its own (an address no other test uses): its id
    and the path of its link."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com"
    patient_id = await stack.add_patient(name, email)
    secure_email_id = await stack.send_secure(patient_id, "S", "B")
    return secure_email_id, await stack.notice_link(email)


async def burst(app: FastAPI, url: str, forms: Iterable[dict[str, str]]) -> list[httpx.Response]:
    """Each form posted to ``url`` at once, from one client."""
    async with client_at(app) as attacker:
        return await asyncio.gather(*(attacker.post(url, data=form) for form in forms))


def no_server_errors(answers: list[httpx.Response]) -> None:
    failed = [(a.status_code, a.text[:200]) for a in answers if a.status_code >= 500]
    assert failed == [], f"{len(failed)} of {len(answers)} answered 5xx: {failed[:3]}"


def let_through(answers: list[httpx.Response], attempts: int) -> list[httpx.Response]:
    """The answers of a burst at the portal that its limit let through (between one and
    ``attempts``); the others say it refused them (429, with a Retry-After)."""
    no_server_errors(answers)
    refused = [a for a in answers if TOO_MANY_REQUESTS in a.text]
    assert all(a.status_code == 429 and int(a.headers["Retry-After"]) > 0 for a in refused)
    passed = [a for a in answers if TOO_MANY_REQUESTS not in a.text]
    assert 1 <= len(passed) <= attempts, Counter(a.status_code for a in answers)
    return passed


async def test_a_burst_of_wrong_passwords_from_one_client_gets_the_limits_checks(
    app: FastAPI, office: Office
) -> None:
    guesses = ({"email": office.email, "password": f"guess-{n}"} for n in range(BURST))
    answers = await burst(app, "/login", guesses)
    statuses = Counter(a.status_code for a in answers)
    no_server_errors(answers)
    checked = statuses[401]
    assert 1 <= checked <= STAFF_LOGIN_PER_ACCOUNT_CLIENT.attempts, statuses
    assert statuses[429] == BURST - checked, statuses
    refused = [a for a in answers if a.status_code == 429]
    assert all("Too many wrong passwords from this device" in a.text for a in refused)
    assert all(int(a.headers["Retry-After"]) > 0 for a in refused)
    # Each password checked is in the log; none more.
    failed = await office.audit_events(action="staff.log_in_failed")
    assert len(failed) == checked


async def test_a_burst_of_passcode_guesses_from_one_client_gets_the_limits_checks(
    stack: Stack,
) -> None:
    secure_email_id, link = await a_message(stack, "Ada")
    guesses = ({"passcode": f"{n:08d}"} for n in range(BURST))
    answers = await burst(stack.app, f"{link}/verify", guesses)
    # Every other answer is the workflow's: the code was checked.
    checked = len(let_through(answers, VERIFY_PER_CLIENT.attempts))
    events = await stack.office.audit_events(secure_email_id=secure_email_id)
    verified = [e for e in events if e["action"].startswith("portal.verify_")]
    assert len(verified) == checked


async def test_a_burst_of_passcode_requests_from_one_client_gets_the_limits_requests(
    stack: Stack,
) -> None:
    _, link = await a_message(stack, "Bo")
    answers = await burst(stack.app, f"{link}/passcode", ({} for _ in range(BURST)))
    # The rest reached the workflow: sent (303), or refused by its own hourly limit.
    let_through(answers, PASSCODE_PER_CLIENT.attempts)
    assert sum(a.status_code == 303 for a in answers) <= MAX_PASSCODES_PER_HOUR


async def test_a_burst_of_passcode_requests_for_one_patient_sends_the_mailboxs_allowance(
    stack: Stack,
) -> None:
    """From many clients at once, over enough messages that the workflows' own limit
    (per message) would let more through than the mailbox's hourly allowance."""
    email = f"cy-{uuid.uuid4().hex[:6]}@example.com"
    patient_id = await stack.add_patient("Cy", email)
    links: list[str] = []
    for _ in range(MESSAGES_PAST_THE_ALLOWANCE):
        await stack.send_secure(patient_id, "S", "B")
        links.append(await newest_link(stack, email, links))
    answers = await passcode_burst(stack.app, links)
    no_server_errors(answers)
    sent = sum(a.status_code == 303 for a in answers)
    assert 1 <= sent <= PASSCODE_PER_ADDRESS.attempts, Counter(a.status_code for a in answers)


async def test_a_burst_over_a_familys_messages_sends_one_mailboxs_allowance(
    stack: Stack,
) -> None:
    """An attacker holding the notice of each patient at one address (a family) asks
    through all of them at once: the mailbox gets one hourly allowance, not one per
    patient."""
    email = f"fam-{uuid.uuid4().hex[:6]}@example.com"
    links: list[str] = []
    for n in range(MESSAGES_PAST_THE_ALLOWANCE):
        added = await stack.office.api.post(
            "/api/v1/patients", json={"name": f"Cy {n}", "email": email, "share_address": True}
        )
        assert added.status_code == 201, added.text
        await stack.send_secure(str(added.json()["id"]), "S", "B")
        links.append(await newest_link(stack, email, links))
    answers = await passcode_burst(stack.app, links)
    no_server_errors(answers)
    sent = sum(a.status_code == 303 for a in answers)
    assert 1 <= sent <= PASSCODE_PER_ADDRESS.attempts, Counter(a.status_code for a in answers)


# Enough messages that their workflows' own limit (five an hour each) would let more
# passcodes through than the mailbox's hourly allowance.
MESSAGES_PAST_THE_ALLOWANCE = -(-PASSCODE_PER_ADDRESS.attempts // MAX_PASSCODES_PER_HOUR) + 1


async def passcode_burst(app: FastAPI, links: list[str]) -> list[httpx.Response]:
    """BURST passcode requests at once from as many clients, spread over the links."""
    clients = [client_at(app) for _ in range(BURST)]
    try:
        return list(
            await asyncio.gather(
                *(
                    client.post(f"{links[n % len(links)]}/passcode")
                    for n, client in enumerate(clients)
                )
            )
        )
    finally:
        for client in clients:
            await client.aclose()


# SQLite's write lock held elsewhere -----------------------------------------------------


@pytest.fixture
def sqlite_settings(settings: Settings, tmp_path: Path, migrated_sqlite: Path) -> Settings:
    database = tmp_path / "locked.db"
    shutil.copyfile(migrated_sqlite, database)
    return settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{database}"})


@pytest.fixture
def write_lock(sqlite_settings: Settings) -> Iterator[sqlite3.Connection]:
    """Another connection that will hold the database's one write lock."""
    path = sqlite_settings.database_url.removeprefix("sqlite+aiosqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    yield holder
    holder.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_locked_sqlite_answers_503_with_retry_after_in_words(
    sqlite_settings: Settings,
    write_lock: sqlite3.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A short wait for the lock, so the test does not wait the production one out.
    monkeypatch.setattr(infra.db.engine, "SQLITE_BUSY_TIMEOUT", 0.2)
    await migrate_async(sqlite_settings)
    app = create_app(sqlite_settings)
    async with app.router.lifespan_context(app):
        office = await make_office(app, sqlite_settings)
        write_lock.execute("BEGIN IMMEDIATE")
        try:
            async with client_at(app) as browser:
                page = await browser.post("/login", data={"email": office.email, "password": "x"})
            api = await office.api.post(
                "/api/v1/patients", json={"name": "Ada", "email": "ada@example.com"}
            )
        finally:
            write_lock.execute("ROLLBACK")
        await office.aclose()
    assert page.status_code == 503, page.text
    assert int(page.headers["Retry-After"]) > 0
    assert page.headers["content-type"].startswith("text/html")
    assert "busy" in page.text
    assert api.status_code == 503, api.text
    assert int(api.headers["Retry-After"]) > 0
    assert "busy" in api.json()["detail"]
