"""Re-encryption under the current primary keys: what the workflow carries and reports.

Ids, table names and counts only: nothing a patient wrote.
"""

from __future__ import annotations

from pydantic import BaseModel

REENCRYPT_WORKFLOW_ID = "keys-reencrypt"
# Rows (or objects' rows) rewritten per activity: one transaction each.
DEFAULT_BATCH = 200


class ReencryptStep(BaseModel):
    """One table's encrypted fields (``kind`` "fields") or the objects a table names
    (``kind`` "objects"), with how far the pass has come."""

    kind: str
    table: str
    after_id: str = ""
    total: int | None = None
    seen: int = 0
    rewritten: int = 0
    current: int = 0
    missing: int = 0
    done: bool = False


class ReencryptProgress(BaseModel):
    steps: list[ReencryptStep]
    batch: int = DEFAULT_BATCH

    @property
    def finished(self) -> bool:
        return all(step.done for step in self.steps)

    @property
    def rewritten(self) -> int:
        return sum(step.rewritten for step in self.steps)


class ReencryptPage(BaseModel):
    """What one activity did with one page of a step."""

    last_id: str
    seen: int
    rewritten: int
    current: int
    missing: int
    done: bool
