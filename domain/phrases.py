"""Words the domain says to people, kept translatable.

A ``Phrase`` is a string: its English, as the API and the office read it. It keeps its
catalog id and values, so a patient's page can show it in the patient's language
(``in_language``); a value that is itself a phrase is translated too.
"""

from __future__ import annotations

from collections.abc import Callable


def N_(message: str) -> str:
    """Marks ``message`` for the catalog (pybabel extracts ``N_``); translated where shown."""
    return message


class Phrase(str):
    msgid: str
    values: dict[str, object]

    def __new__(cls, msgid: str, **values: object) -> Phrase:
        phrase = super().__new__(cls, msgid % values if values else msgid)
        phrase.msgid = msgid
        phrase.values = values
        return phrase

    def in_language(self, gettext: Callable[[str], str]) -> str:
        text = gettext(self.msgid)
        if not self.values:
            return text
        return text % {
            name: value.in_language(gettext) if isinstance(value, Phrase) else value
            for name, value in self.values.items()
        }
