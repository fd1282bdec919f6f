"""The OpenAPI document says what ``/api/v1`` enforces: what a schema can express as
schema, the rest as the 422 each operation declares with its rules (``x-business-rules``).
The schemathesis run (``test_openapi_contract``) holds the server to it; these pin the
declarations an integrator's generated client depends on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from domain.audit import AuditAction
from tests.fixtures.stack import own_settings
from web.app import create_app


@pytest.fixture
def document(tmp_path: Path) -> dict[str, Any]:
    app: FastAPI = create_app(own_settings(tmp_path))  # the document needs no database
    return app.openapi()


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _parameter(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    (parameter,) = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
    schema: dict[str, Any] = parameter["schema"]
    return schema


def test_patch_fields_may_be_left_out_but_are_not_nullable(document: dict[str, Any]) -> None:
    for model, fields in {
        "PatientUpdate": ("name", "email", "status", "language"),
        "ClinicUpdate": ("name", "secure_email_enabled", "time_zone"),
        "StaffChange": ("role", "clinic_ids"),
    }.items():
        schema = _schema(document, model)
        assert "required" not in schema, model
        for field in fields:
            assert "null" not in str(schema["properties"][field]), (model, field)
    # Null still means "none" where the server takes it so.
    assert {"type": "null"} in _schema(document, "PatientUpdate")["properties"]["clinic_id"][
        "anyOf"
    ]


def test_roles_offered_are_those_a_practice_gives(document: dict[str, Any]) -> None:
    for model in ("StaffCreate", "StaffChange"):
        assert _schema(document, model)["properties"]["role"]["enum"] == ["admin", "clerk"]


def test_query_and_header_constraints_are_declared(document: dict[str, Any]) -> None:
    action = _parameter(document, "/api/v1/audit", "get", "action")
    assert set(action["enum"]) == {"", *AuditAction}
    cursor = _parameter(document, "/api/v1/secure-emails", "get", "cursor")
    assert cursor["pattern"] == "^[A-Za-z0-9_-]*$"
    assert "opaque" in cursor["description"]
    for path in ("/api/v1/secure-emails", "/api/v1/patients/import"):
        key = _parameter(document, path, "post", "Idempotency-Key")
        assert (key["minLength"], key["maxLength"]) == (1, 255)


def test_send_secure_form_needs_more_than_spaces(document: dict[str, Any]) -> None:
    form = document["paths"]["/api/v1/secure-emails"]["post"]["requestBody"]["content"]
    fields = form["multipart/form-data"]["schema"]["properties"]
    for name in ("subject", "body"):
        assert (fields[name]["minLength"], fields[name]["pattern"]) == (1, r"\S")


@pytest.mark.parametrize(
    ("path", "method", "field"),
    [
        ("/api/v1/practice", "put", "id"),
        ("/api/v1/practice", "patch", "reminder_after_hours"),
        ("/api/v1/clinics", "post", "sender_address"),
        ("/api/v1/patients", "post", "clinic_id"),
        ("/api/v1/patients", "post", "email"),
        ("/api/v1/staff", "post", "clinic_ids"),
        ("/api/v1/tokens", "post", "expires_at"),
        ("/api/v1/secure-emails", "post", "patient_id"),
        ("/api/v1/secure-emails", "post", "Idempotency-Key"),
        ("/api/v1/secure-emails", "get", "cursor"),
        ("/api/v1/secure-emails/{secure_email_id}", "patch", "expires_at"),
        ("/api/v1/integrations/open-dental", "put", "clinic_numbers"),
        ("/api/v1/patients/import", "post", "file"),
    ],
)
def test_rules_a_schema_cannot_express_are_declared_as_their_422(
    document: dict[str, Any], path: str, method: str, field: str
) -> None:
    invalid = document["paths"][path][method]["responses"]["422"]
    assert invalid["x-business-rules"][field]
    assert field in invalid["description"]
    assert invalid["content"]["application/json"]["schema"]["$ref"].endswith("/Refusal")


def test_sending_while_switched_off_is_a_declared_conflict(document: dict[str, Any]) -> None:
    conflict = document["paths"]["/api/v1/secure-emails"]["post"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"]["$ref"].endswith("/Refusal")
    assert "Secure Email is not enabled" in conflict["description"]
