"""What the emails a patient receives may say: the notice (and its reminder) and the
passcode.

Neither carries the subject, the body or a file name (R5): those may be PHI, and email
travels in the clear. The notice names the practice, links to the portal and says when
the message expires; the passcode email says how long the code is valid (R6). Their
words are templates (``infra.mail.patient_mails``); the link is the domain's.
"""

from __future__ import annotations


def portal_link(public_url: str, link_token: str) -> str:
    return f"{public_url}/m/{link_token}"
