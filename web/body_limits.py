"""Request bodies are bounded before anything reads or parses them (R14): 413 in words.

One table (``LIMITS``) says how large a body each route may receive and why. A body that
declares a larger ``Content-Length`` is refused before a byte of it is read; a body sent
without one (chunked) is counted as it arrives and refused the moment the count passes
the limit, so nobody can make the app spool 40 MB to find out who is asking.

The limits by kind:

- forms anyone may post (log-in, log-out, a passcode request, a passcode, Sign Out):
  64 KB: an address and a password or six digits, with room to spare;
- office and portal forms without files, and the JSON bodies of ``/api/v1``: 1 MB;
- Send Secure (office page and API) and Reply All, when multipart: 10 files of 20 MB and
  2 MB for the subject, the body and the parts' headers (each text field is at most
  1 MB, Starlette's part limit);
- SendGrid's Event Webhook: 1 MB, one batch of events of a few hundred bytes each
  (SendGrid splits what it has into batches; a refused one it posts again);
- the Temporal UI's codec: 4 MB, Temporal's gRPC message limit: a batch of payloads of
  one workflow history can never be larger than what the Temporal service can hold;
- any route not in the table: 64 KB, as if anyone could post it, until it says why more.

This middleware only counts; who may post (CSRF, sign-in) is checked before the larger
bodies are parsed: see ``web.csrf.MultipartCsrf`` and the Send Secure and Reply All routes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.attachments import MAX_ATTACHMENT_BYTES
from domain.patient_import import MAX_BYTES as MAX_CSV_BYTES
from web.templating import render
from web.uploads import MAX_FILES

KB = 1024
MB = 1024 * 1024

ANONYMOUS_FORM = 64 * KB
# A CSV file of patients (``domain.patient_import.MAX_BYTES``); on the office's page, the
# confirmation sends it back base64-encoded (a third larger) with the form's token.
CSV_FILE = MAX_CSV_BYTES
CSV_PAGE = MAX_CSV_BYTES * 4 // 3 + 1 * MB
FORM = 1 * MB
CODEC = 4 * MB
WEBHOOK = 1 * MB
# Subject, body (each at most 1 MB: Starlette's limit on one text part), the form token
# and every part's own headers.
FIELDS_ALLOWANCE = 2 * MB
UPLOADS = MAX_FILES * MAX_ATTACHMENT_BYTES + FIELDS_ALLOWANCE

JSON_PREFIXES = ("/api/", "/codec/", "/webhooks/")
CLOSE = (b"connection", b"close")
ANY_METHOD = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The office's pages, by section: the catch-all of their forms.
OFFICE_SECTIONS = "/(patients|settings|secure-emails|staff|tokens|email-client|alerts|audit)(/.*)?"


def _size(count: int) -> str:
    return f"{count // MB} MB" if count >= MB else f"{count // KB} KB"


@dataclass(frozen=True)
class BodyLimit:
    """How large a body a route takes, and why; ``uploads``: multipart bodies may carry
    Send Secure's or Reply All's files, any other body of the route is a 1 MB form."""

    methods: frozenset[str]
    path: re.Pattern[str]
    limit: int
    why: str
    uploads: bool = False

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and self.path.fullmatch(path) is not None

    def limit_for(self, multipart: bool) -> int:
        if self.uploads:
            return UPLOADS if multipart else FORM
        return self.limit


def _limit(methods: str, path: str, limit: int, why: str, *, uploads: bool = False) -> BodyLimit:
    chosen = ANY_METHOD if methods == "*" else frozenset(methods.split())
    return BodyLimit(chosen, re.compile(path), limit, why, uploads)


def _uploads(path: str, why: str) -> BodyLimit:
    """A route that sends files (Send Secure, Reply All): a multipart body may carry them
    (``UPLOADS``), any other body of it is a form (``FORM``)."""
    return _limit("POST", path, FORM, why, uploads=True)


# First match wins: the specific routes come before their section's catch-all.
LIMITS: tuple[BodyLimit, ...] = (
    _limit("POST", "/login", ANONYMOUS_FORM, "log-in: an address and a password, from anyone"),
    _limit("POST", "/logout", ANONYMOUS_FORM, "log-out: only the form token"),
    _limit("POST", "/m/[^/]+/passcode", ANONYMOUS_FORM, "asking for a passcode: the form token"),
    _limit("POST", "/m/[^/]+/verify", ANONYMOUS_FORM, "a passcode: a few digits, from anyone"),
    _limit("POST", "/portal/sign-out", ANONYMOUS_FORM, "Sign Out: only the form token"),
    _uploads(
        "/patients/[^/]+/compose",
        "Send Secure in the office: at most 10 files of 20 MB, a subject and a body",
    ),
    _uploads("/api/v1/secure-emails", "Send Secure from practice software: as the office page"),
    _uploads("/portal/messages/[^/]+/reply", "Reply All: 10 files of 20 MB, a subject and a body"),
    _limit("POST", "/api/v1/patients/import", CSV_FILE, "a CSV file of patients"),
    _limit(
        "POST",
        "/patients/import(/preview)?",
        CSV_PAGE,
        "a CSV file of patients (the preview), or its confirmation",
    ),
    _limit("POST", "/webhooks/sendgrid", WEBHOOK, "SendGrid's Event Webhook: a batch of events"),
    _limit("*", "/codec/.*", CODEC, "payloads of one history, within Temporal's 4 MB"),
    _limit("*", "/api/.*", FORM, "JSON: a patient, the practice's settings, staff, tokens"),
    _limit("*", OFFICE_SECTIONS, FORM, "office forms without files: a patient, staff, Send again"),
)
DEFAULT = _limit("*", ".*", ANONYMOUS_FORM, "a route not listed: as small as anyone's form")


def limit_for(method: str, path: str) -> BodyLimit:
    return next((rule for rule in LIMITS if rule.matches(method, path)), DEFAULT)


def refusal(path: str, rule: BodyLimit, limit: int) -> str:
    json = path.startswith(JSON_PREFIXES)
    if rule.uploads and limit == UPLOADS:
        files = f"at most {MAX_FILES} files of {_size(MAX_ATTACHMENT_BYTES)} each in one message"
        if json:
            return (
                f"The request body is larger than Secure Email accepts: {files}. Nothing was sent."
            )
        return (
            f"This is larger than Secure Email accepts: {files}. Nothing was sent. Go back, "
            "choose fewer or smaller files and try again."
        )
    if json:
        return f"The request body is larger than {_size(limit)} and was not read."
    return (
        f"This form is larger than {_size(limit)} and was not read; nothing was saved. "
        "Go back, reload the page and try again."
    )


class BodyTooLarge(Exception):
    """Raised into the app when a streamed body passes its limit; the app stops reading."""


class BodyLimits:
    """Pure ASGI, so it counts the very bytes the app is handed, whatever reads them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        rule = limit_for(scope["method"], path)
        multipart = headers.get("content-type", "").lower().startswith("multipart/form-data")
        limit = rule.limit_for(multipart)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, rule, limit)
            return

        received = 0
        exceeded = False
        started = False
        body_left = (
            declared not in ("", "0") or "chunked" in headers.get("transfer-encoding", "").lower()
        )

        async def counted() -> Message:
            nonlocal received, exceeded, body_left
            if exceeded:
                raise BodyTooLarge(path)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_left = bool(message.get("more_body", False))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(path)
            return message

        async def answer(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's own answer to a cut-off body; the 413 goes instead
            if message["type"] == "http.response.start":
                started = True
                if body_left:
                    # Answered before the body was read (a refusal: not signed in, no
                    # form token): the server closes rather than take the rest.
                    message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        try:
            await self.app(scope, counted, answer)
        except Exception:
            # Whatever the app made of the body being cut off (BodyTooLarge itself, or
            # a parse error raised from it) is answered with the 413 below.
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send, rule, limit)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, rule: BodyLimit, limit: int
    ) -> None:
        path: str = scope["path"]
        message = refusal(path, rule, limit)
        # "Connection: close": the server stops taking the rest of the body off the wire.
        headers = {"Connection": "close"}
        response: Response
        if path.startswith(JSON_PREFIXES):
            response = JSONResponse({"detail": message}, 413, headers=headers)
        else:
            response = render(
                Request(scope), "too_large.html", {"message": message}, status_code=413
            )
            response.headers.update(headers)
        await response(scope, receive, send)
