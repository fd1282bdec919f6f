"""``/api/v1``: the same actions as the office pages, for practice software (DESIGN §4),
one router module per area; ``/docs`` describes them."""

from __future__ import annotations

from fastapi import APIRouter

from web.api import (
    alerts,
    audit,
    chart,
    clinics,
    integrations,
    patient_import,
    patients,
    practice,
    secure_emails,
    staff,
    tokens,
)
from web.api.responses import TOKEN_REFUSED

# Every operation refuses a missing, unknown, revoked or expired token, and an operator's.
router = APIRouter(prefix="/api/v1", responses=TOKEN_REFUSED)
# patient_import before patients: "/patients/import" is not a patient's id.
AREAS = (
    practice,
    clinics,
    patient_import,
    patients,
    secure_emails,
    audit,
    alerts,
    chart,
    staff,
    tokens,
    integrations,
)
for area in AREAS:
    router.include_router(area.router)
