"""The OpenAPI document declares ``/api/v1``'s real refusals: 401 on every operation (a
token is always required), and 403 for office administrators on the admin-only ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tests.fixtures.stack import own_settings
from web import api
from web.app import create_app
from web.deps import admin_from_bearer

Operation = tuple[str, str]  # method, path


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(own_settings(tmp_path))  # the document needs no database


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _admin_only() -> set[Operation]:
    """The operations whose token must be an administrator's, from their dependencies."""
    return {
        (method.lower(), api.router.prefix + route.path)
        for area in api.AREAS
        for route in area.router.routes
        if isinstance(route, APIRoute) and admin_from_bearer in _calls(route.dependant)
        for method in route.methods or ()
    }


def _operations(app: FastAPI) -> dict[Operation, dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in item.items()
    }


def _schema_ref(operation: dict[str, Any], code: str) -> str:
    ref: str = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def test_every_api_operation_declares_401_with_a_body(app: FastAPI) -> None:
    operations = _operations(app)
    assert len(operations) >= 8
    missing = [op for op, operation in operations.items() if "401" not in operation["responses"]]
    assert missing == []
    for operation in operations.values():
        assert _schema_ref(operation, "401") == "ErrorDetail"
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


def test_admin_only_operations_declare_403_for_administrators(app: FastAPI) -> None:
    admin_only = _admin_only()
    # Derived from the code, so the check cannot pass by finding none.
    assert {("put", "/api/v1/practice"), ("get", "/api/v1/audit"), ("get", "/api/v1/staff")} <= (
        admin_only
    )
    operations = _operations(app)
    for op in admin_only:
        forbidden = operations[op]["responses"]["403"]
        assert "administrators only" in forbidden["description"].lower(), op
    # The others refuse only an operator's token.
    for op in operations.keys() - admin_only:
        forbidden = operations[op]["responses"]["403"]
        assert "administrators" not in forbidden["description"].lower(), op


def test_bodies_may_be_too_large_and_refusals_take_both_shapes(app: FastAPI) -> None:
    for op, operation in _operations(app).items():
        if "requestBody" in operation:
            assert "413" in operation["responses"], op
            assert "422" in operation["responses"], op
    components = app.openapi()["components"]["schemas"]
    detail = components["Refusal"]["properties"]["detail"]["anyOf"]
    assert {"type": "string"} in detail
    assert {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}} in detail
    assert set(components["FieldError"]["required"]) == {"loc", "msg", "type"}
