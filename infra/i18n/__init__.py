"""The patient's language: message catalogs and moments written the way a reader expects.

Catalogs live in ``infra/i18n/locales/<language>/LC_MESSAGES/messages.po`` and are compiled
to ``.mo`` at install (never committed). A language without a compiled catalog falls back
to the English the code is written in, so nothing breaks before ``pybabel compile``.

Office pages stay English; patient mails and portal pages follow the patient's
``language``. Add a language: ``pybabel init -l xx``, translate, add it to ``LANGUAGES``
and to ``domain.languages.Language``; ``make lint`` checks the catalogs (``infra.i18n.check``).
"""

from __future__ import annotations

import gettext
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime
from babel.support import Translations

LOCALES_DIR = Path(__file__).resolve().parent / "locales"

# Each language a patient may be written to in, named in itself (the portal's switch).
LANGUAGES: dict[str, str] = {"en": "English", "es": "Español"}
DEFAULT_LANGUAGE = "en"
# The Babel locale each language formats dates and numbers in; the office's pages use
# the first (its dates read "Dec 6, 2026, 10:14 AM EST").
_LOCALES = {"en": "en_US", "es": "es"}


def supported(language: str | None) -> str:
    """``language`` if the product speaks it, else the default."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog for ``language`` (English, the source, needs none)."""
    language = supported(language)
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    return Translations.load(str(LOCALES_DIR), [language], domain="messages")


@cache
def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        # A zone this machine does not know still shows a time, honestly labelled UTC.
        return ZoneInfo("UTC")


@cache
def _pattern(language: str) -> str:
    # The locale's medium date and short time joined its own way, then the zone.
    locale = Locale.parse(_LOCALES[supported(language)])
    date = locale.date_formats["medium"].pattern
    time = locale.time_formats["short"].pattern
    return str(locale.datetime_formats["medium"]).replace("{1}", date).replace("{0}", time + " z")


def moment_text(moment: datetime, language: str, zone: str | None) -> str:
    """``moment`` in ``zone`` (the practice's, R16), written for a reader of ``language``:
    "Dec 6, 2026, 10:14 AM EST"; "6 dic 2026, 10:14 -0500"."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(
        moment,
        _pattern(language),
        tzinfo=_zone(zone),
        locale=_LOCALES[supported(language)],
    )
