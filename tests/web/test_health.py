"""``/healthz`` answers while the process runs; ``/readyz`` names what it cannot reach."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from infra.settings import Settings
from tests.fixtures.processes import free_port
from tests.fixtures.stack import Stack
from web.app import create_app


def closed_port() -> int:
    """A port nothing listens on."""
    return free_port()


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        return await client.get(path)


async def test_healthz_ok_without_touching_anything(tmp_path: Path) -> None:
    # No lifespan: no database, object store or Temporal exists for this app.
    app = create_app(Settings(data_dir=tmp_path, database_url="sqlite+aiosqlite:///nowhere/x.db"))
    response = await get(app, "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_ok_when_database_object_store_and_temporal_answer(stack: Stack) -> None:
    response = await get(stack.app, "/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "object_store": "ok", "temporal": "ok"},
    }


async def test_readyz_503_names_unreachable_object_store(
    settings: Settings, dev_server_env: WorkflowEnvironment
) -> None:
    unreachable = settings.model_copy(update={"s3_endpoint": f"127.0.0.1:{closed_port()}"})
    app = create_app(unreachable, temporal=dev_server_env.client)
    async with app.router.lifespan_context(app):
        response = await get(app, "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["temporal"] == "ok"
    assert body["checks"]["object_store"].startswith("failed: ")


async def test_readyz_503_names_missing_bucket(stack: Stack) -> None:
    settings = stack.settings.model_copy(update={"s3_bucket": "no-such-bucket"})
    app = create_app(settings, temporal=await stack.app.state.app_state.temporal())
    async with app.router.lifespan_context(app):
        response = await get(app, "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["object_store"] == "failed: LookupError"


async def test_readyz_503_names_unreachable_temporal(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"temporal_address": f"127.0.0.1:{closed_port()}"})
    app = create_app(unreachable)
    async with app.router.lifespan_context(app):
        response = await get(app, "/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["temporal"] != "ok"
