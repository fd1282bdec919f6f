"""What only the legacy workflow needs of the activities: its HOTP passcodes, and the
reply text its histories carry in the payload."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.legacy import passcode_for, written_in_payload
from domain.passcodes import PASSCODE_DIGITS, clean_passcode
from domain.secure_email import ReplySubmitted, ReplyToRecord

# pyotp refuses secrets under 112 bits; the product makes 160-bit ones (32 characters).
base32_secrets = st.sampled_from([24, 32, 40]).flatmap(
    lambda size: st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=size, max_size=size)
)

# ``record_reply``'s input as a version-1 history holds it (tests/workflows/histories/
# lifecycle-002.json), with a file added.
RECORDED = (
    '{"secure_email_id":"e21b0a0b","reply":{"reply_id":"reply-1","subject":"RE: results",'
    '"body":"Thanks","attachments":[{"attachment_id":"a1","object_key":"k/a1",'
    '"filename":"x-ray.png","size":3,"content_type":"image/png","sha256":"'
    + "0" * 64
    + '"}],"client_address":null},"sent_at":"2026-11-25T19:43:05.237000Z"}'
)


@given(secret=base32_secrets, counter=st.integers(min_value=0, max_value=2**40))
def test_passcode_for_is_eight_digits_and_deterministic(secret: str, counter: int) -> None:
    code = passcode_for(secret, counter)
    assert len(code) == PASSCODE_DIGITS and all(ch in string.digits for ch in code)
    assert passcode_for(secret, counter) == code
    assert clean_passcode(code) == code


def _through_temporal(recording: ReplyToRecord) -> ReplyToRecord:
    """As the activity receives it: encoded by the workflow, decoded by the worker."""
    converter = pydantic_data_converter.payload_converter
    (payload,) = converter.to_payloads([recording])
    (decoded,) = converter.from_payloads([payload], [ReplyToRecord])
    assert isinstance(decoded, ReplyToRecord)
    return decoded


def test_written_in_payload_reads_a_recorded_reply() -> None:
    recording = ReplyToRecord.model_validate_json(RECORDED)
    # The legacy workflow hands its update's reply on to the activity as it came.
    written = written_in_payload(_through_temporal(recording).reply)
    assert written is not None
    assert (written.subject, written.body) == ("RE: results", "Thanks")
    assert [(f.attachment_id, f.filename) for f in written.files] == [("a1", "x-ray.png")]


def test_written_in_payload_none_for_a_reply_by_id() -> None:
    recording = ReplyToRecord.model_validate_json(RECORDED)
    by_id = recording.model_copy(update={"reply": ReplySubmitted(reply_id="reply-1")})
    assert written_in_payload(_through_temporal(by_id).reply) is None
    # Histories of the current workflow carry blank leftovers of earlier shapes.
    blank = ReplySubmitted.model_validate(
        {"reply_id": "reply-1", "subject": "", "body": "", "attachments": []}
    )
    assert written_in_payload(blank) is None
