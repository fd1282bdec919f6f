"""``/metrics``: requests counted by route template and status, never by path or query."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from infra.settings import Settings
from tests.conftest import Office, app_of_its_own
from web.metrics import UNMATCHED, route_template

TOKEN = "a-patients-unguessable-token"
PATIENT_NAME = "Jane Doe"


async def metrics_text(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metrics_count_requests_by_route_template(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get(f"/m/{TOKEN}", params={"name": PATIENT_NAME})).status_code == 404
    assert (await anonymous.get("/healthz")).status_code == 200
    text = await metrics_text(anonymous)
    assert 'http_requests_total{method="GET",route="/m/{token}",status="404"} 1.0' in text
    assert 'http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'http_request_duration_seconds_count{method="GET",route="/healthz"} 1.0' in text


async def test_metrics_carry_no_path_ids_or_query(
    anonymous: httpx.AsyncClient, office: Office
) -> None:
    await anonymous.get(f"/m/{TOKEN}/passcode", params={"email": "jane@example.com"})
    await office.api.get("/api/v1/patients", params={"q": PATIENT_NAME})
    await office.api.get(f"/api/v1/patients/{TOKEN}/chart")
    await anonymous.get("/static/app.css")
    await anonymous.get(f"/no/such/{TOKEN}")
    text = await metrics_text(anonymous)
    # Routes of routers included in routers carry every prefix; the office's own
    # /patients page is another route.
    assert 'route="/api/v1/patients",status="200"' in text
    assert 'route="/api/v1/patients/{patient_id}/chart"' in text
    assert 'route="/static/{path}",status="200"' in text
    assert f'route="{UNMATCHED}",status="404"' in text
    series = [line for line in text.splitlines() if not line.startswith("#")]
    for secret in (TOKEN, "Jane", "jane@example.com", "app.css", "?"):
        assert not [line for line in series if secret in line], secret


async def test_metrics_count_only_their_own_app(settings: Settings) -> None:
    # Each app has its own registry: a second app in the process starts from zero.
    for _ in range(2):
        async with app_of_its_own(settings) as client:
            await client.get("/healthz")
            text = await metrics_text(client)
        assert 'http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text


async def test_access_log_names_route_template_not_path(
    anonymous: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securemail.access")
    await anonymous.get(f"/m/{TOKEN}", params={"name": PATIENT_NAME})
    messages = [r.getMessage() for r in caplog.records if r.name == "securemail.access"]
    assert messages and messages[-1].startswith("GET /m/{token} 404 ")
    assert not any(TOKEN in m or "Jane" in m for m in messages)


def test_route_template_unmatched_without_route() -> None:
    assert route_template({"type": "http", "path": f"/m/{TOKEN}"}) == UNMATCHED


async def test_metrics_endpoint_not_in_openapi(app: FastAPI) -> None:
    assert "/metrics" not in app.openapi()["paths"]
    assert "/healthz" not in app.openapi()["paths"]
