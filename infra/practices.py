"""Reading and changing a practice's Secure Email settings (R1, R8)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.practice import PracticeRuleError, PracticeUpdate, check_practice
from infra.db.models import Practice
from infra.mail.factory import sender_is_verified
from infra.settings import Settings

UNVERIFIED_SENDER = (
    "This sender address is not verified with the mail service. Verify it in SendGrid "
    "and add it to SECURE_EMAIL_SENDGRID_VERIFIED_SENDERS first."
)


async def update_practice(
    db: AsyncSession, practice: Practice, change: PracticeUpdate, settings: Settings
) -> Practice:
    """Applies a partial update, or raises ``PracticeRuleError`` and changes nothing."""
    values = change.model_dump(exclude_unset=True)
    if "sender_address" in values and values["sender_address"] is not None:
        values["sender_address"] = str(values["sender_address"])
    merged_enabled = values.get("secure_email_enabled", practice.secure_email_enabled)
    merged_sender = values.get("sender_address", practice.sender_address)
    check_practice(bool(merged_enabled), merged_sender)
    if merged_sender and not sender_is_verified(merged_sender, settings):
        # Caught now, not at the first notice SendGrid would refuse.
        raise PracticeRuleError("sender_address", UNVERIFIED_SENDER)
    for name, value in values.items():
        if value is not None or name == "sender_address":
            setattr(practice, name, value)
    await db.commit()
    return practice
