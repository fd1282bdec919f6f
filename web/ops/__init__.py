"""What the platform's operators and orchestrators use: the Temporal UI's codec endpoint,
the operator's page, and the health checks."""

from __future__ import annotations

from fastapi import APIRouter

from web.ops import codec, health, operator

router = APIRouter()
for area in (codec, operator, health):
    router.include_router(area.router)
