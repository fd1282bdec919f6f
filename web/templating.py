"""Jinja2 templates and the helpers every page uses.

Portal pages are written in the patient's language (``web.languages``): ``render`` hands
each one the words of that language as ``gettext``/``ngettext``/``_`` in its context,
which is where Jinja's i18n extension looks for them. The environment itself is shared
with the office's pages and keeps English (null translations) as its globals, so no
request's language can reach another's page or an office page.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from pydantic import ValidationError

from infra.i18n import LANGUAGES, moment_text, translations
from web.csrf import csrf_token, remember_csrf_token
from web.languages import portal_language

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.add_extension("jinja2.ext.i18n")
# "Newstyle": ``{% trans %}`` and ``_()`` escape what they interpolate, and format with
# named values (``_("Sent %(when)s", when=...)``). English for every page by default.
templates.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]

# The office's language: its one way of writing a moment, "Dec 6, 2026, 10:14 AM EST".
OFFICE_LANGUAGE = "en"


def moment_in(moment: datetime, zone: object) -> str:
    """``moment`` as the office reads it, in the practice's zone (R16): the words of every
    office page, the live alerts included. ``zone`` is an IANA name; anything else (a page
    rendered without one) shows UTC."""
    return moment_text(moment, OFFICE_LANGUAGE, zone if isinstance(zone, str) else None)


def time_element(moment: datetime, shown: str) -> Markup:
    """``shown`` inside ``<time>`` whose ``datetime`` is ``moment``'s UTC instant."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Markup('<time datetime="{}">{}</time>').format(moment.astimezone(UTC).isoformat(), shown)


def local_time(moment: datetime, zone: object) -> Markup:
    """``moment`` in the practice's time zone (R16), written the office's one way."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return time_element(moment, moment_in(moment, zone))


templates.env.globals["local_time"] = local_time


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    context = {"csrf_token": csrf_token(request), **(context or {})}
    if _portal_request(request):
        template, context = _portal_page(request, template, context)
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    remember_csrf_token(request, response)
    return response


# Pages under these paths are the patient's; their error pages are the portal's too.
PORTAL_PATHS = ("/m/", "/portal")
# The shared pages a portal path may answer with, and the portal's own version of each.
PORTAL_VERSIONS = {"error.html": "portal/error.html", "too_large.html": "portal/too_large.html"}
# The words other modules pass to portal pages (``web.portal.borrowed_words``).
TRANSLATED_KEYS = ("message", "reason")


def _portal_request(request: Request) -> bool:
    return request.url.path.startswith(PORTAL_PATHS)


def _portal_page(
    request: Request, template: str, context: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    language = portal_language(request)
    words = translations(language)
    template = PORTAL_VERSIONS.get(template, template)
    # What a shared page or handler says (``web.errors``) is English from elsewhere:
    # shown in the patient's language when the catalog has it.
    context = {
        **context,
        **{
            key: words.gettext(context[key])
            for key in TRANSLATED_KEYS
            if isinstance(context.get(key), str)
        },
    }
    return template, {
        **gettext_callables(words),
        "language": language,
        "languages": LANGUAGES,
        "back": page_to_return_to(request),
        "moment": _moment_in(language),
        **context,
    }


def page_to_return_to(request: Request) -> str:
    """Where the language switch brings the patient back to: this page, or for a form
    just posted the page that form is on (its path with GET shows it again)."""
    path = request.url.path
    if request.method in ("GET", "HEAD"):
        query = request.url.query
        return f"{path}?{query}" if query else path
    if path.startswith("/m/") and path.endswith(("/passcode", "/verify")):
        # A passcode request is made from the link's page; Verify from the passcode page.
        return (
            path.removesuffix("/passcode")
            if path.endswith("/passcode")
            else (path.removesuffix("/verify") + "/passcode")
        )
    return path


def _moment_in(language: str) -> Callable[[datetime, object], Markup]:
    def moment(when: datetime, zone: object) -> Markup:
        """``when`` in the practice's zone (R16), the way a reader of the page's language
        writes it, inside ``<time>`` whose ``datetime`` is the UTC instant."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        zone_name = zone if isinstance(zone, str) else None
        return time_element(when, moment_text(when, language, zone_name))

    return moment


def gettext_callables(words: gettext.NullTranslations) -> dict[str, Any]:
    """``gettext``, ``ngettext`` and ``_`` of ``words`` the way Jinja's i18n extension
    calls them in newstyle: escaped when the page is, formatted with named values."""

    @pass_context
    def gettext_(context: Context, message: str, **values: Any) -> str:
        text = words.gettext(message)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % values

    @pass_context
    def ngettext_(context: Context, singular: str, plural: str, num: int, **values: Any) -> str:
        values.setdefault("num", num)
        text = words.ngettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % values

    return {"gettext": gettext_, "ngettext": ngettext_, "_": gettext_}


def form_errors(error: ValidationError, own: Mapping[str, str] | None = None) -> dict[str, str]:
    """One message per form field, worded for the person at the desk: a field's ``own``
    words (its range, its choices) where a page has them, else the general ones."""
    messages: dict[str, str] = {}
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "form"
        if field not in messages:
            messages[field] = (own or {}).get(field) or _friendly(field, item)
    return messages


def _friendly(field: str, item: Any) -> str:
    kind = item.get("type", "")
    label = field.replace("_", " ").capitalize()
    if kind in ("string_too_short", "missing"):
        return f"{label} is required"
    if field in ("email", "sender_address") or "email" in kind:
        return f"{label}: enter a valid email address, like name@example.com"
    if kind in ("enum", "literal_error"):
        return f"{label}: choose one of the listed options"
    return f"{label}: {item.get('msg', 'invalid value')}"
