"""Which language a portal page is written in, and the words of that language.

In order: the language the patient chose with the portal's switch (a cookie, kept for
the browser's session), else the patient's own ``language`` once the page knows the
patient (the link's, or the signed-in session's: ``web.portal.deps`` notes it on the
request), else the first of the browser's Accept-Language the product speaks, else
English. Office pages stay English and never ask.
"""

from __future__ import annotations

import gettext

from fastapi import Request, Response

from infra.i18n import DEFAULT_LANGUAGE, LANGUAGES, translations
from infra.settings import Settings
from web.cookies import cookie_name, set_cookie
from web.state import AppState

LANGUAGE_COOKIE = "portal_language"
# The browser's preferences are read from at most this many entries: a header is not a
# place to spend time on.
MAX_PREFERENCES = 20


def N_(message: str) -> str:
    """Marks ``message`` for the catalog where it is defined (pybabel extracts ``N_``);
    it is translated where it is shown."""
    return message


def language_cookie_name(settings: Settings) -> str:
    return cookie_name(settings, LANGUAGE_COOKIE)


def note_patient_language(request: Request, language: str) -> None:
    """The page is about this patient: their language, unless they chose another."""
    request.state.patient_language = language


def accepted_language(header: str) -> str | None:
    """The product's language the browser prefers most (``Accept-Language``, RFC 9110:
    ``es-MX,es;q=0.9,en;q=0.8``), or None when it names none of them."""
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(header.split(",")[:MAX_PREFERENCES]):
        tag, _, params = item.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if language not in LANGUAGES or not 0 < quality <= 1:
            continue
        # Highest quality first; among equals, the one the browser named first.
        candidate = (-quality, position, language)
        if best is None or candidate < best:
            best = candidate
    return best[2] if best else None


def portal_language(request: Request) -> str:
    """The language of this portal request (see the module's docstring)."""
    state: AppState = request.app.state.app_state
    chosen = request.cookies.get(language_cookie_name(state.settings))
    if chosen in LANGUAGES:
        return str(chosen)
    patient = getattr(request.state, "patient_language", None)
    if patient in LANGUAGES:
        return str(patient)
    return accepted_language(request.headers.get("accept-language", "")) or DEFAULT_LANGUAGE


def translator(request: Request) -> gettext.NullTranslations:
    """The catalog of this portal request's language, for words written in Python."""
    return translations(portal_language(request))


def remember_choice(response: Response, settings: Settings, language: str) -> None:
    """The switch's choice, for the rest of the browser's session (no expiry)."""
    set_cookie(response, settings, LANGUAGE_COOKIE, language)
