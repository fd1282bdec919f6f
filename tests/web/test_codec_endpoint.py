"""The Temporal Web UI's codec endpoint (R12): operators only, CORS for the UI's origin only."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from infra.accounts import create_api_token, create_staff_user
from infra.crypto.keys import EncryptionKeys, encryption_keys
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import Practice, StaffSession
from infra.security import new_token, token_hash
from infra.settings import Settings
from infra.temporal.codec import EncryptionCodec
from tests.conftest import STAFF_PASSWORD, Office
from tests.fixtures.operators import Operator
from web.cookies import STAFF_COOKIE

SECRET = "Tooth 14 extraction"
OTHER_ORIGIN = "http://127.0.0.1:9999"


def plain(text: str = SECRET) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


def as_json(payloads: list[Payload]) -> dict[str, Any]:
    return json_format.MessageToDict(Payloads(payloads=payloads))


def from_json(body: dict[str, Any]) -> list[Payload]:
    return list(json_format.ParseDict(body, Payloads()).payloads)


async def encrypted(settings: Settings, text: str = SECRET) -> dict[str, Any]:
    """What the UI sends: the payloads as the server stores them."""
    return as_json(await EncryptionCodec(encryption_keys(settings)).encode([plain(text)]))


async def staff_member(
    app: FastAPI, settings: Settings, office: Office
) -> tuple[httpx.AsyncClient, str]:
    """A signed-in browser and an API token of a staff member who is not an admin."""
    engine = make_engine(settings.database_url)
    email = f"front-desk-{uuid.uuid4().hex[:8]}@smile-dental.example"
    session_token = new_token()
    async with make_sessionmaker(engine)() as db:
        practice = await db.get(Practice, office.practice_id)
        assert practice is not None
        user = await create_staff_user(db, practice, email, STAFF_PASSWORD)
        api_token = await create_api_token(db, user, "front desk")
        # Signed in as the log-in page would sign them in; that page has tests of its own.
        db.add(
            StaffSession(
                token_hash=token_hash(session_token),
                staff_id=user.id,
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
        await db.commit()
    await engine.dispose()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://portal.test",
        cookies={STAFF_COOKIE: session_token},
    )
    return client, api_token


async def test_decode_refused_without_credentials(
    anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    response = await anonymous.post("/codec/decode", json=await encrypted(settings))
    assert response.status_code == 401
    assert response.json() == {"detail": "Sign in as an operator"}
    assert SECRET not in response.text


async def test_decode_refused_with_unknown_token(
    anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    response = await anonymous.post(
        "/codec/decode",
        json=await encrypted(settings),
        headers={"Authorization": "Bearer not-a-token"},
    )
    assert response.status_code == 401


async def test_decode_refused_for_practice_staff_of_every_role(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    staff, token = await staff_member(app, settings, office)
    try:
        attempts = [
            await staff.post("/codec/decode", json=await encrypted(settings)),
            await staff.post(
                "/codec/decode",
                json=await encrypted(settings),
                headers={"Authorization": f"Bearer {token}"},
            ),
            await office.browser.post("/codec/decode", json=await encrypted(settings)),
            await office.api.post("/codec/decode", json=await encrypted(settings)),
            await office.api.post("/codec/encode", json=as_json([plain()])),
        ]
    finally:
        await staff.aclose()
    for response in attempts:
        assert response.status_code == 403
        assert response.json() == {"detail": "Operators only"}
        assert SECRET not in response.text


async def test_decode_with_operator_cookie(operator: Operator, settings: Settings) -> None:
    response = await operator.browser.post(
        "/codec/decode", json=await encrypted(settings), headers={"X-Namespace": "default"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert from_json(response.json()) == [plain()]


async def test_decode_with_operator_bearer_token(operator: Operator, settings: Settings) -> None:
    response = await operator.api.post("/codec/decode", json=await encrypted(settings))
    assert response.status_code == 200
    assert from_json(response.json()) == [plain()]


async def test_decode_shows_the_sdks_plain_payloads_as_they_are(
    operator: Operator, settings: Settings
) -> None:
    """A local activity's or a patch's marker is written in clear by the SDK's core: the
    history must still show, with ours opened beside it."""
    marker = plain("local activity marker")
    body = as_json([marker])
    body["payloads"] += (await encrypted(settings))["payloads"]
    response = await operator.api.post("/codec/decode", json=body)
    assert response.status_code == 200
    assert from_json(response.json()) == [marker, plain()]


async def test_decode_refuses_altered_payload(operator: Operator, settings: Settings) -> None:
    body = await encrypted(settings)
    body["payloads"][0]["data"] = base64.b64encode(b"\x01\x00\x00\x00\x07altered").decode()
    response = await operator.api.post("/codec/decode", json=body)
    assert response.status_code == 422


async def test_encode_then_decode_round_trip(operator: Operator, settings: Settings) -> None:
    encoded = await operator.browser.post("/codec/encode", json=as_json([plain(), plain("two")]))
    assert encoded.status_code == 200
    assert SECRET not in encoded.text
    sealed = from_json(encoded.json())
    assert [p.metadata["encoding"] for p in sealed] == [b"binary/encrypted"] * 2
    decoded = await operator.browser.post("/codec/decode", json=encoded.json())
    assert from_json(decoded.json()) == [plain(), plain("two")]
    # The app's own codec: what the worker would write, the endpoint reads, and back.
    assert await EncryptionCodec(encryption_keys(settings)).decode(sealed) == [
        plain(),
        plain("two"),
    ]


async def test_decode_refuses_payload_of_unknown_key(operator: Operator) -> None:
    elsewhere = EncryptionKeys.generate()
    foreign = as_json(await EncryptionCodec(elsewhere).encode([plain()]))
    response = await operator.api.post("/codec/decode", json=foreign)
    assert response.status_code == 422
    assert f"key {elsewhere.primary_id}," in response.json()["detail"]


async def test_decode_refuses_body_that_is_not_payloads(operator: Operator) -> None:
    not_json = await operator.api.post(
        "/codec/decode", content=b"payloads", headers={"Content-Type": "text/plain"}
    )
    assert not_json.status_code == 415
    wrong_shape = await operator.api.post("/codec/decode", json={"payloads": "nope"})
    assert wrong_shape.status_code == 400
    assert wrong_shape.json() == {"detail": "The body must be Temporal Payloads as JSON"}


async def test_preflight_from_ui_origin(anonymous: httpx.AsyncClient, settings: Settings) -> None:
    assert settings.temporal_ui_origin == "http://127.0.0.1:8233"
    for path in ("/codec/decode", "/codec/encode"):
        response = await anonymous.options(
            path,
            headers={
                "Origin": settings.temporal_ui_origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == settings.temporal_ui_origin
        assert response.headers["access-control-allow-credentials"] == "true"
        assert response.headers["access-control-allow-methods"] == "POST"
        allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "x-namespace", "authorization"} <= allowed


async def test_preflight_from_other_origin_gets_no_grant(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.options(
        "/codec/decode",
        headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers


async def test_decode_answers_cors_for_ui_origin_only(
    operator: Operator, settings: Settings
) -> None:
    body = await encrypted(settings)
    from_ui = await operator.browser.post(
        "/codec/decode", json=body, headers={"Origin": settings.temporal_ui_origin}
    )
    assert from_ui.headers["access-control-allow-origin"] == settings.temporal_ui_origin
    assert from_ui.headers["access-control-allow-credentials"] == "true"
    from_other = await operator.browser.post(
        "/codec/decode", json=body, headers={"Origin": OTHER_ORIGIN}
    )
    assert "access-control-allow-origin" not in from_other.headers


async def test_other_routes_have_no_cors(anonymous: httpx.AsyncClient, settings: Settings) -> None:
    response = await anonymous.get("/login", headers={"Origin": settings.temporal_ui_origin})
    assert "access-control-allow-origin" not in response.headers
