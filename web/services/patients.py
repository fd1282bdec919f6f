"""The patient directory as the office pages and ``/api/v1/patients`` both answer it:
what a search's audit event says (R13). Families' messages are in ``web.services.families``.
"""

from __future__ import annotations

from domain.audit import listing_detail
from infra.db.models import Patient


def search_detail(query: str, found: list[Patient]) -> str:
    """What a search's audit event says: whether a query was typed, how many matched and
    their ids; never what was typed."""
    kind = "search" if query.strip() else "directory"
    summary = f"{kind}: {len(found)} {'result' if len(found) == 1 else 'results'}"
    return listing_detail(summary, (patient.id for patient in found))
