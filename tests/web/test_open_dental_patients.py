"""Patients of Open Dental's other statuses (Inactive, Archived, Deceased, Deleted) stay
in the directory but get no secure email: Send Secure refuses them in words, and the
patient's page says why."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from domain.patients import NO_ADDRESS, not_sendable_reason
from infra.db.engine import make_engine
from infra.db.models import Patient
from infra.settings import Settings
from tests.conftest import Office


@pytest.fixture
def settings(settings: Settings, dev_server_env: WorkflowEnvironment) -> Settings:
    # Send Secure connects to Temporal before it checks the patient.
    target = dev_server_env.client.service_client.config.target_host
    return settings.model_copy(update={"temporal_address": target})


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("Inactive", "inactive"),
        ("Archived", "archived"),
        ("Deceased", "deceased"),
        ("Deleted", "deleted in Open Dental"),
    ],
)
async def test_send_secure_refuses_a_patient_not_sent_to(
    office: Office, status: str, words: str
) -> None:
    added = await office.api.post(
        "/api/v1/patients",
        json={"name": "Ada Lovelace", "email": f"ada-{status}@example.com", "status": status},
    )
    assert added.status_code == 201, added.text
    patient_id = added.json()["id"]
    assert added.json()["status"] == status
    refused = await office.api.post(
        "/api/v1/secure-emails", data={"patient_id": patient_id, "subject": "Hi", "body": "Hi"}
    )
    assert refused.status_code == 422, refused.text
    reason = not_sendable_reason(status, "ada@example.com")
    assert reason is not None and words in reason
    assert reason in refused.text
    page = await office.browser.get(f"/patients/{patient_id}/edit")
    assert page.status_code == 200
    assert reason in page.text
    listed = await office.api.get("/api/v1/secure-emails")
    assert listed.json()["items"] == []


def test_patients_and_nonpatients_are_sent_to() -> None:
    assert not_sendable_reason("Patient", "ada@example.com") is None
    assert not_sendable_reason("NonPatient", "ada@example.com") is None
    assert not_sendable_reason("Prospective", "ada@example.com") is not None
    # An Open Dental patient whose address was removed there.
    assert not_sendable_reason("Patient", "") == NO_ADDRESS


async def test_send_secure_refuses_a_patient_whose_address_open_dental_removed(
    office: Office, settings: Settings
) -> None:
    added = await office.api.post(
        "/api/v1/patients", json={"name": "Ada Lovelace", "email": "ada-gone@example.com"}
    )
    patient_id = added.json()["id"]
    # What the sync leaves of an Open Dental patient whose address was removed there.
    engine = make_engine(settings.database_url)
    async with engine.begin() as connection:
        await connection.execute(
            update(Patient)
            .where(Patient.id == patient_id)
            .values(email="", email_normalised="", external_source="open_dental", external_id="10")
        )
    await engine.dispose()
    refused = await office.api.post(
        "/api/v1/secure-emails", data={"patient_id": patient_id, "subject": "Hi", "body": "Hi"}
    )
    assert refused.status_code == 422, refused.text
    assert NO_ADDRESS in refused.text
    page = await office.browser.get(f"/patients/{patient_id}/edit")
    assert NO_ADDRESS in page.text
