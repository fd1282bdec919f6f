"""Bodies bounded before they are parsed (R14): an attacker's large bodies.

The attacker streams a body in chunks; ``Attack.taken`` counts the chunks the server
pulled, so "not read" is what the server did, not what it said. In-process (httpx's ASGI
transport hands the app one chunk per ``receive``), and once through a real uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from typing import Literal

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from infra.db.engine import make_engine
from infra.db.models import Reply, SecureEmail
from infra.settings import Settings
from tests.conftest import Browser, Office, some_client_address
from tests.fixtures.processes import free_port
from tests.fixtures.stack import Stack
from tests.web.test_portal import send, sign_in
from web.app import create_app
from web.cookies import CSRF_COOKIE, STAFF_COOKIE
from web.csrf import CSRF_FIELD

KB = 1024
MB = 1024 * KB
CHUNK = 64 * KB
FORM = "application/x-www-form-urlencoded"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
TYPED_SUBJECT = "RE: my crown"
TYPED_BODY = "Here are the photos you asked for, and my new insurance card."


class Attack:
    """A body streamed in ``CHUNK``s: ``head``, then filler, then ``tail``."""

    def __init__(
        self, size: int, *, head: bytes = b"", tail: bytes = b"", chunk: int = CHUNK
    ) -> None:
        self.head = head
        self.tail = tail
        self.chunk = chunk
        self.size = size
        self.filler = size - len(head) - len(tail)
        self.taken = 0
        self.chunks = 2 + -(-self.filler // chunk)

    async def body(self) -> AsyncIterator[bytes]:
        self.taken += 1
        yield self.head
        for start in range(0, self.filler, self.chunk):
            self.taken += 1
            yield b"0" * min(self.chunk, self.filler - start)
        self.taken += 1
        yield self.tail


def multipart(size: int, *, csrf_token: str | None = None) -> tuple[Attack, str]:
    """A multipart body of ``size`` bytes: the form token first (if any), then one file."""
    boundary = secrets.token_hex(8)
    head = b""
    if csrf_token is not None:
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{CSRF_FIELD}"\r\n\r\n'
            f"{csrf_token}\r\n"
        ).encode()
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
        'filename="scan.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n'
    ).encode()
    attack = Attack(size, head=head, tail=f"\r\n--{boundary}--\r\n".encode())
    return attack, f"multipart/form-data; boundary={boundary}"


def attacker(app: FastAPI) -> httpx.AsyncClient:
    """Nobody signed in, no page loaded: no cookies at all."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(some_client_address(), 1)),
        base_url="http://portal.test",
    )


async def own_token_pair(client: httpx.AsyncClient) -> str:
    """What anyone gets by loading the log-in page: a CSRF cookie (now in ``client``) and
    the form token that goes with it, for a browser with no session."""
    page = await client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


async def declared_by_attacker(
    app: FastAPI, path: str, attack: Attack, content_type: str
) -> httpx.Response:
    """``attack`` posted by an ``attacker``, its whole length declared up front."""
    async with attacker(app) as client:
        return await client.post(
            path,
            content=attack.body(),
            headers={"Content-Type": content_type, "Content-Length": str(attack.size)},
        )


async def sent_and_replied(stack: Stack) -> tuple[int, int]:
    """This practice's secure emails, and the replies to them (one database per run)."""
    engine = make_engine(stack.settings.database_url)
    mine = select(SecureEmail.id).where(SecureEmail.practice_id == stack.office.practice_id)
    async with engine.connect() as connection:
        sent = await connection.scalar(
            select(func.count()).select_from(SecureEmail).where(SecureEmail.id.in_(mine))
        )
        replied = await connection.scalar(
            select(func.count()).select_from(Reply).where(Reply.secure_email_id.in_(mine))
        )
    await engine.dispose()
    return int(sent or 0), int(replied or 0)


# A 2 MB anonymous form to /login --------------------------------------------------------


async def test_2_mb_form_to_login_refused_413_in_words(anonymous: Browser) -> None:
    response = await anonymous.post(
        "/login", data={"email": "admin@example.com", "password": "x" * (2 * MB)}
    )
    assert response.status_code == 413
    assert "Too large to send" in response.text
    assert "larger than 64 KB and was not read" in response.text


async def test_declared_length_over_limit_refused_before_any_byte(app: FastAPI) -> None:
    attack = Attack(2 * MB, head=b"email=a%40example.com&password=")
    response = await declared_by_attacker(app, "/login", attack, FORM)
    assert response.status_code == 413
    assert "larger than 64 KB" in response.text
    assert attack.taken == 0


async def test_streamed_form_over_limit_stops_at_the_limit(app: FastAPI) -> None:
    head = b"email=a%40example.com&password="
    attack = Attack(2 * MB, head=head, chunk=16 * KB)
    async with attacker(app) as client:
        response = await client.post(
            "/login",
            content=attack.body(),  # no length: sent chunked, counted as it comes
            headers={"Content-Type": FORM},
        )
    assert response.status_code == 413
    assert "larger than 64 KB" in response.text
    # The head, then 16 KB chunks up to the one that passed 64 KB: nothing after it.
    assert len(head) + 4 * 16 * KB > 64 * KB
    assert attack.taken == 1 + 4 < attack.chunks


# A 40 MB anonymous multipart, anywhere ---------------------------------------------------


async def test_40_mb_multipart_to_login_with_own_token_pair_refused_at_64_kb(
    app: FastAPI,
) -> None:
    async with attacker(app) as client:
        attack, content_type = multipart(40 * MB, csrf_token=await own_token_pair(client))
        response = await client.post(
            "/login", content=attack.body(), headers={"Content-Type": content_type}
        )
    assert response.status_code == 413
    assert "larger than 64 KB" in response.text
    assert attack.taken == 2 < attack.chunks  # the head and the chunk that passed 64 KB


@pytest.mark.parametrize(
    "path", ["/login", "/patients/some-patient/compose", "/portal/messages/some-message/reply"]
)
async def test_40_mb_multipart_without_form_token_refused_unread(app: FastAPI, path: str) -> None:
    attack, content_type = multipart(40 * MB, csrf_token="forged")
    async with attacker(app) as client:
        response = await client.post(
            path, content=attack.body(), headers={"Content-Type": content_type}
        )
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    assert attack.taken == 0  # no cookie: refused before the first byte


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/patients/some-patient/compose", 303, ""),  # to the log-in page
        ("/portal/messages/some-message/reply", 401, "Your secure session has ended"),
    ],
)
async def test_40_mb_multipart_with_own_token_pair_not_read_before_sign_in(
    app: FastAPI, path: str, status: int, words: str
) -> None:
    """Anyone can get a cookie and a field that match from the log-in page; the sign-in is
    checked next, still before the files are read."""
    async with attacker(app) as client:
        attack, content_type = multipart(40 * MB, csrf_token=await own_token_pair(client))
        response = await client.post(
            path, content=attack.body(), headers={"Content-Type": content_type}
        )
    assert response.status_code == status
    assert words in response.text
    if status == 303:
        assert response.headers["location"] == "/login"
    assert attack.taken == 1  # only the chunk that held the form token


async def test_40_mb_multipart_to_api_without_token_not_read(app: FastAPI) -> None:
    attack, content_type = multipart(40 * MB)
    async with attacker(app) as client:
        response = await client.post(
            "/api/v1/secure-emails", content=attack.body(), headers={"Content-Type": content_type}
        )
    assert response.status_code == 401
    assert response.json() == {"detail": "A valid API token is required"}
    assert attack.taken == 0


async def test_declared_over_send_secure_limit_refused_unread(office: Office) -> None:
    """Signed in or not, 200 MB of files is the most one message takes."""
    attack, content_type = multipart(250 * MB)
    response = await office.api.post(
        "/api/v1/secure-emails",
        content=attack.body(),
        headers={"Content-Type": content_type, "Content-Length": str(250 * MB)},
    )
    assert response.status_code == 413
    assert "at most 10 files of 20 MB each" in response.json()["detail"]
    assert attack.taken == 0


async def test_declared_over_send_secure_limit_on_the_page_refused_in_words(
    office: Office,
) -> None:
    attack, content_type = multipart(250 * MB, csrf_token=await office.browser.form_token())
    response = await office.browser.post(
        "/patients/some-patient/compose",
        content=attack.body(),
        headers={"Content-Type": content_type, "Content-Length": str(250 * MB)},
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "Too large to send" in response.text
    assert "at most 10 files of 20 MB each in one message. Nothing was sent." in response.text
    assert attack.taken == 0


async def test_api_json_over_1_mb_refused_in_json(office: Office) -> None:
    response = await office.api.post(
        "/api/v1/patients", json={"name": "Ada " + "a" * (2 * MB), "email": "ada@example.com"}
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 1 MB and was not read."}
    assert (await office.api.get("/api/v1/patients")).json() == {"items": []}


async def test_codec_body_over_4_mb_refused_in_json(app: FastAPI) -> None:
    attack = Attack(5 * MB, head=b'{"payloads": [')
    response = await declared_by_attacker(app, "/codec/decode", attack, "application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 4 MB and was not read."}
    assert attack.taken == 0


# The same through a real server: the answer comes before the body is sent --------------


@contextlib.asynccontextmanager
async def served(app: FastAPI, *, lifespan: Literal["on", "off"] = "off") -> AsyncIterator[int]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan=lifespan, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        await serving


async def test_the_app_starts_through_its_body_checks(settings: Settings) -> None:
    """The server starts the app (its lifespan) through the middlewares, as in production."""
    async with served(create_app(settings), lifespan="on") as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            login = await client.get("/login")
    assert login.status_code == 200


async def test_real_server_answers_413_without_waiting_for_the_body(app: FastAPI) -> None:
    async with served(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        boundary = "x" * 16
        writer.write(
            (
                "POST /login HTTP/1.1\r\nHost: portal.test\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {40 * MB}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        # Not one byte of the body is sent: the answer comes anyway, and the server
        # closes the connection rather than wait for 40 MB.
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
    head, _, page = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert re.search(rb"(?im)^connection: close", head)
    assert b"larger than 64 KB and was not read" in page


async def test_real_server_stops_taking_a_streamed_body(app: FastAPI) -> None:
    total = 40 * MB
    sent = 0
    async with served(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /login HTTP/1.1\r\nHost: portal.test\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        answer = asyncio.create_task(reader.read())

        chunk = b"%x\r\n%s\r\n" % (CHUNK, b"0" * CHUNK)
        with contextlib.suppress(ConnectionError):
            while sent < total and not answer.done():
                writer.write(chunk)
                await writer.drain()
                sent += CHUNK
        try:
            page: bytes | None = await asyncio.wait_for(answer, timeout=10)
        except ConnectionResetError:
            # The server closed with our bytes unread: the kernel may drop its 413 then.
            page = None
        writer.close()
    # What was sent before the server stopped taking it: the 64 KB the app read, and
    # what the two sockets' buffers held meanwhile; far from the 40 MB.
    assert sent < total // 2
    assert page is None or page.startswith(b"HTTP/1.1 413 ")


# At most 10 files: refusals that name the limit and keep what was typed ----------------


async def test_real_server_11_files_refusal_reaches_the_browser(
    app: FastAPI, office: Office
) -> None:
    """The form stops being parsed at the 11th file; the refusal must still reach the
    browser that is sending the rest, with what was typed (a server that closes with
    bytes unread makes the browser show a connection reset instead)."""
    patient = await office.api.post(
        "/api/v1/patients", json={"name": "Ada", "email": "ada@example.com"}
    )
    # Ten small photos, then an 11th of 15 MB: it is still on its way when the refusal is made.
    photos = [("attachments", (f"photo-{n}.png", PNG, "image/png")) for n in range(10)]
    scan = ("attachments", ("scan.png", PNG + b"\x00" * (15 * MB), "image/png"))
    token = await office.browser.form_token()
    async with served(app) as port:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            cookies={
                STAFF_COOKIE: office.browser.cookies[STAFF_COOKIE],
                CSRF_COOKIE: office.browser.cookies[CSRF_COOKIE],
            },
        ) as browser:
            response = await browser.post(
                f"/patients/{patient.json()['id']}/compose",
                data={
                    CSRF_FIELD: token,
                    "subject": TYPED_SUBJECT,
                    "body": TYPED_BODY,
                },
                files=[*photos, scan],
            )
    assert response.status_code == 422
    assert "At most 10 files can be sent in one message" in response.text
    assert TYPED_BODY in response.text


def files(count: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("attachments", (f"photo-{n}.png", PNG, "image/png")) for n in range(count)]


async def test_11_files_on_compose_refused_keeping_the_text(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    response = await stack.office.browser.post(
        f"/patients/{patient_id}/compose",
        data={"subject": TYPED_SUBJECT, "body": TYPED_BODY},
        files=files(11),
    )
    assert response.status_code == 422
    assert "At most 10 files can be sent in one message" in response.text
    assert f'value="{TYPED_SUBJECT}"' in response.text and TYPED_BODY in response.text
    assert await sent_and_replied(stack) == (0, 0)


async def test_11_files_on_the_api_refused_10_accepted(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", "ada@example.com")
    form = {"patient_id": patient_id, "subject": "Photos", "body": "As discussed."}
    refused = await stack.office.api.post("/api/v1/secure-emails", data=form, files=files(11))
    assert refused.status_code == 422
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["body", "attachments"]
    assert "At most 10 files" in problem["msg"]
    assert await sent_and_replied(stack) == (0, 0)
    accepted = await stack.office.api.post("/api/v1/secure-emails", data=form, files=files(10))
    assert accepted.status_code == 201, accepted.text


async def test_reply_all_with_a_file_works_11_refused_keeping_the_text(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        page = await patient.get(f"{message_path}/reply")
        form = page.text.split('enctype="multipart/form-data"', 1)[1]
        first_field = re.search(r"<(input|textarea|select)\b[^>]*>", form)
        assert first_field and 'name="csrf_token"' in first_field.group(0)  # a browser
        # sends fields in the page's order: the token, checked before the files are read

        refused = await patient.post(
            f"{message_path}/reply",
            data={"subject": TYPED_SUBJECT, "body": TYPED_BODY},
            files=files(11),
        )
        assert refused.status_code == 422
        assert "Your reply was not sent. Everything you wrote is still here." in refused.text
        assert "At most 10 files can be sent in one message" in refused.text
        assert f'value="{TYPED_SUBJECT}"' in refused.text and TYPED_BODY in refused.text
        assert await sent_and_replied(stack) == (1, 0)

        sent = await patient.post(
            f"{message_path}/reply",
            data={"subject": TYPED_SUBJECT, "body": TYPED_BODY},
            files=files(1),
        )
        assert sent.status_code == 303, sent.text
        assert "photo-0.png" in (await patient.get("/portal/files")).text
