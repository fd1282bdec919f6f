"""``/codec/decode`` and ``/codec/encode``: the Temporal Web UI's remote codec (R12).

The Temporal service stores only encrypted payloads; the Web UI sends them here and
shows what comes back. Only an office administrator may have them opened: signed in
(the UI's fetch carries the staff cookie when it includes credentials) or holding an
admin's API token. The UI runs on another origin, so these routes answer CORS for that
one origin and for no other; every other route of the app stays without CORS.

Refusals answer JSON here (not the app's HTML error page): the caller is a script.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from domain.audit import AuditAction
from infra.crypto.keys import key_ring
from infra.db.models import StaffUser
from infra.settings import Settings
from infra.temporal.codec import EncryptionCodec, PayloadDecryptionError
from web.deps import (
    DbSession,
    NotSignedIn,
    SettingsDep,
    account_from_bearer,
    account_from_cookie,
    audit_staff,
)

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


@router.post("/decode")
async def decode(
    request: Request, db: DbSession, settings: SettingsDep, bearer: Bearer
) -> Response:
    codec = payload_codec(request, settings)
    operator = await _staff(request, db, bearer)
    response = await _convert(request, settings, operator, codec.decode)
    if operator is not None and response.status_code == status.HTTP_200_OK:
        # Who read workflow payloads (PHI) in the Temporal UI, and when.
        await audit_staff(db, request, operator, AuditAction.OPERATOR_DECODE)
    return response


@router.post("/encode")
async def encode(
    request: Request, db: DbSession, settings: SettingsDep, bearer: Bearer
) -> Response:
    codec = payload_codec(request, settings)
    return await _convert(request, settings, await _staff(request, db, bearer), codec.encode)


def payload_codec(request: Request, settings: Settings) -> EncryptionCodec:
    """One codec for the app's life: the key ring is read once, not on every payload."""
    codec: EncryptionCodec | None = getattr(request.app.state, "payload_codec", None)
    if codec is None:
        codec = EncryptionCodec(key_ring(settings))
        request.app.state.payload_codec = codec
    return codec


async def _convert(
    request: Request, settings: Settings, operator: StaffUser | None, convert: Convert
) -> Response:
    headers = cors_headers(request, settings)

    def refuse(status_code: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code, headers=headers)

    if operator is None:
        return refuse(status.HTTP_401_UNAUTHORIZED, "Sign in as an operator")
    if not operator.is_operator:
        # Practice staff of every role: a practice's admin must not read other
        # practices' workflows, and needs nothing from Temporal to run the office.
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

    return Response(
        json_format.MessageToJson(Payloads(payloads=converted)),
        media_type="application/json",
        headers=headers,
    )


async def _staff(request: Request, db: DbSession, bearer: Bearer) -> StaffUser | None:
    """The staff user of the API token if one is given, else of the session cookie."""
    if bearer is not None:
        try:
            return await account_from_bearer(db, bearer)
        except HTTPException:
            return None
    try:
        return await account_from_cookie(request, db)
    except NotSignedIn:
        return None
