"""The portal's language switch ("English | Español" on every portal page).

A form posted with its token (``web.csrf``), so another site cannot change a patient's
language; the choice is a cookie for the browser's session (``web.languages``), and the
patient comes back to the page they were on. Nothing about the patient is in it.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, status
from fastapi.responses import RedirectResponse

from infra.i18n import LANGUAGES, supported
from web.deps import SettingsDep
from web.languages import remember_choice

router = APIRouter(tags=["portal"], include_in_schema=False)

# The portal's own pages, with their query: nowhere else (no other site, no office page)
# can be reached through the switch.
_PORTAL_PAGE = re.compile(r"/(portal(/[A-Za-z0-9_/-]*)?|m/[A-Za-z0-9_-]+(/passcode)?)(\?[^#\s]*)?")
FIRST_PAGE = "/portal"


def page_back(back: str) -> str:
    """``back`` if it is a portal page, else the Inbox (which asks to sign in if need be)."""
    return back if _PORTAL_PAGE.fullmatch(back) else FIRST_PAGE


@router.post("/portal/language")
async def choose_language(
    settings: SettingsDep,
    language: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    response = RedirectResponse(page_back(back), status_code=status.HTTP_303_SEE_OTHER)
    if language in LANGUAGES:
        remember_choice(response, settings, supported(language))
    return response
