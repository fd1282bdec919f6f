"""The Audit page's words for each action (``domain.audit.ACTION_PHRASES``)."""

from __future__ import annotations

from domain.audit import ACTION_PHRASES, AuditAction, phrase_of


def test_every_action_has_its_own_phrase() -> None:
    assert set(ACTION_PHRASES) == set(AuditAction)
    phrases = list(ACTION_PHRASES.values())
    assert all(phrase.strip() == phrase and phrase for phrase in phrases)
    # Two alike would be one choice twice in the page's action filter.
    assert len(set(phrases)) == len(phrases)


def test_phrase_of_a_stored_code() -> None:
    assert phrase_of("office.patient_search") == "searched patients"
    assert phrase_of("secure_email.send") == "sent a secure email"
    # A code this version does not know is shown as stored, never an error.
    assert phrase_of("office.something_newer") == "office.something_newer"
