"""Properties of the domain rules, for any input a browser or an API client can send.

The example tests in ``test_attachments.py`` pin known cases; these let Hypothesis look
for the inputs nobody thought of (odd Unicode, separators, bytes that almost match).
"""

from __future__ import annotations

import string
import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st

from domain.addresses import normalise_address, same_address
from domain.attachments import (
    _SIGNATURES,
    ALLOWED_EXTENSIONS,
    MAX_FILENAME_BYTES,
    check_attachment_start,
    extension_of,
    safe_filename,
)
from domain.passcodes import PASSCODE_DIGITS, clean_passcode

# Every kind whose content is recognised by its first bytes, and a name of that kind.
SIGNED = {
    "png": "png",
    "pdf": "pdf",
    "gif": "gif",
    "jpeg": "jpg",
    "bmp": "bmp",
    "tiff": "tif",
    "ico": "ico",
    "cur": "cur",
    "docx": "docx",
}

# Names as they arrive from browsers and API clients: any text, with the characters
# that matter for paths and extensions made likely.
tricky_names = st.lists(
    st.one_of(
        st.sampled_from(["/", "\\", ".", "..", " ", ":", "\x00", "\u202e", "CON", "a", "é"]),
        st.text(max_size=8),
    ),
    max_size=40,
).map("".join)


# Attachments: file names ---------------------------------------------------------------


@given(tricky_names)
@example("../../etc/passwd")
@example("..\\..\\boot.ini")
@example("....")
@example("con.txt")
def test_safe_filename_never_yields_a_path(name: str) -> None:
    safe = safe_filename(name)
    assert safe
    assert "/" not in safe and "\\" not in safe
    assert safe not in {".", ".."} and not safe.startswith(".")
    assert not safe.endswith((".", " "))
    assert len(safe.encode()) <= MAX_FILENAME_BYTES
    assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in safe)


@given(tricky_names)
def test_safe_filename_is_idempotent_for_any_name(name: str) -> None:
    once = safe_filename(name)
    assert safe_filename(once) == once


@given(
    stem=tricky_names,
    extension=st.sampled_from(sorted(ALLOWED_EXTENSIONS)),
    upper=st.booleans(),
)
def test_safe_filename_keeps_allowed_extension(stem: str, extension: str, upper: bool) -> None:
    typed = extension.upper() if upper else extension
    safe = safe_filename(f"{stem}.{typed}")
    assert safe.endswith(f".{typed}")
    assert extension_of(safe) == extension


# Attachments: content against extension -------------------------------------------------


@given(filename=tricky_names, head=st.binary(max_size=512))
def test_check_attachment_start_never_raises(filename: str, head: bytes) -> None:
    reason = check_attachment_start(filename, head)
    assert reason is None or (isinstance(reason, str) and reason)


@given(head=st.binary(min_size=1, max_size=512))
def test_check_attachment_start_refuses_random_bytes_named_png(head: bytes) -> None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return
    assert check_attachment_start("x-ray.png", head) is not None


@given(kind=st.sampled_from(sorted(SIGNED)), data=st.data())
def test_check_attachment_start_matches_signature(kind: str, data: st.DataObject) -> None:
    signature = data.draw(st.sampled_from(_SIGNATURES[kind]))
    rest = data.draw(st.binary(max_size=256))
    filename = f"scan.{SIGNED[kind]}"
    assert check_attachment_start(filename, signature + rest) is None
    other = data.draw(st.binary(min_size=1, max_size=256))
    if not other.startswith(_SIGNATURES[kind]):
        assert check_attachment_start(filename, other) is not None


# Addresses ------------------------------------------------------------------------------


emailish = st.from_regex(
    r"[A-Za-z0-9._%+-]{1,20}@[A-Za-z0-9-]{1,15}\.[A-Za-z]{2,6}", fullmatch=True
)
padding = st.text(alphabet=" \t\n\r", max_size=3)


@given(st.text())
def test_normalise_address_is_idempotent(address: str) -> None:
    once = normalise_address(address)
    assert normalise_address(once) == once


@given(address=emailish, before=padding, after=padding, flips=st.lists(st.booleans()))
def test_same_address_ignores_case_and_padding(
    address: str, before: str, after: str, flips: list[bool]
) -> None:
    changed = "".join(
        ch.swapcase() if flips and flips[i % len(flips)] else ch for i, ch in enumerate(address)
    )
    assert same_address(address, f"{before}{changed}{after}")
    assert same_address(f"{before}{changed}{after}", address)


@given(st.text(), st.text())
def test_same_address_is_symmetric(a: str, b: str) -> None:
    assert same_address(a, b) == same_address(b, a)
    assert same_address(a, a)


@given(a=emailish, b=emailish)
def test_different_mailboxes_are_not_the_same_address(a: str, b: str) -> None:
    if a.lower() != b.lower():
        assert not same_address(a, b)


# Passcodes ------------------------------------------------------------------------------


separators = st.text(alphabet=" -\t\u00a0\u2010\u2013\u2014\u2212", max_size=2)


@given(digits=st.text(alphabet=string.digits, min_size=8, max_size=8), gaps=st.data())
def test_clean_passcode_accepts_eight_digits_with_spaces_and_dashes(
    digits: str, gaps: st.DataObject
) -> None:
    typed = "".join(gaps.draw(separators) + digit for digit in digits) + gaps.draw(separators)
    assert clean_passcode(typed) == digits


@given(digits=st.text(alphabet=string.digits, max_size=16))
def test_clean_passcode_refuses_other_lengths(digits: str) -> None:
    if len(digits) != PASSCODE_DIGITS:
        assert clean_passcode(digits) is None


@given(st.text(max_size=24))
@example("１２３４５６７８")  # fullwidth digits, as a Japanese or Chinese keyboard types them
@example("١٢٣٤٥٦٧٨")  # Arabic-Indic digits
def test_clean_passcode_yields_ascii_digits_or_nothing(typed: str) -> None:
    cleaned = clean_passcode(typed)
    if cleaned is not None:
        assert len(cleaned) == PASSCODE_DIGITS
        assert all(ch in string.digits for ch in cleaned), cleaned


def test_clean_passcode_reads_digits_of_other_scripts_as_ascii() -> None:
    assert clean_passcode("１２３４ ５６７８") == "12345678"
    assert clean_passcode("١٢٣٤-٥٦٧٨") == "12345678"
