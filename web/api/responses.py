"""The error answers ``/api/v1`` operations declare in OpenAPI, in one place.

Each is what the code really answers (``web.deps``, ``web.errors``, ``web.body_limits``);
a router or an operation combines the ones it can give with ``declared``. The token's
refusals (401, and 403 for an operator's token) are declared once, on ``/api/v1`` itself,
so every operation has them, new ones too.
"""

from __future__ import annotations

from typing import Any

from fastapi import status
from pydantic import BaseModel, ConfigDict

Responses = dict[int | str, dict[str, Any]]


class ErrorDetail(BaseModel):
    """A refusal in words."""

    detail: str


class FieldError(BaseModel):
    """One field's refusal, in the shape of FastAPI's validation errors (which may carry
    more, such as ``input``)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class Refusal(BaseModel):
    """A refusal in words, or field by field (``web.errors.field_errors``)."""

    detail: str | list[FieldError]


def _answer(description: str, model: type[BaseModel] = ErrorDetail) -> dict[str, Any]:
    return {"description": description, "model": model}


UNAUTHORISED: Responses = {
    status.HTTP_401_UNAUTHORIZED: {
        **_answer("No API token, or one that is unknown, revoked or expired"),
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    }
}
NOT_FOR_OPERATORS: Responses = {
    status.HTTP_403_FORBIDDEN: _answer(
        "An operator's token: operators belong to no practice, this API is for practice software"
    )
}
# What every operation answers before it runs: on the /api/v1 router.
TOKEN_REFUSED: Responses = {**UNAUTHORISED, **NOT_FOR_OPERATORS}
ADMINS_ONLY: Responses = {
    status.HTTP_403_FORBIDDEN: _answer(
        "Office administrators only (the token's owner is a clerk), or an operator's token"
    )
}
NOT_FOUND: Responses = {status.HTTP_404_NOT_FOUND: _answer("Nothing of that id in this practice")}
CONFLICT: Responses = {
    status.HTTP_409_CONFLICT: _answer(
        "Refused by the practice's rules; nothing was changed", Refusal
    )
}


def conflict(why: str) -> Responses:
    """A 409 saying when the operation gives it: a state of the practice or of what it
    names that refuses the request (the schema cannot say), in words or field by field."""
    return {status.HTTP_409_CONFLICT: _answer(f"Refused by the practice's rules: {why}", Refusal)}


TOO_LARGE: Responses = {
    status.HTTP_413_CONTENT_TOO_LARGE: _answer(
        "The request body is larger than the operation takes, and was not read"
    )
}
INVALID: Responses = {
    status.HTTP_422_UNPROCESSABLE_CONTENT: _answer(
        "Refused, field by field; nothing was changed", Refusal
    )
}
# A body: it may be refused as too large or as invalid.
WITH_BODY: Responses = {**TOO_LARGE, **INVALID}
UNPARSEABLE: Responses = {
    status.HTTP_400_BAD_REQUEST: _answer("The body is not JSON (FastAPI could not parse it)")
}
# A JSON body: it may also be bytes that are not JSON at all.
JSON_BODY: Responses = {**UNPARSEABLE, **WITH_BODY}
SERVICE_DOWN: Responses = {
    status.HTTP_503_SERVICE_UNAVAILABLE: _answer(
        "Temporal or the object store cannot be reached (or a file cannot be opened); "
        "try again later",
        Refusal,
    )
}


# Where a 422 names the rules the schema cannot express (an OpenAPI extension): each
# field a request can satisfy the schema in and still break a rule, and the rule.
BUSINESS_RULES = "x-business-rules"


def business_rules(**rules: str) -> Responses:
    """The 422 of an operation whose fields can be schema-valid and still refused by the
    practice's rules (``rules``: each field and its rule, in words): field by field, in
    the shape of every refusal, the rules listed in its description and, for tools, in
    ``x-business-rules``. Anything else refused is a field the schema already rules out."""
    listed = "; ".join(f"`{field}`: {rule}" for field, rule in rules.items())
    return {
        status.HTTP_422_UNPROCESSABLE_CONTENT: {
            **_answer(
                "Refused, per field; nothing was changed. Besides what the schema says, "
                f"the practice's rules: {listed}",
                Refusal,
            ),
            BUSINESS_RULES: rules,
        }
    }


# Rules several areas share.
RESERVED_DOMAIN = (
    "an address that can receive mail: one at a reserved or special-use domain (such as "
    "`.test`, `.local`, `localhost`) is refused"
)
PHONE_RULE = "7 to 20 digits"
TIME_ZONE_RULE = "a zone the server's tz database has"
ADDRESS_RULE = "at most 300 characters once trimmed, each one a page can show"
SENDER_RULE = (
    "needed while Secure Email is on, and verified with the mail service when it sends "
    "through SendGrid"
)


def declared(*groups: Responses) -> Responses:
    """The answers of ``groups`` together; a later group's description wins."""
    combined: Responses = {}
    for group in groups:
        combined.update(group)
    return combined


def with_address(**rules: str) -> Responses:
    """The refusals of an operation whose JSON body gives an email address (a patient's,
    a member of staff's): 409 for an address someone of the practice already has (or
    another rule of the practice), 422 for one at a reserved domain and for ``rules``."""
    return declared(JSON_BODY, CONFLICT, business_rules(email=RESERVED_DOMAIN, **rules))


# What an operation that takes an ``Idempotency-Key`` (web.services.idempotency) adds.
KEY_REFUSED = "; or its Idempotency-Key: not 1 to 255 printable ASCII, or used for another request"
KEY_IN_USE = (
    "the first request with its Idempotency-Key is still running (Retry-After: ask again "
    "then) or was interrupted; nothing more was done"
)
KEY_RULE = "not used for another request in the last 24 hours"
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before asking again (a first request still running)",
        "schema": {"type": "integer"},
    }
}


def with_idempotency_key(responses: Responses) -> Responses:
    """``responses`` with what an ``Idempotency-Key`` adds: its 422 (the key refused, or
    used for another request) and its 409 (the key's first request has not answered),
    each said in the description of the operation's own 422 and 409 (or added)."""
    combined = {code: dict(answer) for code, answer in responses.items()}
    invalid = combined.setdefault(
        status.HTTP_422_UNPROCESSABLE_CONTENT, _answer("Refused; nothing was changed", Refusal)
    )
    invalid["description"] += KEY_REFUSED
    invalid[BUSINESS_RULES] = {**invalid.get(BUSINESS_RULES, {}), "Idempotency-Key": KEY_RULE}
    conflict = combined.get(status.HTTP_409_CONFLICT)
    if conflict is None:
        combined[status.HTTP_409_CONFLICT] = {
            **_answer(KEY_IN_USE[0].upper() + KEY_IN_USE[1:], Refusal),
            "headers": RETRY_AFTER,
        }
    else:
        conflict["description"] += f"; or {KEY_IN_USE}"
        conflict["headers"] = {**conflict.get("headers", {}), **RETRY_AFTER}
    return combined
