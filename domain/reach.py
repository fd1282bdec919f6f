"""Which of a practice's patients a member of staff may see and write to (R19).

Staff may be restricted to some of the practice's clinics: they then work with the
patients of those clinics and the patients of no clinic, and everything of every other
patient (messages, replies, files, alerts) is answered as another practice's would be,
404. Staff without a restriction, and every practice without clinics, reach every patient.

Each office read takes a ``Reach`` rather than a practice id, so no read can forget it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reach:
    practice_id: str
    # None: every clinic. Otherwise only these clinics' patients...
    clinic_ids: frozenset[str] | None = None
    # ...and, unless a filter narrowed it to one clinic, the patients of no clinic.
    unassigned: bool = True

    @property
    def restricted(self) -> bool:
        return self.clinic_ids is not None or not self.unassigned

    def covers(self, clinic_id: str | None) -> bool:
        """Whether a patient of this clinic (None: of no clinic) is within reach."""
        if clinic_id is None:
            return self.unassigned
        return self.clinic_ids is None or clinic_id in self.clinic_ids

    def includes(self, other: Reach) -> bool:
        """Whether every patient ``other`` reaches is within this reach: a member of staff
        restricted to clinics gives and manages no reach wider than their own."""
        if self.clinic_ids is None:
            return self.unassigned or not other.unassigned
        return (
            other.clinic_ids is not None
            and other.clinic_ids <= self.clinic_ids
            and (self.unassigned or not other.unassigned)
        )

    def narrowed_to(self, clinic_id: str | None) -> Reach:
        """Only the patients of one clinic (a list's clinic filter): nobody when that
        clinic is out of reach. None leaves the reach as it is."""
        if clinic_id is None:
            return self
        inside = frozenset({clinic_id}) if self.covers(clinic_id) else frozenset()
        return Reach(self.practice_id, inside, unassigned=False)
