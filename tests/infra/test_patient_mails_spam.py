"""Each patient mail, as the SMTP transport sends it, scores under 1.0 in SpamAssassin.

Debian's ``spamassassin`` (``make spamassassin``) with ``-L``: local rules only, no
network, no Bayes. One process per mail (each takes a few seconds to load its rules).
English mails go with everything a practice can set; Spanish ones with the logo alone,
the fewest words beside an image (what SpamAssassin's image rules look at).
"""

from __future__ import annotations

import asyncio
import re
import shutil

import pytest

from infra.mail.patient_mails import Practice
from tests.fixtures.mail import png_image
from tests.infra.test_patient_mails import MAILS, as_sent, branded, practice

MAX_SCORE = 1.0
SPAMASSASSIN = shutil.which("spamassassin")
STATUS = re.compile(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", re.MULTILINE)
REPORT = re.compile(r"Content analysis details:.*", re.DOTALL)

# Loading the rules takes a few seconds a process; a hung one fails, not the suite.
pytestmark = pytest.mark.timeout(60)


def dressed(language: str) -> Practice:
    if language == "en":
        return branded()
    return practice(logo=png_image(), logo_type="image/png")


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("mail", list(MAILS))
async def test_patient_mail_not_spam(mail: str, language: str) -> None:
    if SPAMASSASSIN is None:
        pytest.fail("spamassassin is missing: `make test` installs Debian's spamassassin")
    raw = bytes(as_sent(MAILS[mail](dressed(language), language)))
    process = await asyncio.create_subprocess_exec(
        SPAMASSASSIN,
        "-L",
        "-t",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(raw)
    report = out.decode("utf-8", "replace")
    status = STATUS.search(report)
    assert status is not None, f"no score from spamassassin: {err.decode()[-500:]}"
    found = REPORT.search(report)
    rules = found.group(0) if found else report
    assert float(status.group(1)) < MAX_SCORE, f"{mail} ({language}) scored:\n{rules}"
