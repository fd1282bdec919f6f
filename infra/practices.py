"""Reading and changing a practice's Secure Email settings (R1, R8)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.practice import PracticeUpdate, check_practice
from infra.db.models import Practice


async def update_practice(db: AsyncSession, practice: Practice, change: PracticeUpdate) -> Practice:
    """Applies a partial update, or raises ``PracticeRuleError`` and changes nothing."""
    values = change.model_dump(exclude_unset=True)
    if "sender_address" in values and values["sender_address"] is not None:
        values["sender_address"] = str(values["sender_address"])
    merged_enabled = values.get("secure_email_enabled", practice.secure_email_enabled)
    merged_sender = values.get("sender_address", practice.sender_address)
    check_practice(bool(merged_enabled), merged_sender)
    for name, value in values.items():
        if value is not None or name == "sender_address":
            setattr(practice, name, value)
    await db.commit()
    return practice
