"""Partial updates: a field left out keeps its value; a field given must hold one."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import field_validator


def _refuse_null(value: object) -> object:
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


def not_null_when_given(*fields: str) -> Callable[[object], object]:
    """The validator of a partial update's fields that cannot be erased: leaving such a
    field out keeps it, while null would read as "erase", which none of them allows, so
    null is refused. In a model: ``_given_means_a_value = not_null_when_given("name")``."""
    return field_validator(*fields, mode="before")(_refuse_null)
