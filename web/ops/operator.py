"""The operator's page: which practices exist, and where their workflows are.

Operators are the platform's own people (DESIGN §1): they see no patient, message or
chart, only practices, and reach workflows through the Temporal UI, whose payloads they
alone may decode (``web.ops.codec``).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse

from infra.practices import all_practices
from web.deps import CurrentAccount, DbSession, SettingsDep
from web.templating import render

router = APIRouter(tags=["operator"], include_in_schema=False)


@router.get("/operator")
async def operator_home(
    request: Request, db: DbSession, settings: SettingsDep, account: CurrentAccount
) -> HTMLResponse:
    if not account.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="This page is for operators")
    practices = await all_practices(db)
    return render(
        request,
        "operator/home.html",
        {
            "operator": account,
            "practices": practices,
            "temporal_ui": settings.temporal_ui_origin,
            "namespace": settings.temporal_namespace,
            "codec_endpoint": settings.codec_endpoint,
        },
    )
