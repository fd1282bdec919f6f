"""The reply page names the allowed files in words derived from the allowed types: every
allowed type has a kind, and a type added without one is still named (by itself)."""

from __future__ import annotations

from domain.attachments import ALLOWED_EXTENSIONS
from web.portal.file_kinds import KIND_OF_EXTENSION, allowed_kinds


def test_every_allowed_type_has_a_kind() -> None:
    assert set(ALLOWED_EXTENSIONS) <= set(KIND_OF_EXTENSION)
    assert allowed_kinds() == ["photo", "pdf", "word", "text"]


def test_kinds_follow_the_allowed_types() -> None:
    assert allowed_kinds({"png", "txt"}) == ["photo", "text"]
    assert allowed_kinds({"pdf", "heic"}) == ["pdf", "heic"]
