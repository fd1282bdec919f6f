"""Operators: a role of their own, with no practice and no office (DESIGN §1)."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from infra.operators import OperatorError
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.operators import Operator
from workers.admin import create_operator


async def test_operator_page_lists_practices_and_links_the_temporal_ui(
    operator: Operator, office: Office, settings: Settings
) -> None:
    page = await operator.browser.get("/operator")
    assert page.status_code == 200
    assert "Smile Dental" in page.text
    assert settings.temporal_ui_origin in page.text
    assert f"PracticeId%3D%22{office.practice_id}%22" in page.text


async def test_operator_sees_no_office_page_nor_practice_api(operator: Operator) -> None:
    for path in ("/", "/patients", "/email-client", "/audit"):
        response = await operator.browser.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/operator"
    for path in ("/api/v1/patients", "/api/v1/practice", "/api/v1/alerts"):
        response = await operator.api.get(path)
        assert response.status_code == 403, path
        assert "Operators belong to no practice" in response.json()["detail"]


async def test_practice_staff_cannot_open_the_operator_page(office: Office) -> None:
    assert (await office.browser.get("/operator")).status_code == 403


async def test_operator_create_refuses_an_existing_address(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    email = f"ops-{uuid.uuid4().hex[:8]}@ops.example"
    await create_operator(settings, email, "Ops", "a long password here", 90)
    with pytest.raises(OperatorError, match="already an operator"):
        await create_operator(settings, email, "Ops", "a long password here", 90)
    with pytest.raises(OperatorError, match="not an operator"):
        await create_operator(settings, office.email, "Ops", "a long password here", 90)
