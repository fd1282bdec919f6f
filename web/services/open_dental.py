"""The Open Dental connector for the office pages and the API alike: saving it (and its
schedule), testing the keys, starting a sync now."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.open_dental import (
    BUSY,
    CONNECTED,
    KEYS_REFUSED,
    UNREACHABLE,
    ConnectionCheck,
    OpenDentalChange,
)
from infra import open_dental
from infra.audit import Actor
from infra.db.models import OpenDentalIntegration
from infra.open_dental_client import KeysRefused, OpenDentalError, Unreachable
from infra.open_dental_schedule import keep_schedule, sync_now
from infra.settings import Settings
from web.deps import temporal_of
from web.state import AppState

NOT_CONNECTED = "Open Dental is not connected: an administrator saves its address and keys first"
PAUSED = (
    "Open Dental refused the keys, so syncing is paused. Save the keys again (or new ones) "
    "in Settings, Open Dental first."
)
SYNC_STARTED = "A sync of patients from Open Dental has started."


async def save(
    state: AppState, db: AsyncSession, practice_id: str, change: OpenDentalChange, actor: Actor
) -> OpenDentalIntegration:
    """Saves the connector (``FieldRefused`` and nothing saved if a rule refuses), then
    sets its schedule: paused while Open Dental refuses the keys."""
    integration, _ = await open_dental.save_integration(
        db, practice_id, change, actor, allow_local_http=allows_local_http(state.settings)
    )
    client = await temporal_of(state)
    await keep_schedule(
        client,
        practice_id,
        integration.sync_minutes,
        state.settings.task_queue,
        paused=integration.keys_refused_at is not None,
    )
    return integration


def allows_local_http(settings: Settings) -> bool:
    return settings.environment == "development"


async def check_connection(integration: OpenDentalIntegration) -> ConnectionCheck:
    try:
        await open_dental.client_of(integration).check_keys()
    except KeysRefused:
        return ConnectionCheck(False, KEYS_REFUSED)
    except Unreachable:
        return ConnectionCheck(False, UNREACHABLE)
    except OpenDentalError:
        return ConnectionCheck(False, BUSY)
    return ConnectionCheck(True, CONNECTED)


async def start_sync(state: AppState, integration: OpenDentalIntegration) -> None:
    await sync_now(await temporal_of(state), integration.practice_id, state.settings.task_queue)
