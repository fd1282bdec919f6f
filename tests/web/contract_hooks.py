"""Schemathesis hooks for the contract run (``tests/web/test_openapi_contract.py``).

The run acts with one administrator's token: a case that would revoke that token or
deactivate that administrator would end the run's own access, so it is left out.

Schema-valid data must be accepted, except where the document itself says a rule the
schema cannot express may refuse it: a 422 whose every error names a field of the
operation's ``x-business-rules`` (``web.api.responses.business_rules``). Such a case is
checked like any other in all else (status, body and headers as declared).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from schemathesis.checks import CheckContext
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

# What the run must not do to itself: (path, parameter, the variable naming its own id).
SELF_HARM = (
    ("/api/v1/tokens/{token_id}/revoke", "token_id", "CONTRACT_TOKEN_ID"),
    ("/api/v1/staff/{staff_id}/deactivate", "staff_id", "CONTRACT_STAFF_ID"),
)


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case[Any]) -> bool:
    for path, parameter, own in SELF_HARM:
        if case.path == path and (case.path_parameters or {}).get(parameter) == os.environ[own]:
            return False
    return True


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case[Any]) -> Any:
    """A schema-valid send names the patient the run added, so sends get through (201)
    and the stateful phase follows their links to the secure emails they made."""
    meta = case.meta
    valid = meta is not None and meta.generation.mode.is_positive
    if valid and case.path == "/api/v1/secure-emails" and isinstance(case.body, dict):
        if isinstance(case.body.get("patient_id"), str):
            case.body["patient_id"] = os.environ["CONTRACT_PATIENT_ID"]
    return case


def _documented_rule(case: schemathesis.Case[Any], response: schemathesis.Response) -> bool:
    """The refusal names only fields whose rules the operation's 422 declares."""
    declared = case.operation.definition.raw.get("responses", {})
    rules: dict[str, str] = declared.get(str(response.status_code), {}).get("x-business-rules", {})
    try:
        detail: Any = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return False
    if not rules or not isinstance(detail, list) or not detail:
        return False
    # Each error's field: the top-level one of the body (or the header, the query).
    fields = [error.get("loc", [])[1:2] if isinstance(error, dict) else [] for error in detail]
    return all(field and field[0] in rules for field in fields)


@schemathesis.check
def positive_data_acceptance_but_documented_rules(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """``positive_data_acceptance``, but for the refusals the document declares."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if _documented_rule(case, response):
            return True
        raise
