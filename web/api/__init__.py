"""``/api/v1``: the same actions as the office pages, for practice software (DESIGN §4),
one router module per area; ``/docs`` describes them."""

from __future__ import annotations

from fastapi import APIRouter

from web.api import alerts, audit, chart, patients, practice, secure_emails, staff, tokens

router = APIRouter(prefix="/api/v1")
for area in (practice, patients, secure_emails, audit, alerts, chart, staff, tokens):
    router.include_router(area.router)
