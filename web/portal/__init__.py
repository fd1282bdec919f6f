"""The patient portal (R5-R9): the notice's link, passcode and Verify, then the signed-in
tabs, a message, Reply All and Sign Out; every page in the patient's language."""

from __future__ import annotations

from fastapi import APIRouter

from web.portal import language, link, messages, reply

router = APIRouter()
for area in (link, messages, reply, language):
    router.include_router(area.router)
