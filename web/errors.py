"""How the app answers what went wrong: refusals, and Temporal or the object store failing.

Refusals are in the shape FastAPI gives validation errors, so clients parse one format.

Failures of Temporal (unreachable, an RPC error) and of the object store (down, a file
that will not open) are not caught route by route: they reach ``failure`` below, the one
handler, which answers 503 in words. A route whose page must come back whole (a form with
what was typed) names that page first with ``on_unavailable``; otherwise a browser gets
the error page and ``/api/`` callers JSON ``{"detail": ...}``. The database's lock waits
and pool timeouts reach ``busy``: 503 with Retry-After, never a 500, under a burst (R17);
a database that cannot be reached (restarting) reaches ``database_down``: 503 with
Retry-After too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from temporalio.service import RPCError

from infra.accounts import StaffRuleError
from infra.db.models import Practice
from infra.objects.interface import ObjectUnreadable, StoreUnavailable
from web.deps import MustChangePassword, NotOfficeStaff, NotSignedIn, TemporalUnavailable
from web.services.sending import Rule
from web.templating import render

# How a Send Secure the rules refused is answered, page or API: sending switched off in
# the practice's settings (R1) is a conflict; a field or file a rule refuses (R2-R4, R9)
# is invalid.
SEND_REFUSED_STATUS = {
    Rule.NOT_ENABLED: status.HTTP_409_CONFLICT,
    Rule.INVALID: status.HTTP_422_UNPROCESSABLE_CONTENT,
}

# The message for a failure when the route chose none.
TEMPORAL_DOWN = "Secure Email is unavailable right now. Please try again in a few minutes."
STORE_DOWN = "Files cannot be downloaded right now. Please try again in a few minutes."
UNREADABLE = "This file cannot be opened. Please contact the office."
DATABASE_BUSY = "Secure Email is busy right now. Please try again in a few seconds."
# Seconds a client is told to wait when the database was busy: a lock wait or a pool
# checkout has just run out, so the burst that caused it is likely still going.
BUSY_RETRY_AFTER = 5

# What the database being busy arrives as: SQLite's "database is locked" (its lock
# wait ran out) and the like (OperationalError), and no pooled connection free in time.
DATABASE_BUSY_ERRORS: tuple[type[Exception], ...] = (OperationalError, PoolTimeout)
# What the database being unreachable arrives as: a connection refused or reset (the
# driver's OSError, unwrapped when connecting), or a pooled connection found closed
# mid-request (``DBAPIError`` marked ``connection_invalidated``).
DATABASE_DOWN_ERRORS: tuple[type[Exception], ...] = (OSError, DBAPIError)
# Seconds a client is told to wait when the database could not be reached: a restart
# takes a few seconds to a minute.
DOWN_RETRY_AFTER = 15

# What "Temporal cannot be reached" arrives as.
TEMPORAL_FAILURES: tuple[type[Exception], ...] = (RPCError, TemporalUnavailable)

# The page to answer with instead, given the message to show.
PageAgain = Callable[[str], Awaitable[Response]]


def field_errors(
    errors: dict[str, str],
    code: int = status.HTTP_422_UNPROCESSABLE_CONTENT,
    where: str = "body",
) -> HTTPException:
    """A refusal of ``errors``' fields, each with its message; ``where`` the request holds
    them (``body``, or ``query`` for a query string's)."""
    return HTTPException(
        code,
        detail=[
            {"loc": [where, field], "msg": message, "type": "value_error"}
            for field, message in errors.items()
        ],
    )


def field_error(
    field: str, message: str, code: int = status.HTTP_422_UNPROCESSABLE_CONTENT
) -> HTTPException:
    return field_errors({field: message}, code)


def on_unavailable(request: Request, page: PageAgain, message: str = TEMPORAL_DOWN) -> None:
    """From here on, a failure of Temporal or the object store answers ``page(message)``."""
    request.state.page_again = (page, message)


def on_refusal(request: Request, page: PageAgain) -> None:
    """From here on, a change the rules refuse (``StaffRuleError``) answers ``page(message)``
    instead of the error page: the form the change came from, saying why."""
    request.state.refused_page = page


class PortalSignedOut(Exception):
    """No live portal session; the app answers with the signed-out page."""


class MessageClosed(Exception):
    """The secure email asked for has expired (R8), the office withdrew it (R15), or it
    failed (its workflow stopped before its end): the app answers with the page that
    says so."""

    def __init__(
        self, practice: Practice, expires_at: datetime, *, withdrawn: bool, failed: bool = False
    ) -> None:
        super().__init__("withdrawn" if withdrawn else "failed" if failed else "expired")
        self.practice = practice
        self.expires_at = expires_at
        self.withdrawn = withdrawn
        self.failed = failed


def closed_page(
    request: Request,
    practice: Practice,
    expires_at: datetime,
    *,
    withdrawn: bool,
    failed: bool = False,
) -> Response:
    """When the message expired, or that its practice withdrew it, or that it can no
    longer be opened, and whom to ask; nothing of the message itself (410 Gone in every
    case)."""
    return render(
        request,
        "portal/expired.html",
        {"practice": practice, "expires_at": expires_at, "withdrawn": withdrawn, "failed": failed},
        status_code=status.HTTP_410_GONE,
    )


async def _message_closed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MessageClosed)
    return closed_page(
        request, exc.practice, exc.expires_at, withdrawn=exc.withdrawn, failed=exc.failed
    )


def _message_for(error: Exception) -> str:
    if isinstance(error, ObjectUnreadable):
        # Altered in storage, or sealed under a key this server no longer has: never
        # served, and said plainly.
        return UNREADABLE
    if isinstance(error, StoreUnavailable):
        return STORE_DOWN
    return TEMPORAL_DOWN


async def failure(request: Request, error: Exception) -> Response:
    """Temporal or the object store failed: 503, in the caller's format, with a message."""
    chosen: tuple[PageAgain, str] | None = getattr(request.state, "page_again", None)
    if chosen is not None and not isinstance(error, ObjectUnreadable):
        page, message = chosen
        return await page(message)
    message = _message_for(error)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": message}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return render(
        request, "error.html", {"message": message}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE
    )


async def busy(request: Request, _error: Exception) -> Response:
    """The database is busy: 503 with Retry-After, in the caller's format, with a message; the
    route's own page when it named one (what was typed comes back), if that page can be
    made without the database."""
    return await _try_again_later(request, DATABASE_BUSY, BUSY_RETRY_AFTER)


async def database_down(request: Request, error: Exception) -> Response:
    """The database cannot be reached (restarting, stopped, the network): 503 with
    Retry-After, as ``busy``, never a 500. A connection lost mid-request arrives as the
    driver's error wrapped by SQLAlchemy, marked as a disconnect; any other database error
    is a fault, and stays one."""
    if isinstance(error, DBAPIError) and not error.connection_invalidated:
        if isinstance(error, DATABASE_BUSY_ERRORS):
            return await busy(request, error)
        raise error
    return await _try_again_later(request, TEMPORAL_DOWN, DOWN_RETRY_AFTER)


async def _try_again_later(request: Request, message: str, retry_after: int) -> Response:
    response: Response | None = None
    chosen: tuple[PageAgain, str] | None = getattr(request.state, "page_again", None)
    if chosen is not None:
        page, _message = chosen
        try:
            response = await page(message)
        except (SQLAlchemyError, OSError):
            response = None
    if response is None and request.url.path.startswith("/api/"):
        response = JSONResponse({"detail": message})
    if response is None:
        response = render(request, "error.html", {"message": message})
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    response.headers["Retry-After"] = str(retry_after)
    return response


async def _refused(request: Request, exc: Exception) -> Response:
    """A staff change the rules refuse: 409, as a field's error on the API when the rule
    names one, on the page the route named, or on the error page."""
    assert isinstance(exc, StaffRuleError)
    if request.url.path.startswith("/api/"):
        conflict = (
            field_error(exc.field, exc.message, status.HTTP_409_CONFLICT)
            if exc.field is not None
            else HTTPException(status.HTTP_409_CONFLICT, detail=exc.message)
        )
        return await http_exception_handler(request, conflict)
    page: PageAgain | None = getattr(request.state, "refused_page", None)
    if page is not None:
        return await page(exc.message)
    return render(
        request, "error.html", {"message": exc.message}, status_code=status.HTTP_409_CONFLICT
    )


# The methods an Allow header may name: those the app's routes are declared with.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method the request's path answers (RFC 9110 §10.2.1), asked of all the
    app's routes: the framework names only those of the first route whose path matched."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
    return ", ".join(allowed)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        exc.headers = {**(exc.headers or {}), "Allow": allowed_methods(request)}
    # The API answers JSON; people in a browser get a page in words.
    if request.url.path.startswith("/api/") or not isinstance(exc.detail, str):
        return await http_exception_handler(request, exc)
    page = render(request, "error.html", {"message": exc.detail}, status_code=exc.status_code)
    page.headers.update(exc.headers or {})
    return page


def _redirect(to: str) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handler(_request: Request, _exc: Exception) -> Response:
        return RedirectResponse(to, status_code=status.HTTP_303_SEE_OTHER)

    return handler


async def _portal_signed_out(request: Request, _exc: Exception) -> Response:
    return render(
        request,
        "portal/signed_out.html",
        {"reason": "Your secure session has ended."},
        status_code=status.HTTP_401_UNAUTHORIZED,
    )


def install(app: FastAPI) -> None:
    """Every exception handler of the app."""
    app.add_exception_handler(NotSignedIn, _redirect("/login"))
    app.add_exception_handler(MustChangePassword, _redirect("/change-password"))
    app.add_exception_handler(NotOfficeStaff, _redirect("/operator"))
    app.add_exception_handler(PortalSignedOut, _portal_signed_out)
    app.add_exception_handler(MessageClosed, _message_closed)
    app.add_exception_handler(StaffRuleError, _refused)
    for failed in (*TEMPORAL_FAILURES, StoreUnavailable, ObjectUnreadable):
        app.add_exception_handler(failed, failure)
    for busy_error in DATABASE_BUSY_ERRORS:
        app.add_exception_handler(busy_error, busy)
    for down_error in DATABASE_DOWN_ERRORS:
        app.add_exception_handler(down_error, database_down)
    app.add_exception_handler(StarletteHTTPException, _http_error)
