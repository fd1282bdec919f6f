"""A CSV file's patients imported, as ``POST /api/v1/patients/import`` and the office's
Import page both do it: read the file (``domain.patient_import``), then check and write
its rows within the member of staff's reach (``infra.patient_import``).

One function, so that whatever wraps an import (an ``Idempotency-Key``) wraps it whole.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.patient_import import ImportResult, read_file
from infra.audit import Actor
from infra.db.models import StaffUser
from infra.patient_import import import_rows

COLLIDED = (
    "Another import added some of these patients at the same moment; nothing of this file "
    "was imported. Import it again: its patients are then updated, not added twice."
)


async def import_patients(
    db: AsyncSession,
    staff: StaffUser,
    data: bytes,
    dry_run: bool,
    skip_errors: bool,
    *,
    actor: Actor,
) -> ImportResult:
    """Imports the file's patients; raises ``FileRefused`` for a file that cannot be read
    and ``ImportCollided`` when another import added one of its ids at the same moment."""
    parsed = read_file(data)
    return await import_rows(
        db, staff.reach, parsed, dry_run=dry_run, skip_errors=skip_errors, actor=actor
    )
