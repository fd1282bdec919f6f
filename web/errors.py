"""Refusals in the shape FastAPI gives validation errors, so clients parse one format."""

from __future__ import annotations

from fastapi import HTTPException, status


def field_errors(
    errors: dict[str, str], code: int = status.HTTP_422_UNPROCESSABLE_CONTENT
) -> HTTPException:
    return HTTPException(
        code,
        detail=[
            {"loc": ["body", field], "msg": message, "type": "value_error"}
            for field, message in errors.items()
        ],
    )


def field_error(
    field: str, message: str, code: int = status.HTTP_422_UNPROCESSABLE_CONTENT
) -> HTTPException:
    return field_errors({field: message}, code)
