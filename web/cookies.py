"""Our cookies' names and Secure flag: one rule, from the public URL.

When ``SECURE_EMAIL_PUBLIC_URL`` is https, every cookie is ``__Host-`` and Secure: the
browser then takes it only from this exact origin, over TLS, for the whole site, so a
sibling subdomain can neither plant nor shadow it. The request's own scheme is never
asked: behind a TLS proxy that is not in ``SECURE_EMAIL_FORWARDED_ALLOW_IPS`` the app
sees plain http while the browser is on https. A public URL of http (development) gives
the plain names, not Secure.
"""

from __future__ import annotations

from typing import Literal

from starlette.responses import Response

from infra.settings import Settings

STAFF_COOKIE = "staff_session"
PORTAL_COOKIE = "portal_session"
CSRF_COOKIE = "csrf_token"


def cookie_name(settings: Settings, name: str) -> str:
    return f"__Host-{name}" if settings.secure_cookies else name


def set_cookie(
    response: Response,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    samesite: Literal["lax", "strict"] = "lax",
) -> None:
    """One of our cookies: named by ``cookie_name``, for the whole site, never readable by
    scripts, Secure when the public URL is https. Without ``max_age`` it lasts the
    browser's session."""
    response.set_cookie(
        cookie_name(settings, name),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite=samesite,
        secure=settings.secure_cookies,
    )
