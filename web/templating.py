"""Jinja2 templates and the helpers every page uses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError

from infra.i18n import moment_text
from web.csrf import csrf_token, remember_csrf_token

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

# The office's language: its one way of writing a moment, "Dec 6, 2026, 10:14 AM EST".
OFFICE_LANGUAGE = "en"


def moment_in(moment: datetime, zone: object) -> str:
    """``moment`` as the office reads it, in the practice's zone (R16): the words of every
    office page, the live alerts included. ``zone`` is an IANA name; anything else (a page
    rendered without one) shows UTC."""
    return moment_text(moment, OFFICE_LANGUAGE, zone if isinstance(zone, str) else None)


def local_time(moment: datetime, zone: object, fmt: str | None = None) -> Markup:
    """``moment`` in the practice's time zone (R16) inside ``<time>`` whose ``datetime`` is
    the UTC instant, written the office's one way (``moment_in``).

    ``fmt`` (a strftime pattern) is for the portal's pages alone, which write dates in the
    patient's words; office pages never pass it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    instant = moment.astimezone(UTC).isoformat()
    if fmt is None:
        shown = moment_in(moment, zone)
    else:
        shown = moment.astimezone(_portal_zone(zone)).strftime(fmt)
    return Markup('<time datetime="{}">{}</time>').format(instant, escape(shown))


def _portal_zone(zone: object) -> ZoneInfo:
    try:
        return ZoneInfo(zone if isinstance(zone, str) and zone else "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        # A zone this machine does not know still shows a time, honestly labelled UTC.
        return ZoneInfo("UTC")


templates.env.globals["local_time"] = local_time


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    context = {"csrf_token": csrf_token(request), **(context or {})}
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    remember_csrf_token(request, response)
    return response


def form_errors(error: ValidationError) -> dict[str, str]:
    """One message per form field, worded for the person at the desk."""
    messages: dict[str, str] = {}
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "form"
        messages.setdefault(field, _friendly(field, item))
    return messages


def _friendly(field: str, item: Any) -> str:
    kind = item.get("type", "")
    label = field.replace("_", " ").capitalize()
    if kind in ("string_too_short", "missing"):
        return f"{label} is required"
    if field in ("email", "sender_address") or "email" in kind:
        return f"{label}: enter a valid email address, like name@example.com"
    if kind == "enum":
        return f"{label}: choose one of the listed options"
    return f"{label}: {item.get('msg', 'invalid value')}"
