"""CSRF protection for every form: a token in the form, bound to the browser's session.

A page rendered for a browser puts a form token in a hidden field of each form; a POST
from a browser must carry it. The token is a MAC, under a server key, of what the
browser's cookies say about who it is:

- a random value of its own, the CSRF cookie, set once (``__Host-csrf_token`` when the
  public URL is https, see ``web.cookies``): it binds forms shown before any session
  (log-in, the portal's View Secure Email and passcode pages);
- the staff session cookie and the portal session cookie, when there are any.

So a token is good only in the browser, and the session, it was shown in. A page of
another site can make a browser send our cookies but cannot read them, nor a page of
ours, to fill the field. A cookie planted from a sibling subdomain (under http, where
the names have no ``__Host-``) does not help either: the server never computed a token
for it, and without the key nobody else can; a pair taken from the attacker's own
browser fails against the victim's session cookie. After log-in or Verify the session
cookie changes, and the next page renders a token for the new session.

The key is the portal keyset's PRF (HMAC-SHA256, ``infra.crypto.keys``), with a label
of its own, so the form token has nothing in common with a link or a passcode. A token
is minted with the primary key and checked against every key of the keyset, so forms
open during a key rotation keep working. Compared in constant time.

The API (bearer tokens, no cookies) and the codec endpoint (JSON behind CORS) are
outside this.

Multipart forms (Send Secure, Reply All) can be 200 MB; their token is checked on the
form's first part, before the rest of the body is read (``MultipartCsrf``). Every form
of ours puts the hidden token field first, and browsers send fields in the order of the
page (the HTML standard's "constructing the entry list"), so the token arrives in the
first few hundred bytes. We chose this over a token in the form's action URL: a URL
ends up in access logs, browser history and the address bar of a refused form.
"""

from __future__ import annotations

import base64
import hmac
import secrets

from fastapi import HTTPException, Request, Response, status
from python_multipart.multipart import parse_options_header
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.crypto.keys import PortalKeys
from infra.settings import Settings
from web.cookies import CSRF_COOKIE, PORTAL_COOKIE, STAFF_COOKIE, cookie_name, set_cookie
from web.state import AppState

CSRF_FIELD = "csrf_token"
# The PRF's input starts with this, so no other use of the keyset computes the same.
TOKEN_LABEL = "csrf-form-token"
# /webhooks/: SendGrid's server posts there, never a browser: no cookie rides along for
# another site to abuse, and each request is signed by SendGrid (``web.webhooks``).
EXEMPT_PREFIXES = ("/api/", "/codec/", "/webhooks/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSED = (
    "This form has expired or did not come from this site. Go back, reload the page and try again."
)
# The first part is the token: its headers and a 43-character value fit many times over.
FIRST_PART_MAX = 16 * 1024
# Set in the request's scope once MultipartCsrf has checked a multipart form's token.
FIRST_PART_CHECKED = "securemail.csrf_checked"
NOT_A_FIELD = ("", "")


def csrf_cookie_name(settings: Settings) -> str:
    return cookie_name(settings, CSRF_COOKIE)


def form_token(keys: PortalKeys, key_id: str, browser: str, staff: str, portal: str) -> str:
    """The token of a browser (its CSRF cookie) in its sessions (their cookies, or "")."""
    parts = (TOKEN_LABEL, browser, staff, portal)
    # Length-prefixed: ("ab", "c") and ("a", "bc") never give the same input.
    message = b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in parts)
    return base64.urlsafe_b64encode(keys.compute(key_id, message, 32)).rstrip(b"=").decode()


def _app_state(request: Request) -> AppState:
    state: AppState = request.app.state.app_state
    return state


def _sessions(request: Request, settings: Settings) -> tuple[str, str]:
    return (
        request.cookies.get(cookie_name(settings, STAFF_COOKIE), ""),
        request.cookies.get(cookie_name(settings, PORTAL_COOKIE), ""),
    )


def csrf_token(request: Request) -> str:
    """The form token for this browser and session; rendering a page calls this. A
    browser without a CSRF cookie gets one (``remember_csrf_token``)."""
    token = getattr(request.state, "csrf_token", None)
    if token:
        return str(token)
    state = _app_state(request)
    browser = request.cookies.get(csrf_cookie_name(state.settings))
    if not browser:
        browser = secrets.token_urlsafe(32)
        request.state.new_csrf_cookie = browser
    keys = state.portal_keys
    token = form_token(keys, keys.current_id, browser, *_sessions(request, state.settings))
    request.state.csrf_token = token
    return token


def remember_csrf_token(request: Request, response: Response) -> None:
    browser = getattr(request.state, "new_csrf_cookie", None)
    if browser:
        settings = _app_state(request).settings
        set_cookie(response, settings, CSRF_COOKIE, browser)


def _matches(request: Request, field: object) -> bool:
    """Whether ``field`` is the token this browser, in these sessions, was given."""
    state = _app_state(request)
    browser = request.cookies.get(csrf_cookie_name(state.settings), "")
    if not browser or not isinstance(field, str) or not field:
        return False
    sessions = _sessions(request, state.settings)
    keys = state.portal_keys
    # Every key, no early exit: the time taken says nothing about which one matched.
    matched = False
    for key_id in keys.ids:
        expected = form_token(keys, key_id, browser, *sessions)
        matched |= hmac.compare_digest(expected.encode(), field.encode("utf-8", "replace"))
    return matched


async def csrf_protect(request: Request) -> None:
    """An app-wide dependency: refuses a browser POST without its form token."""
    if request.method in SAFE_METHODS or request.url.path.startswith(EXEMPT_PREFIXES):
        return
    if request.scope.get(FIRST_PART_CHECKED):
        return
    if _is_multipart(request.headers):
        # Not checked by MultipartCsrf (not installed?): never parse a multipart body
        # before its form is known to be ours.
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=REFUSED)
    form = await request.form()
    if not _matches(request, form.get(CSRF_FIELD)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=REFUSED)


def _is_multipart(headers: Headers) -> bool:
    content_type, _ = parse_options_header(headers.get("content-type", ""))
    return content_type == b"multipart/form-data"


def first_field(prefix: bytes, boundary: bytes) -> tuple[str, str] | None:
    """The name and value of a multipart body's first part, once ``prefix`` holds all of
    it; None while it may still come; ``NOT_A_FIELD`` when it is a file or no part."""
    opening = b"--" + boundary + b"\r\n"
    if len(prefix) < len(opening):
        return None if opening.startswith(prefix) else NOT_A_FIELD
    if not prefix.startswith(opening):
        return NOT_A_FIELD
    headers_end = prefix.find(b"\r\n\r\n", len(opening) - 2)
    if headers_end < 0:
        return None
    value_end = prefix.find(b"\r\n--" + boundary, headers_end + 4)
    if value_end < 0:
        return None
    name = b""
    for line in prefix[len(opening) : headers_end].split(b"\r\n"):
        header, _, value = line.partition(b":")
        if header.strip().lower() == b"content-disposition":
            _, options = parse_options_header(value.strip())
            if b"filename" in options:
                return NOT_A_FIELD
            name = options.get(b"name", b"")
    return name.decode("latin-1"), prefix[headers_end + 4 : value_end].decode("latin-1")


class MultipartCsrf:
    """Checks a multipart form's token on its first part, before the rest is read.

    Reads at most ``FIRST_PART_MAX`` bytes; then hands the app the body from its start,
    as if nothing had been read. A form without the token first is refused, unread.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"  # lifespan and websocket scopes have no headers
            or scope["method"] in SAFE_METHODS
            or scope["path"].startswith(EXEMPT_PREFIXES)
            or not _is_multipart(headers := Headers(scope=scope))
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookie = request.cookies.get(csrf_cookie_name(_app_state(request).settings), "")
        _, options = parse_options_header(headers.get("content-type", ""))
        boundary: bytes = options.get(b"boundary", b"")
        buffered: list[Message] = []
        name, token = NOT_A_FIELD
        if cookie and boundary:
            prefix = b""
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the browser went away; there is nobody to answer
                buffered.append(message)
                prefix += message.get("body", b"")[: FIRST_PART_MAX - len(prefix)]
                field = first_field(prefix, boundary)
                if field is not None:
                    name, token = field
                    break
                if len(prefix) >= FIRST_PART_MAX or not message.get("more_body", False):
                    break  # no whole first part where the token must be
        if name != CSRF_FIELD or not _matches(request, token):
            await _refuse(scope, receive, send)
            return
        scope[FIRST_PART_CHECKED] = True

        async def replayed() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replayed, send)


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    # Imported here: web.templating imports this module for csrf_token.
    from web.templating import render  # noqa: PLC0415

    response = render(Request(scope), "error.html", {"message": REFUSED}, status_code=403)
    # The rest of the body is not wanted: the server may close instead of reading it.
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
