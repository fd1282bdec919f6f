"""API tokens for practice software, as ``/api/v1/tokens`` and the Tokens page show them.

A token acts as the staff member it belongs to, with their role. It is shown once when
made (``NewToken``); only its hash is kept, and no list shows either.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.staff import PRINTABLE
from domain.strict import STRICT_BODY, IsoDateTime


class TokenCreate(BaseModel):
    model_config = STRICT_BODY

    label: str = Field(
        min_length=1, max_length=200, pattern=PRINTABLE, description="What the token is for"
    )
    expires_at: IsoDateTime | None = Field(default=None, description="UTC; none for no expiry")
    staff_id: str | None = Field(
        default=None,
        description="The staff member the token acts as (their role applies); you if left out",
    )


class TokenPublic(BaseModel):
    """What a list shows: never the token or its hash."""

    id: str
    label: str
    staff_id: str
    owner: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    state: str = Field(description="`active`, `expired` or `revoked`")


class TokenList(BaseModel):
    items: list[TokenPublic]


class NewToken(TokenPublic):
    token: str = Field(description="Shown this once; only its hash is kept")
