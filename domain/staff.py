"""Who works in Secure Email, and what each role may do (DESIGN §1).

Practice staff are admins (settings, staff, tokens, audit) or clerks (patients, sending,
replies, chart), and see only their own practice. Operators are the platform's own
people: they belong to no practice, never use the office pages, and are the only ones
who may decode Temporal payloads.
"""

from __future__ import annotations

from enum import StrEnum


class StaffRole(StrEnum):
    ADMIN = "admin"
    CLERK = "clerk"
    OPERATOR = "operator"
