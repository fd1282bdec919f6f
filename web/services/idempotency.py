"""The ``Idempotency-Key`` header of ``/api/v1`` operations a client may retry (R21): a
route reads the header with ``IdempotencyKeyHeader``, fingerprints its request
(``form_fingerprint``, ``bytes_fingerprint``) and runs its work through ``answer_once``.

With a key, the first request runs and its answer is kept (``infra.idempotency``) for
24 hours; the same key with the same request gets that answer again (the same status and
body; ``Idempotent-Replayed: true``) and does nothing more. A retry that arrives while
the first still runs waits for its answer, up to ``WAIT_FOR_FIRST``, then is told to
retry (409, Retry-After). The same key with another request is refused (422): the key
names one request.

What is kept follows Stripe's model. A refusal (a 4xx: a field refused, sending
switched off) is the answer to that request, and a retry gets it again: the client
learns what it missed when its connection dropped, and a refusal does not turn into a
send because a setting changed between the attempt and its retry; to try something
else, the client sends a new key. A failure the client is asked to retry (a 5xx:
Temporal or the object store unavailable, the database busy) did nothing (the send
keeps nothing, R14), so the key is given back and the retry with it runs again: pinning
it would answer that retry with the failure forever.

The key is never logged or stored as sent (its SHA-256 is). "The same request" is what
the request asked for as parsed, not its bytes: two sends of the same multipart form
differ in their boundaries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, BinaryIO

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from infra import idempotency
from infra.db.engine import finishes_when_cancelled
from infra.idempotency import Answer, KeyUse
from web.state import AppState

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
DESCRIPTION = (
    "Makes the request safe to retry. A retry with the same key and the same request "
    "within 24 hours gets the first request's answer (the same status and body) and "
    "does nothing more; the same key with another request is refused (422). A failure "
    "the client should retry (503) does not keep the key: the retry runs again. At most "
    f"{MAX_KEY_LENGTH} printable ASCII characters, one per request (a UUID), per "
    "practice."
)
BAD_KEY = f"An {HEADER} is 1 to {MAX_KEY_LENGTH} printable ASCII characters"
# What the schema says a key is: printable ASCII, with no space at either end (HTTP
# trims those, so a key of spaces arrives empty).
KEY_SCHEMA = {
    "minLength": 1,
    "maxLength": MAX_KEY_LENGTH,
    "pattern": r"^[!-~]([ -~]*[!-~])?$",
}
OTHER_REQUEST = (
    f"This {HEADER} was used for a different request in the last 24 hours; send a new "
    "key with a new request"
)
STILL_RUNNING = (
    f"The first request with this {HEADER} is still running. Try again shortly for its "
    "answer; nothing more was done."
)
INTERRUPTED = (
    f"The first request with this {HEADER} was interrupted before it answered, so whether "
    "it took effect is not known. Check before sending it again with a new key."
)
REPLAYED = "Idempotent-Replayed"

# How long a retry waits for the first request's answer, and the pauses between looks.
WAIT_FOR_FIRST = 10.0
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 0.5
# Seconds a retry told "still running" is asked to wait.
RETRY_AFTER = 5
# A first request without an answer after this long is taken as interrupted (its server
# stopped): no request runs this long.
INTERRUPTED_AFTER = timedelta(minutes=10)

# The work of a route: the body of its answer (a refusal is an ``HTTPException``).
Work = Callable[[], Awaitable[BaseModel]]


def header_refused(message: str) -> HTTPException:
    """A 422 naming the header, in the shape of the app's other refusals."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["header", HEADER], "msg": message, "type": "value_error"}],
    )


async def idempotency_key(
    key: Annotated[
        str | None, Header(alias=HEADER, description=DESCRIPTION, json_schema_extra=KEY_SCHEMA)
    ] = None,
) -> str | None:
    """The request's key, if it sent one; refused unless 1 to 255 printable ASCII."""
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        raise header_refused(BAD_KEY)
    return key


IdempotencyKeyHeader = Annotated[str | None, Depends(idempotency_key)]


# Fingerprints -----------------------------------------------------------------------


def _fingerprint(request: Request, parts: Sequence[Any]) -> str:
    operation = f"{request.method} {request.url.path}"
    canonical = json.dumps([operation, list(parts)], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _sha256_of(file: BinaryIO) -> str:
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(1024 * 1024):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


async def form_fingerprint(request: Request, form: FormData) -> str:
    """A form request as parsed: its operation, each field's values in the order sent,
    and each file's name, content type and SHA-256 (files are read, then rewound)."""
    parts: list[list[str | None]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            content = await asyncio.to_thread(_sha256_of, value.file)
            parts.append([name, "file", value.filename, value.content_type, content])
        else:
            parts.append([name, "text", value])
    # Fields by name; the order of one field's values (the files) is kept.
    return _fingerprint(request, sorted(parts, key=lambda part: str(part[0])))


def bytes_fingerprint(request: Request, body: bytes) -> str:
    """A request whose body is bytes (a CSV file): its operation, query parameters and
    the body's SHA-256."""
    query = sorted(request.query_params.multi_items())
    return _fingerprint(request, [query, hashlib.sha256(body).hexdigest()])


# Answering once ---------------------------------------------------------------------


async def answer_once(
    request: Request,
    state: AppState,
    db: AsyncSession,
    practice_id: str,
    key: str,
    fingerprint: str,
    work: Work,
    status_code: int = status.HTTP_200_OK,
) -> Response:
    """Runs ``work`` once for ``key`` and answers, with ``status_code`` if it succeeds;
    a refusal it raises is answered and kept too. A failure it raises (or a 5xx) gives
    the key back and goes on to the app's handlers.

    ``db``, the request's session, is committed first if it has only read: the key's
    rows use sessions of their own, and a request holding one connection while it waits
    for another could wait on the others until the pool times out.
    """
    if not (db.new or db.dirty or db.deleted):
        await db.commit()
    deadline = asyncio.get_running_loop().time() + WAIT_FOR_FIRST
    while True:
        async with state.sessions() as session:
            claim_id = await idempotency.claim(session, practice_id, key, fingerprint)
        if claim_id is not None:
            return await _run(request, state, claim_id, work, status_code)
        used = await _first_answer(state, practice_id, key, fingerprint, deadline)
        if used is None and asyncio.get_running_loop().time() < deadline:
            continue  # the first failed and gave the key back: this one runs
        if used is None:
            raise _still_running()
        if used.request_hash != fingerprint:
            raise header_refused(OTHER_REQUEST)
        if used.answer is None:
            if _interrupted(used):
                raise HTTPException(status.HTTP_409_CONFLICT, detail=INTERRUPTED)
            raise _still_running()
        return Response(
            used.answer.body,
            status_code=used.answer.status_code,
            media_type="application/json",
            headers={REPLAYED: "true"},
        )


def _still_running() -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT, detail=STILL_RUNNING, headers={"Retry-After": str(RETRY_AFTER)}
    )


def _interrupted(used: KeyUse) -> bool:
    return used.created_at < datetime.now(UTC) - INTERRUPTED_AFTER


async def _first_answer(
    state: AppState, practice_id: str, key: str, fingerprint: str, deadline: float
) -> KeyUse | None:
    """The key's use once there is something to answer (its answer, another request, an
    interrupted first, the key given back), or as it is at ``deadline``."""
    loop = asyncio.get_running_loop()
    pause = FIRST_PAUSE
    while True:
        async with state.sessions() as session:
            used = await idempotency.find(session, practice_id, key)
        if (
            used is None
            or used.answer is not None
            or used.request_hash != fingerprint
            or _interrupted(used)
            or loop.time() >= deadline
        ):
            return used
        await asyncio.sleep(min(pause, max(deadline - loop.time(), 0)))
        pause = min(pause * 2, LONGEST_PAUSE)


@finishes_when_cancelled
async def _run(
    request: Request, state: AppState, claim_id: str, work: Work, status_code: int
) -> Response:
    """The claimed request's work, then its answer kept or its key given back. Finished
    even if the client goes away meanwhile: a send left half-known would keep its key
    from ever answering. An answer the database cannot keep leaves the key claimed
    without one, like a release that fails: never done twice."""
    try:
        answer = await _answered(request, work, status_code)
    except Exception:
        await _release(state, claim_id)
        raise
    if answer.status_code >= status.HTTP_500_INTERNAL_SERVER_ERROR:
        await _release(state, claim_id)
        return answer
    async with state.sessions() as session:
        await idempotency.record_answer(
            session, claim_id, Answer(answer.status_code, bytes(answer.body).decode())
        )
    return answer


async def _answered(request: Request, work: Work, status_code: int) -> Response:
    try:
        result = await work()
    except StarletteHTTPException as refused:
        return await http_exception_handler(request, refused)
    return JSONResponse(result.model_dump(mode="json"), status_code=status_code)


async def _release(state: AppState, claim_id: str) -> None:
    """Gives the key back. If the database cannot, the key stays claimed without an
    answer (retries are told it is still running, then that it was interrupted) and the
    request's own failure is what the client gets."""
    try:
        async with state.sessions() as session:
            await idempotency.release(session, claim_id)
    except Exception:
        logger.exception("an idempotency key could not be given back (claim %s)", claim_id)
