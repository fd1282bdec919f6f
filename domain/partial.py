"""Partial updates: a field left out keeps its value; a field given must hold one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, field_validator

from domain.strict import STRICT_BODY


def _refuse_null(value: object) -> object:
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


def not_null_when_given(*fields: str) -> Callable[[object], object]:
    """The validator of a partial update's fields that cannot be erased: leaving such a
    field out keeps it, while null would read as "erase", which none of them allows, so
    null is refused. In a model: ``_given_means_a_value = not_null_when_given("name")``,
    with ``model_config = PARTIAL_BODY`` so its schema says the same."""
    return field_validator(*fields, mode="before")(_refuse_null)


def _not_null_in_schema(schema: dict[str, Any], model: type) -> None:
    """The schema of a model's fields that ``not_null_when_given`` guards: optional, but
    not nullable (the ``null`` branch and the ``null`` default dropped)."""
    decorators: Any = getattr(model, "__pydantic_decorators__", None)
    guarded = {
        field
        for validator in (decorators.field_validators.values() if decorators else ())
        if getattr(validator.func, "__func__", validator.func) is _refuse_null
        for field in validator.info.fields
    }
    for name, field in schema.get("properties", {}).items():
        if name not in guarded:
            continue
        field.pop("default", None)
        branches = [b for b in field.pop("anyOf", []) if b != {"type": "null"}]
        if len(branches) == 1:
            field.update(branches[0])
        elif branches:
            field["anyOf"] = branches


# A partial update's body: strict, and its schema says which fields may not be null.
PARTIAL_BODY = ConfigDict(**STRICT_BODY, json_schema_extra=_not_null_in_schema)
