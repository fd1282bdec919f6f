"""``/api/v1/tokens``: API tokens for practice software, for office administrators.

A token is shown once when made; only its hash is kept, and no list shows either.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from domain.api_tokens import NewToken, TokenCreate, TokenList, TokenPublic
from infra.accounts import practice_tokens
from web.api.responses import (
    ADMINS_ONLY,
    INVALID,
    JSON_BODY,
    NOT_FOUND,
    business_rules,
    declared,
)
from web.deps import ApiAdmin, DbSession
from web.errors import field_error
from web.services.tokens import (
    TokenRefused,
    create_token_for,
    practice_token_of,
    public,
    revoke_audited,
)

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=ADMINS_ONLY)


@router.get("")
async def list_tokens(db: DbSession, admin: ApiAdmin) -> TokenList:
    rows = await practice_tokens(db, admin.practice_id)
    return TokenList(items=[public(token, owner) for token, owner in rows])


RULES = business_rules(
    expires_at="in the future", staff_id="an active member of this practice's staff"
)


@router.post("", status_code=status.HTTP_201_CREATED, responses=declared(JSON_BODY, RULES))
async def create_token(
    request: Request, db: DbSession, admin: ApiAdmin, new: TokenCreate
) -> NewToken:
    try:
        token, row, owner = await create_token_for(
            request, db, admin, new.label.strip() or "API token", new.staff_id, new.expires_at
        )
    except TokenRefused as error:
        raise field_error(error.field, error.message) from error
    return NewToken(**public(row, owner).model_dump(), token=token)


@router.post("/{token_id}/revoke", responses=declared(NOT_FOUND, INVALID))
async def revoke(request: Request, db: DbSession, admin: ApiAdmin, token_id: str) -> TokenPublic:
    token, owner = await practice_token_of(db, admin, token_id)
    await revoke_audited(request, db, admin, token)
    return public(token, owner)
