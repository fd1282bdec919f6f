"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database, object
store and Temporal answer), for the orchestrator and the load balancer.

Liveness does no I/O, so a slow database never gets a healthy process restarted.
Readiness checks each dependency at once, each within ``CHECK_TIMEOUT_SECONDS``, and
names the one that failed; the error's type only, as the answer may be public.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from infra.db.engine import ping
from web.deps import StateDep
from web.state import AppState

router = APIRouter(tags=["operations"], include_in_schema=False)

CHECK_TIMEOUT_SECONDS = 2.0
OK = "ok"


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": OK}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    checks: dict[str, Callable[[AppState], Awaitable[None]]] = {
        "database": _database,
        "object_store": _object_store,
        "temporal": _temporal,
    }
    results = await asyncio.gather(*(_run(check, state) for check in checks.values()))
    outcome = dict(zip(checks, results, strict=True))
    ready = all(result == OK for result in results)
    return JSONResponse(
        {"status": OK if ready else "unavailable", "checks": outcome},
        status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
    )


async def _run(check: Callable[[AppState], Awaitable[None]], state: AppState) -> str:
    try:
        await asyncio.wait_for(check(state), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"timed out after {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as error:
        return f"failed: {type(error).__name__}"
    return OK


async def _database(state: AppState) -> None:
    await ping(state.engine)


async def _object_store(state: AppState) -> None:
    # A probe of its own inside the store (short timeouts, no retries): the app's client
    # waits minutes and retries, which would keep a thread busy long after the check gave
    # up on a store that is down.
    await state.store.check(timeout=CHECK_TIMEOUT_SECONDS)


async def _temporal(state: AppState) -> None:
    client = await state.temporal()
    healthy = await client.service_client.check_health(
        timeout=timedelta(seconds=CHECK_TIMEOUT_SECONDS)
    )
    if not healthy:
        raise ConnectionError("Temporal reports itself not serving")
