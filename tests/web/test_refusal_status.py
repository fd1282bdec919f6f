"""A workflow's refusal answers with the status its reason calls for: a limit 429 with
Retry-After (R17), a message that is over 410, a full conversation 409."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain import errors
from web.portal.refusals import RefusalStatus, refusal_status


def refused(kind: str, *details: object) -> WorkflowUpdateFailedError:
    return WorkflowUpdateFailedError(ApplicationError("for operators", *details, type=kind))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (refused(errors.TOO_MANY_PASSCODES, 12), RefusalStatus(429, 720)),
        (refused(errors.TOO_MANY_REPLIES, errors.REPLIES_HOURLY, 3), RefusalStatus(429, 180)),
        (refused(errors.TOO_MANY_PASSCODES), RefusalStatus(429, 3600)),
        (refused(errors.TOO_MANY_REPLIES, errors.REPLIES_TOTAL), RefusalStatus(409)),
        (refused(errors.EXPIRED), RefusalStatus(410)),
        (refused(errors.WITHDRAWN), RefusalStatus(410)),
        (refused(errors.FAILED), RefusalStatus(409)),
        (refused("SomethingNew"), RefusalStatus(503)),
        (WorkflowUpdateFailedError(RuntimeError("not an application error")), RefusalStatus(503)),
    ],
)
def test_refusal_answers_with_its_status(
    error: WorkflowUpdateFailedError, expected: RefusalStatus
) -> None:
    assert refusal_status(error) == expected


def test_only_a_limit_says_when_to_retry() -> None:
    assert refusal_status(refused(errors.TOO_MANY_PASSCODES, 2)).headers() == {"Retry-After": "120"}
    assert refusal_status(refused(errors.EXPIRED)).headers() == {}
