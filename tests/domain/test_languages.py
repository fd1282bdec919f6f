"""The patient's languages: their codes, and Open Dental's mapped onto them."""

from __future__ import annotations

import pytest

from domain.languages import DEFAULT_LANGUAGE, LANGUAGE_CODES, from_open_dental
from infra import i18n


@pytest.mark.parametrize(
    ("open_dental", "language"),
    [
        ("spa", "es"),
        ("SPA", "es"),
        (" spa ", "es"),
        ("eng", "en"),
        ("", "en"),
        (None, "en"),
        ("fra", "en"),  # a language the product does not write in yet: the office's own
        ("es", "en"),  # Open Dental speaks ISO 639-2: two letters are no code of its
    ],
)
def test_from_open_dental(open_dental: str | None, language: str) -> None:
    assert from_open_dental(open_dental) == language


def test_languages_are_those_with_catalogs() -> None:
    # The API's codes, the portal's switch and the catalogs name the same languages.
    assert set(LANGUAGE_CODES) == set(i18n.LANGUAGES)
    assert DEFAULT_LANGUAGE == i18n.DEFAULT_LANGUAGE
