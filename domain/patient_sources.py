"""Where a patient of the directory came from, when not added by hand: the systems a
practice already keeps its patients in. A patient from a source is matched again by its
id there (``external_id``), so importing or syncing twice changes nothing."""

from __future__ import annotations

from enum import StrEnum


class PatientSource(StrEnum):
    # A CSV file from any practice-management system; ``external_id`` is the file's.
    CSV = "csv"
    # Open Dental's API; ``external_id`` is the patient's PatNum.
    OPEN_DENTAL = "open_dental"
