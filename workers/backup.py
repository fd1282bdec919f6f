"""What ``securemail backup``, ``restore`` and ``resume`` run, with the processes' own
clients: the backup and restore of ``infra.backup``, then the resume step of
``workflows.resuming``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client

from infra.backup import Manifest, back_up, restore
from infra.crypto.fields import configure_field_encryption
from infra.crypto.keys import encryption_keys, portal_keys
from infra.db.engine import make_engine, make_sessionmaker
from infra.settings import Settings
from infra.temporal.client import connect
from workflows.resuming import SETTLING, ResumeReport, resume_open_secure_emails


async def backup(
    settings: Settings, directory: Path, include_keys: bool, progress: Callable[[str], None]
) -> Manifest:
    return await back_up(settings, directory, include_keys=include_keys, progress=progress)


async def resume(
    settings: Settings, *, client: Client | None = None, settling: timedelta = SETTLING
) -> ResumeReport:
    """The resume step over this deployment's database and Temporal."""
    configure_field_encryption(encryption_keys(settings))
    engine = make_engine(settings.database_url, connections=1)
    try:
        return await resume_open_secure_emails(
            client or await connect(settings),
            settings.task_queue,
            make_sessionmaker(engine),
            portal_keys(settings),
            settling=settling,
        )
    finally:
        await engine.dispose()


async def restore_and_resume(
    settings: Settings,
    directory: Path,
    progress: Callable[[str], None],
    *,
    client: Client | None = None,
) -> tuple[Manifest, ResumeReport]:
    manifest = await restore(settings, directory, progress=progress)
    # Nothing ran on the restored database yet: no secure email is half-sent by a web
    # app, so none is left to settle.
    return manifest, await resume(settings, client=client, settling=timedelta(0))
