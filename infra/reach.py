"""A staff member's reach (``domain.reach``) as SQL: the conditions on ``Patient`` that
keep a query to the patients they may see. Every office read joins the patient and adds
these, so a patient out of reach finds nothing, as another practice's does."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_

from domain.reach import Reach
from infra.db.models import Patient


def within(reach: Reach) -> list[ColumnElement[bool]]:
    """The patient is the practice's and within reach."""
    conditions: list[ColumnElement[bool]] = [Patient.practice_id == reach.practice_id]
    if not reach.restricted:
        return conditions
    allowed: list[ColumnElement[bool]] = []
    if reach.clinic_ids is None:
        allowed.append(Patient.clinic_id.is_not(None))
    elif reach.clinic_ids:
        allowed.append(Patient.clinic_id.in_(sorted(reach.clinic_ids)))
    if reach.unassigned:
        allowed.append(Patient.clinic_id.is_(None))
    conditions.append(or_(*allowed) if allowed else false())
    return conditions
