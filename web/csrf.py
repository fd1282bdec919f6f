"""CSRF protection for every form: a token in a cookie and the same token in the form.

A page rendered for a browser gets a random token (a cookie, set once) and puts it in a
hidden field of each form; a POST from a browser must carry both, equal. A page of
another site can make a browser send our cookie but cannot read it to fill the field.
The API (bearer tokens, no cookies) and the codec endpoint (JSON behind CORS) are
outside this.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request, Response, status

CSRF_COOKIE = "csrf_token"
CSRF_FIELD = "csrf_token"
EXEMPT_PREFIXES = ("/api/", "/codec/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSED = (
    "This form has expired or did not come from this site. Go back, reload the page and try again."
)


def csrf_token(request: Request) -> str:
    """The browser's token, made on its first page; rendering a page calls this."""
    token = getattr(request.state, "csrf_token", None) or request.cookies.get(CSRF_COOKIE)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf_token = token
    request.state.csrf_token = token
    return str(token)


def remember_csrf_token(request: Request, response: Response, *, secure: bool) -> None:
    token = getattr(request.state, "new_csrf_token", None)
    if token:
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax", secure=secure)


async def csrf_protect(request: Request) -> None:
    """An app-wide dependency: refuses a browser POST without a matching token."""
    if request.method in SAFE_METHODS or request.url.path.startswith(EXEMPT_PREFIXES):
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    form = await request.form()
    field = form.get(CSRF_FIELD)
    if not cookie or not isinstance(field, str) or not hmac.compare_digest(cookie, field):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=REFUSED)
