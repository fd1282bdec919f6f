"""The reconciliation of the database with Temporal: what its workflow carries and reports.

Every few minutes a Temporal Schedule runs it (``infra.reconciliation_schedule``): an
open secure email whose workflow Temporal does not have gets it back (the resume step),
and one whose workflow ended before the message did (terminated, failed, timed out,
cancelled) is marked failed, with a timeline line, one office alert and an audit event.
Ids and counts only.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

RECONCILE_WORKFLOW = "Reconcile"
# Found in the Temporal UI beside the secure emails; one per task queue (a deployment).
SCHEDULE_PREFIX = "reconcile-secure-emails"

# Secure emails acted on per run (resumed or marked failed); the rest wait for the next.
DEFAULT_PAGE = 200


def schedule_id_for(task_queue: str) -> str:
    """The schedule's id, and its runs' (Temporal adds each run's start time)."""
    return f"{SCHEDULE_PREFIX}-{task_queue}"


class ReconcileRun(BaseModel):
    """One run's bounds: how many secure emails it acts on at most."""

    page: int = Field(default=DEFAULT_PAGE, ge=1)


class ReconcileReport(BaseModel):
    """What one run found and did, by secure email id."""

    # Open in the database, no workflow in Temporal: started again.
    resumed: list[str] = []
    # Open in the database, workflow ended before the message did: marked failed.
    stopped: list[str] = []
    # Open, no workflow, and it cannot be started again (named in the worker's log).
    not_resumable: list[str] = []
    # Open in the database, its workflow completed: left alone (never marked failed).
    completed: list[str] = []
    # Found beyond this run's page: the next run takes them.
    left: int = 0
