"""The catalog check of `make lint` (``infra.i18n.check``) on a small project of its own:
each kind of problem is found, and a complete catalog passes."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from infra.i18n.check import check, main

CONFIG = """\
[python: app/**.py]
[jinja2: app/templates/**.html]
extensions = jinja2.ext.i18n
"""


def project(
    tmp_path: Path, entries: dict[str, str], *, fuzzy: frozenset[str] = frozenset()
) -> Path:
    """A project whose code marks "Inbox" (Python) and "Sent" (a template), and a
    Spanish catalog of ``entries``."""
    (tmp_path / "babel.cfg").write_text(CONFIG)
    (tmp_path / "app/templates").mkdir(parents=True)
    (tmp_path / "app/pages.py").write_text('_ = str\nTITLE = _("Inbox")\n')
    (tmp_path / "app/templates/page.html").write_text('<p>{{ _("Sent") }}</p>\n')
    catalog = Catalog(locale="es")
    for msgid, msgstr in entries.items():
        catalog.add(msgid, msgstr, flags={"fuzzy"} if msgid in fuzzy else ())
    po = tmp_path / "infra/i18n/locales/es/LC_MESSAGES/messages.po"
    po.parent.mkdir(parents=True)
    with po.open("wb") as file:
        write_po(file, catalog)
    return tmp_path


def test_complete_catalog_passes(tmp_path: Path) -> None:
    root = project(tmp_path, {"Inbox": "Bandeja de entrada", "Sent": "Enviados"})
    assert check(root) == []
    assert main(["--root", str(root)]) == 0


def test_string_missing_from_the_catalog_fails(tmp_path: Path) -> None:
    root = project(tmp_path, {"Inbox": "Bandeja de entrada"})
    [problem] = check(root)
    assert "not in the catalog" in problem and "'Sent'" in problem


def test_untranslated_entry_fails(tmp_path: Path) -> None:
    root = project(tmp_path, {"Inbox": "Bandeja de entrada", "Sent": ""})
    [problem] = check(root)
    assert "not translated" in problem and "'Sent'" in problem


def test_fuzzy_entry_fails(tmp_path: Path) -> None:
    root = project(tmp_path, {"Inbox": "Bandeja", "Sent": "Enviados"}, fuzzy=frozenset({"Inbox"}))
    [problem] = check(root)
    assert "fuzzy" in problem and "'Inbox'" in problem


def test_untranslated_plural_form_fails(tmp_path: Path) -> None:
    root = project(tmp_path, {"Inbox": "Bandeja de entrada", "Sent": "Enviados"})
    (root / "app/count.py").write_text(
        'from gettext import ngettext\nngettext("%(num)d file", "%(num)d files", 2)\n'
    )
    po = root / "infra/i18n/locales/es/LC_MESSAGES/messages.po"
    catalog = Catalog(locale="es")
    for msgid, msgstr in {"Inbox": "Bandeja de entrada", "Sent": "Enviados"}.items():
        catalog.add(msgid, msgstr)
    catalog.add(("%(num)d file", "%(num)d files"), ("%(num)d archivo", ""))
    with po.open("wb") as file:
        write_po(file, catalog)
    [problem] = check(root)
    assert "not translated" in problem and "%(num)d file" in problem


def test_command_reports_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path, {})
    assert main(["--root", str(root)]) == 1
    report = capsys.readouterr().err
    assert "'Inbox'" in report and "'Sent'" in report


def test_project_catalogs_are_complete() -> None:
    # What `make lint` runs: the product's own catalogs hold every portal string.
    assert check() == []
