"""Whether ``workflows.legacy`` can be deleted yet: how many version-1 secure emails are
still open, as the database and Temporal each see them (``securemail legacy open``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.service import RPCError

from infra import secure_emails
from infra.db.engine import make_engine, make_sessionmaker
from infra.settings import Settings
from infra.temporal.client import connect
from workflows.legacy import LEGACY_WORKFLOW_TYPE, LEGACY_WORKFLOW_VERSION


@dataclass(frozen=True)
class OpenLegacy:
    # Rows of version-1 secure emails not yet expired, withdrawn or failed.
    in_database: int
    # Running workflows of the version-1 type; None when Temporal could not be asked.
    in_temporal: int | None

    @property
    def none_open(self) -> bool:
        return self.in_database == 0 and self.in_temporal == 0


async def open_legacy(settings: Settings) -> OpenLegacy:
    engine = make_engine(settings.database_url, connections=1)
    try:
        async with make_sessionmaker(engine)() as db:
            in_database = await secure_emails.open_on_workflow(
                db, LEGACY_WORKFLOW_VERSION, datetime.now(UTC)
            )
    finally:
        await engine.dispose()
    try:
        client = await connect(settings)
        found = await client.count_workflows(
            f"WorkflowType = '{LEGACY_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
        )
        in_temporal: int | None = found.count
    except (RPCError, RuntimeError):
        in_temporal = None
    return OpenLegacy(in_database=in_database, in_temporal=in_temporal)
