"""What the web app holds for its lifetime: settings, the database, the Temporal client."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from infra.crypto.keys import PortalKeys
from infra.objects.interface import ObjectStore
from infra.settings import Settings
from infra.temporal.client import connect


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    store: ObjectStore
    # Notice links and passcode checks are derived with it (``infra.crypto.portal_secrets``).
    portal_keys: PortalKeys
    _temporal: Client | None = None
    _temporal_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def temporal(self) -> Client:
        """One client for the app's life, connected on first use.

        Connecting lazily lets office pages that never touch a workflow (the directory,
        settings) keep working while Temporal restarts.
        """
        async with self._temporal_lock:
            if self._temporal is None:
                self._temporal = await connect(self.settings)
            return self._temporal
