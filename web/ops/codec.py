"""``/codec/decode`` and ``/codec/encode``: the Temporal Web UI's remote codec (R12).

The Temporal service stores only encrypted payloads; the Web UI and the ``temporal`` CLI
send them here and show what comes back. Only platform operators may have them opened
(a workflow belongs to one practice, and practice staff need nothing from Temporal):
signed in (the UI's fetch carries the session cookie when it includes credentials) or
holding an operator's API token (``infra.operators.codec_account``: a token's first use
after a pause opens an audited decoding session). Each decode is audited in the log of
every practice whose secure emails the payloads name. The UI runs on another origin, so
these routes answer CORS for that one origin and for no other; every other route stays
without CORS.

Refusals answer JSON here (not the app's HTML error page): the caller is a script.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from domain.audit import AuditAction
from infra import operators
from infra.crypto.keys import encryption_keys
from infra.db.models import StaffUser
from infra.settings import Settings
from infra.temporal.codec import EncryptionCodec, PayloadDecryptionError
from web.deps import (
    DbSession,
    NotSignedIn,
    SettingsDep,
    audit_staff,
    client_address,
    signed_in_account,
)
from web.ops.codec_audit import audit_decode

router = APIRouter(prefix="/codec", tags=["codec"], include_in_schema=False)

ALLOWED_HEADERS = "content-type, x-namespace, authorization"
PREFLIGHT_MAX_AGE = "600"

Convert = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


def cors_headers(request: Request, settings: Settings) -> dict[str, str]:
    # Credentialed CORS needs the exact origin echoed, never "*"; other origins get no
    # grant, so a browser on any other page cannot read what this answers.
    headers = {"Vary": "Origin"}
    if request.headers.get("origin") == settings.temporal_ui_origin:
        headers["Access-Control-Allow-Origin"] = settings.temporal_ui_origin
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


@router.options("/decode")
@router.options("/encode")
async def preflight(request: Request, settings: SettingsDep) -> Response:
    headers = cors_headers(request, settings)
    if "Access-Control-Allow-Origin" not in headers:
        return Response("Origin not allowed", status.HTTP_403_FORBIDDEN, headers=headers)
    headers |= {
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
    }
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


@router.post("/{direction}")
async def convert(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    operator: Operator,
    direction: Literal["decode", "encode"],
) -> Response:
    """``/codec/decode`` and ``/codec/encode``: each conversion is audited, a decode in
    every practice whose secure emails its payloads name."""
    codec = payload_codec(request, settings)
    decoding = direction == "decode"
    convert = codec.decode_for_operator if decoding else codec.encode
    response, converted = await _convert(request, settings, operator, convert)
    if operator is None or converted is None:
        return response
    if decoding:
        await audit_decode(db, request, operator, converted)
    else:
        await audit_staff(db, request, operator, AuditAction.OPERATOR_ENCODE)
    return response


def payload_codec(request: Request, settings: Settings) -> EncryptionCodec:
    """One codec for the app's life: the key ring is read once, not on every payload."""
    codec: EncryptionCodec | None = getattr(request.app.state, "payload_codec", None)
    if codec is None:
        codec = EncryptionCodec(encryption_keys(settings))
        request.app.state.payload_codec = codec
    return codec


async def _convert(
    request: Request, settings: Settings, operator: StaffUser | None, convert: Convert
) -> tuple[Response, list[Payload] | None]:
    """The answer, and the payloads as converted (None when refused)."""
    headers = cors_headers(request, settings)

    def refuse(status_code: int, detail: str) -> tuple[Response, None]:
        return JSONResponse({"detail": detail}, status_code, headers=headers), None

    if operator is None:
        return refuse(status.HTTP_401_UNAUTHORIZED, "Sign in as an operator")
    if not operator.is_operator:
        # Practice staff of every role: a practice's admin must not read other
        # practices' workflows, and runs the office without Temporal.
        return refuse(status.HTTP_403_FORBIDDEN, "Operators only")
    # Requiring JSON also makes any cross-origin caller go through the preflight above.
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return refuse(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Send Payloads as application/json")
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError:
        return refuse(status.HTTP_400_BAD_REQUEST, "The body must be Temporal Payloads as JSON")
    try:
        converted = await convert(payloads.payloads)
    except PayloadDecryptionError as error:
        return refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error))

    response = Response(
        json_format.MessageToJson(Payloads(payloads=converted)),
        media_type="application/json",
        headers=headers,
    )
    return response, converted


async def _operator(
    request: Request, db: DbSession, settings: SettingsDep, bearer: Bearer
) -> StaffUser | None:
    """The account of the API token if one is given, else of the session cookie; None
    for every refusal alike (unknown, revoked, expired, signed out)."""
    if bearer is not None:
        account = await operators.codec_account(
            db,
            bearer.credentials,
            session_idle=timedelta(minutes=settings.staff_idle_minutes),
            client_address=client_address(request),
        )
    else:
        try:
            account = await signed_in_account(request, db, settings)
        except NotSignedIn:
            return None
    if account is None or account.must_change_password:
        return None
    return account


Operator = Annotated[StaffUser | None, Depends(_operator)]
