"""The embedded stack's first start: a demo practice, an admin user and an API token, and
a platform operator with a token of their own (for the Temporal UI and CLI codec).

The credentials are written to ``.data/dev-credentials.json`` (mode 600) and reused on
every later start, so a restart keeps the same log-in. A file from before operators
existed gets the operator's fields added beside what it holds; an operator token that
has ended (they last 90 days) is replaced by a new one.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.staff import StaffRole
from infra.accounts import (
    create_api_token,
    create_practice,
    create_staff_user,
    find_staff_user,
    token_and_owner,
)
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import StaffUser
from infra.operators import issue_operator_token
from infra.settings import Settings

DEMO_PRACTICE = "Demo Dental"
DEMO_SENDER = "office@demo-dental.example"
DEMO_ADMIN = "admin@demo-dental.example"
DEV_OPERATOR = "operator@securemail.example"
# The operator's token is replaced at a start this close to its end, so a developer's
# session does not lose its codec half-way through.
TOKEN_MARGIN = timedelta(days=1)


class DevCredentials(BaseModel):
    email: str
    password: str
    api_token: str
    operator_email: str = ""
    operator_password: str = ""
    operator_token: str = ""


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / "dev-credentials.json"


async def ensure_demo_practice(settings: Settings) -> DevCredentials:
    path = credentials_path(settings)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as db:
            if path.exists():
                saved = DevCredentials.model_validate_json(path.read_text())
                if await find_staff_user(db, saved.email) is not None:
                    dev_operator = (
                        await find_staff_user(db, saved.operator_email)
                        if saved.operator_email
                        else None
                    )
                    if dev_operator is not None:
                        live = await _token_is_live(db, saved.operator_token)
                        if live or not dev_operator.active:
                            # A revoked operator stays revoked: `securemail operator create`
                            # is how they come back, deliberately.
                            return saved
                        # Its token ended (90 days) or was revoked alone: a new one.
                        token, _ = await issue_operator_token(db, dev_operator)
                        update = {"operator_token": token}
                    else:
                        update = await _dev_operator(db)
                    saved = saved.model_copy(update=update)
                    await db.commit()
                    _write_private(path, saved.model_dump_json(indent=2) + "\n")
                    return saved
            if await db.scalar(select(func.count()).select_from(StaffUser)):
                raise RuntimeError(
                    f"{path} is missing but the database already has staff users; "
                    "restore the file or create a token with `securemail token create`"
                )
            practice = await create_practice(
                db, DEMO_PRACTICE, sender_address=DEMO_SENDER, secure_email_enabled=True
            )
            password = secrets.token_urlsafe(12)
            admin = await create_staff_user(
                db, practice, DEMO_ADMIN, password, name="Office admin", role=StaffRole.ADMIN
            )
            token = await create_api_token(db, admin, "embedded stack")
            operator = await _dev_operator(db)
            await db.commit()
    finally:
        await engine.dispose()
    credentials = DevCredentials(email=DEMO_ADMIN, password=password, api_token=token, **operator)
    _write_private(path, credentials.model_dump_json(indent=2) + "\n")
    return credentials


async def _token_is_live(db: AsyncSession, token: str) -> bool:
    found = await token_and_owner(db, token) if token else None
    if found is None:
        return False
    row, _ = found
    return row.revoked_at is None and (
        row.expires_at is None or row.expires_at > datetime.now(UTC) + TOKEN_MARGIN
    )


async def _dev_operator(db: AsyncSession) -> dict[str, str]:
    password = secrets.token_urlsafe(12)
    operator = await create_staff_user(
        db, None, DEV_OPERATOR, password, name="Platform operator", role=StaffRole.OPERATOR
    )
    token, _ = await issue_operator_token(db, operator)
    return {"operator_email": DEV_OPERATOR, "operator_password": password, "operator_token": token}


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(path, 0o600)
