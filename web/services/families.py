"""Families as the office pages and ``/api/v1/patients`` both answer them: what a refused
guarantor or an address already in use is told, and the confirmation the office reads
before a patient joins a family at a shared address.
"""

from __future__ import annotations

from fastapi import status

from infra.db.models import Patient
from infra.directory import GuarantorProblem

# Over the API, an address in use is shared only with consent (``infra.directory``).
ADDRESS_IN_USE = (
    "Another patient of the practice already has this address. Whoever reads a mailbox "
    "can read every secure email sent to it, so sharing it needs consent: to join that "
    "patient's family, give guarantor_id (the id of a patient at this address, or of their "
    'guarantor); or send "share_address": true.'
)
# On the office's pages, beside the confirmation.
ADDRESS_IN_USE_PAGE = (
    "This address is already used by another patient: join the family or use another address."
)

GUARANTOR_REFUSED = {
    GuarantorProblem.NOT_FOUND: "The guarantor must be another patient of this practice",
    GuarantorProblem.SELF: "A patient cannot be their own guarantor",
    GuarantorProblem.CYCLE: (
        "This guarantor's own chain of guarantors leads back to this patient; "
        "a family's chain must end"
    ),
}
GUARANTOR_STATUS = {
    GuarantorProblem.NOT_FOUND: status.HTTP_422_UNPROCESSABLE_CONTENT,
    GuarantorProblem.SELF: status.HTTP_422_UNPROCESSABLE_CONTENT,
    GuarantorProblem.CYCLE: status.HTTP_409_CONFLICT,
}


def names(patients: list[Patient]) -> str:
    """ "John Smith", "John Smith and Jane Smith", "A, B and C"."""
    listed = [patient.name for patient in patients]
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} and {listed[-1]}"
