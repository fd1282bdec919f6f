"""Operators one can end: a leaked codec token must stop decoding once its operator is
revoked or its time is up, and every operator's creation, revocation and decoding
session must leave a trace in the platform's audit log.

The attacks run against the real codec endpoint of the real app; the commands run
through ``securemail``'s own entry point.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from domain.audit import PLATFORM, AuditAction
from domain.staff import StaffRole
from infra.accounts import create_api_token, create_staff_user, find_staff_user
from infra.audit import AuditFilter, find_events
from infra.crypto.keys import keyset_environment
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade
from infra.db.models import ApiToken, AuditEvent, StaffUser
from infra.security import token_hash
from infra.settings import Settings, get_settings
from tests.conftest import (
    STAFF_PASSWORD,
    TEST_KEYS,
    Office,
    browser_of,
    some_client_address,
)
from tests.fixtures.operators import Operator
from tests.fixtures.postgres import new_database
from tests.web.test_codec_endpoint import encrypted
from workers.bootstrap import DevCredentials, credentials_path, ensure_demo_practice
from workers.cli import app as cli

NEW_PASSWORD = "a brand new operator password"


async def securemail(settings: Settings, *args: str, input: str | None = None) -> Result:
    """``securemail ARGS`` as a shell runs it, against the tests' database."""
    environment = {
        "SECURE_EMAIL_DATA_DIR": str(settings.data_dir),
        "SECURE_EMAIL_DATABASE_URL": settings.database_url,
        **keyset_environment(TEST_KEYS.settings_fields()),
    }
    get_settings.cache_clear()
    try:
        # A thread: the command runs an event loop of its own, as in a shell.
        return await asyncio.to_thread(
            lambda: CliRunner().invoke(cli, list(args), input=input, env=environment)
        )
    finally:
        get_settings.cache_clear()


def bearer(app: FastAPI, token: str) -> httpx.AsyncClient:
    """Whoever holds ``token``: the operator, or whoever found it in a shell history."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(some_client_address(), 50000)),
        base_url="http://portal.test",
        headers={"Authorization": f"Bearer {token}"},
    )


async def decode(client: httpx.AsyncClient, settings: Settings) -> httpx.Response:
    return await client.post("/codec/decode", json=await encrypted(settings))


async def platform_events(settings: Settings, action: AuditAction) -> list[AuditEvent]:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            return await find_events(db, PLATFORM, AuditFilter(action=action))
    finally:
        await engine.dispose()


async def token_row(settings: Settings, token: str) -> ApiToken:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            row = await db.scalar(select_token(token))
            assert row is not None
            return row
    finally:
        await engine.dispose()


def select_token(token: str) -> sa.Select[ApiToken]:
    return sa.select(ApiToken).where(ApiToken.token_hash == token_hash(token))


def printed_token(result: Result) -> str:
    """The token ``operator create`` prints, alone on its line."""
    tokens = [line for line in result.output.splitlines() if re.fullmatch(r"[\w-]{30,}", line)]
    assert len(tokens) == 1, result.output
    return tokens[0]


def new_email() -> str:
    return f"ops-{uuid.uuid4().hex[:8]}@securemail.example"


# Revocation --------------------------------------------------------------------------


async def test_a_leaked_token_stops_decoding_once_its_operator_is_revoked(
    app: FastAPI, settings: Settings, operator: Operator
) -> None:
    attacker = bearer(app, operator.token)
    try:
        assert (await decode(attacker, settings)).status_code == 200
        assert (await decode(operator.browser, settings)).status_code == 200

        revoked = await securemail(settings, "operator", "revoke", operator.email)
        assert revoked.exit_code == 0, revoked.output

        # The very next request, by token and by the signed-in browser alike.
        for client in (attacker, operator.api, operator.browser):
            refused = await decode(client, settings)
            assert refused.status_code in (401, 403), refused.text
            assert "Tooth" not in refused.text
        assert (await operator.browser.get("/operator")).status_code == 303
    finally:
        await attacker.aclose()


async def test_a_revoked_operator_cannot_log_in_again(
    app: FastAPI, settings: Settings, operator: Operator
) -> None:
    revoked = await securemail(settings, "operator", "revoke", operator.email)
    assert revoked.exit_code == 0, revoked.output
    async with browser_of(app) as browser:
        response = await browser.post(
            "/login", data={"email": operator.email, "password": STAFF_PASSWORD}
        )
        assert response.status_code == 403
        assert (await decode(browser, settings)).status_code == 401


async def test_revoking_an_unknown_operator_says_so_and_fails(
    settings: Settings, app: FastAPI, office: Office
) -> None:
    unknown = await securemail(settings, "operator", "revoke", "nobody@securemail.example")
    assert unknown.exit_code != 0
    assert "No operator nobody@securemail.example" in unknown.output
    # A practice's admin is no operator: revoke ends operators only.
    staff = await securemail(settings, "operator", "revoke", office.email)
    assert staff.exit_code != 0
    assert f"No operator {office.email}" in staff.output


async def test_create_after_revoke_enables_the_operator_afresh(
    app: FastAPI, settings: Settings, operator: Operator
) -> None:
    assert (await securemail(settings, "operator", "revoke", operator.email)).exit_code == 0
    again = await securemail(
        settings, "operator", "create", operator.email, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    )
    assert again.exit_code == 0, again.output
    assert "enabled again" in again.output
    fresh = bearer(app, printed_token(again))
    old = bearer(app, operator.token)
    try:
        assert (await decode(fresh, settings)).status_code == 200
        # What was revoked stays revoked: the old token, and the old password.
        assert (await decode(old, settings)).status_code == 401
        async with browser_of(app) as browser:
            old_password = await browser.post(
                "/login", data={"email": operator.email, "password": STAFF_PASSWORD}
            )
            assert old_password.status_code == 401
            new_password = await browser.post(
                "/login", data={"email": operator.email, "password": NEW_PASSWORD}
            )
            assert new_password.status_code == 303
    finally:
        await fresh.aclose()
        await old.aclose()


async def test_create_refuses_a_live_operator_and_says_what_to_do(
    settings: Settings, app: FastAPI, operator: Operator
) -> None:
    again = await securemail(
        settings, "operator", "create", operator.email, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    )
    assert again.exit_code != 0
    assert "securemail token create" in again.output


# Expiry ------------------------------------------------------------------------------


async def test_an_expired_token_is_refused_exactly_like_a_wrong_one(
    app: FastAPI, settings: Settings
) -> None:
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        user = await create_staff_user(
            db, None, new_email(), STAFF_PASSWORD, name="Ops", role=StaffRole.OPERATOR
        )
        expired = await create_api_token(
            db, user, "codec", expires_at=datetime.now(UTC) - timedelta(seconds=1)
        )
        await db.commit()
    await engine.dispose()
    with_expired, with_wrong = bearer(app, expired), bearer(app, "x" * len(expired))
    try:
        refused = await decode(with_expired, settings)
        wrong = await decode(with_wrong, settings)
    finally:
        await with_expired.aclose()
        await with_wrong.aclose()
    assert refused.status_code == wrong.status_code == 401
    assert refused.json() == wrong.json()  # nothing tells a finder the token was ever good


async def test_create_gives_a_token_of_90_days_or_of_the_days_asked(
    app: FastAPI, settings: Settings
) -> None:
    password = f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    default = await securemail(settings, "operator", "create", new_email(), input=password)
    assert default.exit_code == 0, default.output
    week = await securemail(
        settings, "operator", "create", new_email(), "--days", "7", input=password
    )
    assert week.exit_code == 0, week.output
    for result, days in ((default, 90), (week, 7)):
        token = printed_token(result)
        row = await token_row(settings, token)
        assert row.expires_at is not None
        assert abs(row.expires_at - row.created_at - timedelta(days=days)) < timedelta(seconds=5)
        client = bearer(app, token)
        try:
            assert (await decode(client, settings)).status_code == 200
        finally:
            await client.aclose()


async def test_token_create_for_an_operator_gives_90_days_and_none_once_revoked(
    app: FastAPI, settings: Settings, operator: Operator
) -> None:
    another = await securemail(settings, "token", "create", "--email", operator.email)
    assert another.exit_code == 0, another.output
    row = await token_row(settings, another.output.strip())
    assert row.expires_at is not None
    assert abs(row.expires_at - row.created_at - timedelta(days=90)) < timedelta(seconds=5)

    assert (await securemail(settings, "operator", "revoke", operator.email)).exit_code == 0
    refused = await securemail(settings, "token", "create", "--email", operator.email)
    assert refused.exit_code != 0
    assert "operator create" in refused.output


@pytest.mark.parametrize("days", ["0", "-3", "366", "ninety"])
async def test_create_refuses_days_out_of_bounds(
    app: FastAPI, settings: Settings, days: str
) -> None:
    email = new_email()
    result = await securemail(settings, "operator", "create", email, "--days", days, input="x\nx\n")
    assert result.exit_code != 0
    assert "--days" in result.output
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        assert await find_staff_user(db, email) is None  # nothing half made
    await engine.dispose()


# Listing -----------------------------------------------------------------------------


async def test_list_shows_each_operator_with_last_use_tokens_and_sessions(
    app: FastAPI, settings: Settings, operator: Operator
) -> None:
    unused = new_email()
    password = f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    assert (await securemail(settings, "operator", "create", unused, input=password)).exit_code == 0
    before = await securemail(settings, "operator", "list")
    assert before.exit_code == 0, before.output
    line = next(line for line in before.output.splitlines() if unused in line)
    assert "last used never" in line and "1 token " in line and "0 sessions" in line, line

    assert (await decode(operator.api, settings)).status_code == 200
    used = (await token_row(settings, operator.token)).last_used_at
    assert used is not None
    after = await securemail(settings, "operator", "list")
    line = next(line for line in after.output.splitlines() if operator.email in line)
    assert f"{used:%Y-%m-%d %H:%M}" in line
    assert re.search(r"\bactive\b", line)
    assert re.search(r"\b1 token\b", line) and re.search(r"\b1 session\b", line), line

    assert (await securemail(settings, "operator", "revoke", operator.email)).exit_code == 0
    revoked = await securemail(settings, "operator", "list")
    line = next(line for line in revoked.output.splitlines() if operator.email in line)
    assert re.search(r"\brevoked\b", line)
    assert re.search(r"\b0 tokens\b", line) and re.search(r"\b0 sessions\b", line), line


# The audit log -----------------------------------------------------------------------


async def test_create_and_revoke_are_audited_in_the_platform_log(
    app: FastAPI, settings: Settings
) -> None:
    email = new_email()
    created = await securemail(
        settings, "operator", "create", email, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    )
    assert created.exit_code == 0, created.output
    revoked = await securemail(settings, "operator", "revoke", email)
    assert revoked.exit_code == 0, revoked.output

    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        user = await find_staff_user(db, email)
        assert isinstance(user, StaffUser)
        user_id = user.id
    await engine.dispose()
    creations = [
        e
        for e in await platform_events(settings, AuditAction.OPERATOR_CREATE)
        if user_id in (e.detail or "")
    ]
    revocations = [
        e
        for e in await platform_events(settings, AuditAction.OPERATOR_REVOKE)
        if user_id in (e.detail or "")
    ]
    assert len(creations) == 1 and len(revocations) == 1
    assert "1 token(s)" in (revocations[0].detail or "")
    assert all(e.actor_type == "system" for e in creations + revocations)


async def test_each_token_session_is_audited_once_not_each_decode(
    app: FastAPI, settings: Settings, operator: Operator
) -> None:
    row = await token_row(settings, operator.token)

    async def sessions() -> list[AuditEvent]:
        return [
            e
            for e in await platform_events(settings, AuditAction.OPERATOR_TOKEN_SESSION)
            if e.detail == f"token {row.id}"
        ]

    assert await sessions() == []
    for _ in range(3):
        assert (await decode(operator.api, settings)).status_code == 200
    opened = await sessions()
    assert len(opened) == 1
    assert opened[0].actor_type == "operator" and opened[0].actor_id == row.staff_id
    assert opened[0].client_address is not None

    # Idle longer than a session lasts: the next decode opens another, audited again.
    engine = make_engine(settings.database_url)
    async with engine.begin() as connection:
        long_ago = datetime.now(UTC) - timedelta(minutes=settings.staff_idle_minutes + 1)
        await connection.execute(
            sa.update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=long_ago)
        )
    await engine.dispose()
    assert (await decode(operator.api, settings)).status_code == 200
    assert len(await sessions()) == 2


async def test_an_operators_log_in_is_audited(settings: Settings, operator: Operator) -> None:
    # The fixture signed the operator's browser in: that session's event.
    log_ins = await platform_events(settings, AuditAction.STAFF_LOG_IN)
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        user = await find_staff_user(db, operator.email)
        assert user is not None
        user_id = user.id
    await engine.dispose()
    assert [e.actor_type for e in log_ins if e.actor_id == user_id] == ["operator"]


# The migration -----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    async with new_database(request.param, tmp_path / "operators.db", "securemail_ops") as url:
        yield url


async def test_tokens_from_before_expiry_get_one_at_migration(empty_database: str) -> None:
    await asyncio.to_thread(upgrade, empty_database, "0016")
    created = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    users = sa.table(
        "staff_users",
        *(sa.column(c) for c in ("id", "practice_id", "email", "name", "password_hash", "role")),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    tokens = sa.table(
        "api_tokens",
        *(sa.column(c) for c in ("id", "token_hash", "staff_id", "label")),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    practices = sa.table(
        "practices",
        *(sa.column(c) for c in ("id", "name", "secure_email_enabled", "expiry_days")),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    practice_expiry = datetime(2027, 1, 1, tzinfo=UTC)
    engine = make_engine(empty_database)
    async with engine.begin() as c:
        await c.execute(
            sa.insert(practices),
            [{"id": "p", "name": "Smile", "secure_email_enabled": True, "expiry_days": 7,
              "created_at": created}],
        )  # fmt: skip
        await c.execute(
            sa.insert(users),
            [
                {"id": "op", "practice_id": None, "email": "op@x.example", "name": "Ops",
                 "password_hash": "h", "role": "operator", "created_at": created},
                {"id": "clerk", "practice_id": "p", "email": "c@x.example", "name": "Clerk",
                 "password_hash": "h", "role": "clerk", "created_at": created},
            ],
        )  # fmt: skip
        await c.execute(
            sa.insert(tokens),
            [
                {"id": "t-op", "token_hash": "a", "staff_id": "op", "label": "codec",
                 "created_at": created, "expires_at": None},
                {"id": "t-clerk", "token_hash": "b", "staff_id": "clerk", "label": "pms",
                 "created_at": created, "expires_at": None},
                {"id": "t-clerk-2", "token_hash": "c", "staff_id": "clerk", "label": "pms",
                 "created_at": created, "expires_at": practice_expiry},
            ],
        )  # fmt: skip
    await engine.dispose()

    await asyncio.to_thread(upgrade, empty_database)

    engine = make_engine(empty_database)
    async with make_sessionmaker(engine)() as db:
        expiries = {t.id: t.expires_at for t in (await db.scalars(sa.select(ApiToken))).all()}
    await engine.dispose()
    # The operator's codec token lives 90 days from its creation, like a new one; the
    # practice's own tokens keep what their admins chose.
    assert expiries == {
        "t-op": created + timedelta(days=90),
        "t-clerk": None,
        "t-clerk-2": practice_expiry,
    }


# The embedded stack's operator -------------------------------------------------------


async def test_the_dev_stack_replaces_its_operator_token_once_it_has_ended(
    app: FastAPI, settings: Settings
) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the embedded stack starts on an empty database of its own (SQLite)")
    first = await ensure_demo_practice(settings)
    assert (await token_row(settings, first.operator_token)).expires_at is not None
    assert await ensure_demo_practice(settings) == first  # a restart keeps the log-in

    engine = make_engine(settings.database_url)
    async with engine.begin() as connection:
        await connection.execute(
            sa.update(ApiToken)
            .where(ApiToken.token_hash == token_hash(first.operator_token))
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    await engine.dispose()
    again = await ensure_demo_practice(settings)
    assert again.operator_token != first.operator_token
    assert again.model_copy(update={"operator_token": first.operator_token}) == first
    assert DevCredentials.model_validate_json(credentials_path(settings).read_text()) == again
    for token, expected in ((first.operator_token, 401), (again.operator_token, 200)):
        client = bearer(app, token)
        try:
            assert (await decode(client, settings)).status_code == expected
        finally:
            await client.aclose()
