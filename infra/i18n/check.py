"""The catalog check `make lint` runs: every string marked for translation is in each
language's catalog, translated, and none of it fuzzy.

``python -m infra.i18n.check`` extracts the marked strings as ``make messages`` does
(``babel.cfg``) and compares them with each ``locales/<language>/LC_MESSAGES/messages.po``;
it prints one line per problem and exits 1 if there is any. The cure is ``make messages``,
then translating what it added (and removing each ``#, fuzzy`` flag once checked).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from infra.i18n import LOCALES_DIR

ROOT = LOCALES_DIR.parent.parent.parent
Key = tuple[str, str | None]  # a message's id and context


def marked(root: Path, config: Path) -> set[Key]:
    """The strings marked for translation under ``root``, as ``config`` says to look."""
    with config.open(encoding="utf-8") as mapping:
        method_map, options_map = parse_mapping_cfg(mapping, str(config))  # type: ignore[no-untyped-call]
    found: set[Key] = set()
    for _filename, _line, message, _comments, context in extract_from_dir(
        str(root), method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple | list) else message
        if msgid:
            found.add((msgid, context))
    return found


def _read(po: Path) -> Catalog:
    with po.open("rb") as file:
        return read_po(file)


def problems(strings: Iterable[Key], po: Path) -> list[str]:
    """What ``po`` lacks: a marked string it does not have, an entry not translated (a
    plural form left empty counts), an entry still fuzzy."""
    catalog = _read(po)
    found: list[str] = []
    for msgid, context in sorted(strings, key=lambda key: (key[0], key[1] or "")):
        if catalog.get(msgid, context) is None:
            found.append(f"{po}: not in the catalog (run `make messages`): {msgid!r}")
    for message in catalog:
        if not message.id:
            continue  # the header
        msgid = message.id[0] if isinstance(message.id, tuple | list) else message.id
        translated = (
            message.string if isinstance(message.string, tuple | list) else [message.string]
        )
        if message.fuzzy:
            found.append(f"{po}: fuzzy (check it, then remove the flag): {msgid!r}")
        elif not all(translated):
            found.append(f"{po}: not translated: {msgid!r}")
    return found


def check(root: Path = ROOT, config: Path | None = None, locales: Path | None = None) -> list[str]:
    """Every catalog under ``locales`` against the strings marked under ``root``."""
    strings = marked(root, config or root / "babel.cfg")
    catalogs = sorted((locales or root / "infra/i18n/locales").glob("*/LC_MESSAGES/messages.po"))
    return [problem for po in catalogs for problem in problems(strings, po)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository to extract from")
    arguments = parser.parse_args(argv)
    found = check(arguments.root)
    for problem in found:
        print(problem, file=sys.stderr)  # noqa: T201 - a command's report
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
