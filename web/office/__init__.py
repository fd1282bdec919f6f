"""The office's pages (staff in a browser): log-in, Main Menu and its live alerts, the
patient directory, Send Secure, the Email Client, charts, settings, staff, tokens, audit."""

from __future__ import annotations

from fastapi import APIRouter

from web.office import (
    alerts,
    audit,
    auth,
    chart,
    clinics,
    email_client,
    integrations,
    menu,
    patient_import,
    patients,
    secure_emails,
    settings,
    staff,
    tokens,
)

router = APIRouter()
for area in (
    auth,
    menu,
    patient_import,
    patients,
    settings,
    clinics,
    integrations,
    secure_emails,
    audit,
    alerts,
    email_client,
    chart,
    staff,
    tokens,
):
    router.include_router(area.router)
