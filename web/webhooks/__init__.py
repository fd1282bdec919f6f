"""Webhooks: what other services post to us, each signed by its sender (no cookies, no
staff sign-in, no CSRF form token: ``web.csrf`` exempts ``/webhooks/``)."""

from __future__ import annotations

from fastapi import APIRouter

from web.webhooks import sendgrid

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
router.include_router(sendgrid.router)
