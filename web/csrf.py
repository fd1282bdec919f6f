"""CSRF protection for every form: a token in a cookie and the same token in the form.

A page rendered for a browser gets a random token (a cookie, set once) and puts it in a
hidden field of each form; a POST from a browser must carry both, equal. A page of
another site can make a browser send our cookie but cannot read it to fill the field.
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

import hmac
import secrets

from fastapi import HTTPException, Request, Response, status
from python_multipart.multipart import parse_options_header
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "csrf_token"
CSRF_FIELD = "csrf_token"
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


def csrf_cookie_name(request: Request) -> str:
    """``__Host-`` under HTTPS: then no sibling subdomain can plant a token of its choosing
    (the browser takes such a cookie only from this origin, secure, for the whole site)."""
    return f"__Host-{CSRF_COOKIE}" if request.url.scheme == "https" else CSRF_COOKIE


def csrf_token(request: Request) -> str:
    """The browser's token, made on its first page; rendering a page calls this."""
    cookie = request.cookies.get(csrf_cookie_name(request))
    token = getattr(request.state, "csrf_token", None) or cookie
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf_token = token
    request.state.csrf_token = token
    return str(token)


def remember_csrf_token(request: Request, response: Response, *, secure: bool) -> None:
    token = getattr(request.state, "new_csrf_token", None)
    if token:
        response.set_cookie(
            csrf_cookie_name(request), token, httponly=True, samesite="lax", secure=secure
        )


def _matches(cookie: str, field: object) -> bool:
    return (
        bool(cookie)
        and isinstance(field, str)
        and hmac.compare_digest(cookie.encode(), field.encode())
    )


async def csrf_protect(request: Request) -> None:
    """An app-wide dependency: refuses a browser POST without a matching token."""
    if request.method in SAFE_METHODS or request.url.path.startswith(EXEMPT_PREFIXES):
        return
    if request.scope.get(FIRST_PART_CHECKED):
        return
    if _is_multipart(request.headers):
        # Not checked by MultipartCsrf (not installed?): never parse a multipart body
        # before its form is known to be ours.
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=REFUSED)
    form = await request.form()
    if not _matches(request.cookies.get(csrf_cookie_name(request), ""), form.get(CSRF_FIELD)):
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
        cookie = request.cookies.get(csrf_cookie_name(request), "")
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
        if name != CSRF_FIELD or not _matches(cookie, token):
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
