"""The Temporal worker: secure email workflows and every activity they call."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.legacy import LegacyMailActivities, make_passcode_secret
from activities.mail import MailActivities
from activities.office_requests import OfficeRequestActivities
from activities.open_dental import OpenDentalActivities
from activities.read_model import ReadModelActivities
from activities.reencrypt import ReencryptActivities
from activities.replies import AlertActivities, RepliesActivities
from activities.to_open_dental import ToOpenDentalActivities
from domain.secure_email import (
    ExpiryToRecord,
    NoticeFailed,
    ReplyToFile,
    ReplyToRecord,
    ReportToConfirm,
    StatusChange,
)
from infra.audit_chain import keep_linking
from infra.crypto.fields import configure_field_encryption
from infra.crypto.keys import encryption_keys, portal_keys
from infra.db.engine import make_engine, make_sessionmaker
from infra.logging import configure_logging
from infra.mail.factory import mail_transport
from infra.mail.transport import MailTransport
from infra.objects.encrypted import secure_object_store
from infra.reconciliation_schedule import keep_reconciliation_schedule
from infra.settings import Settings
from infra.temporal.client import connect
from workers.workflow_code import keep_workflow_code
from workflows.legacy.secure_email_v1 import LegacySecureEmailWorkflow
from workflows.open_dental_sync import OpenDentalSyncWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.reconciling import ReconcileActivities
from workflows.reencrypt import ReencryptWorkflow
from workflows.resuming import resume_open_secure_emails
from workflows.secure_email import SecureEmailWorkflow

# What the worker runs at once, each with at most one database connection: local
# activities inside workflow tasks (the read model), and activities (mail, replies,
# alerts). Its pool keeps a connection for each, so none waits on the pool: at 10,000
# open secure emails the SDK's 100 activity slots against a pool of 15 made activities
# time out waiting for a connection while local activities held workflow tasks open.
LOCAL_ACTIVITY_SLOTS = 15
ACTIVITY_SLOTS = 20
DATABASE_CONNECTIONS = LOCAL_ACTIVITY_SLOTS + ACTIVITY_SLOTS
# Each of those connections' SQLite page cache (SQLite's default is 2,000 KiB). The
# worker reads and writes mostly single rows by key, so a small cache costs it little;
# at the default, SQLite's own memory in the worker rose from 9 to 64 MiB during the
# mass expiry of 10,000 secure emails (about 40 connections filling their caches), most
# of the gap to PostgreSQL; with 256 KiB it stayed at 14 MiB (docs/BENCHMARKS.md §4).
SQLITE_PAGE_CACHE_KIB = 256
# glibc's malloc arenas: by default up to 8 per core, a new one for each new thread
# until then, each keeping what was freed in it. The worker runs a thread for each
# workflow task and each SQLite connection (110 at a mass expiry), and 60 to 88 MiB sat
# free in its arenas (mallinfo2); with two, as MALLOC_ARENA_MAX=2 would set, 40 to 55
# MiB (docs/BENCHMARKS.md §4).
MALLOC_ARENAS = 2

# mallopt's parameter for the arenas' cap (glibc's malloc.h).
M_ARENA_MAX = -8

# The legacy workflow stays until the last secure email it runs has expired
# (``workflows.legacy``).
WORKFLOWS = [
    SecureEmailWorkflow,
    LegacySecureEmailWorkflow,
    OpenDentalSyncWorkflow,
    ReencryptWorkflow,
    ReconciliationWorkflow,
]


class StatusRecorder(Protocol):
    async def record_status(self, change: StatusChange) -> None: ...
    async def record_expiry(self, change: ExpiryToRecord) -> None: ...
    async def viewed_in_portal(self, report: ReportToConfirm) -> bool: ...
    async def bounce_reported(self, report: ReportToConfirm) -> bool: ...


class ReplyRecorder(Protocol):
    async def record_reply(self, recording: ReplyToRecord) -> None: ...
    async def file_reply(self, filing: ReplyToFile) -> None: ...
    async def raise_alert(self, filing: ReplyToFile) -> None: ...
    async def file_to_chart(self, filing: ReplyToFile) -> None: ...


class NoticeFailedAlerter(Protocol):
    async def raise_notice_failed(self, failure: NoticeFailed) -> None: ...


def activities(
    mail: MailActivities,
    legacy_mail: LegacyMailActivities,
    read_model: StatusRecorder,
    replies: ReplyRecorder,
    alerts: NoticeFailedAlerter,
    office_requests: OfficeRequestActivities,
) -> list[Callable[..., Awaitable[Any]]]:
    """Every activity the workflows call. What records into the database is the
    database's in the worker, a stand-in in the workflow tests."""
    return [
        mail.send_notice,
        mail.send_passcode,
        # The legacy workflow's only (``workflows.legacy``).
        legacy_mail.deliver_notice,
        legacy_mail.deliver_passcode,
        make_passcode_secret,
        read_model.record_status,
        read_model.record_expiry,
        read_model.viewed_in_portal,
        read_model.bounce_reported,
        replies.record_reply,
        replies.file_reply,
        # Secure emails started before the ``FEWER_ROUND_TRIPS`` patch ("lean-lifecycle").
        replies.raise_alert,
        replies.file_to_chart,
        alerts.raise_notice_failed,
        office_requests.confirm_office_request,
    ]


def build_worker(
    client: Client,
    settings: Settings,
    transport: MailTransport,
    sessions: async_sessionmaker[AsyncSession],
) -> Worker:
    keys = portal_keys(settings)
    mail = MailActivities(transport, settings.public_url, sessions, keys)
    legacy_mail = LegacyMailActivities(transport, settings.public_url, sessions, keys)
    store = secure_object_store(settings)
    # Re-encryption (``workflows.reencrypt``) works below the models, on the same engine.
    reencrypt = ReencryptActivities(sessions.kw["bind"], encryption_keys(settings), store)
    reconcile = ReconcileActivities(client, settings.task_queue, sessions, keys)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=[
            *activities(
                mail,
                legacy_mail,
                ReadModelActivities(sessions),
                RepliesActivities(sessions),
                AlertActivities(sessions),
                OfficeRequestActivities(sessions),
            ),
            # The Open Dental sync's (``workflows.open_dental_sync``).
            *OpenDentalActivities(sessions).all(),
            # What a secure email puts into the patient's Open Dental.
            *ToOpenDentalActivities(sessions, store).all(),
            # Key rotation's re-encryption (``workflows.reencrypt``).
            reencrypt.count_to_reencrypt,
            reencrypt.reencrypt_page,
            # The database and Temporal compared (``workflows.reconciling``).
            reconcile.reconcile,
        ],
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_grace_seconds),
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_local_activities=LOCAL_ACTIVITY_SLOTS,
        max_concurrent_activities=ACTIVITY_SLOTS,
        # The SDK's 100 slots, fewer with a smaller cache: a workflow task needs its
        # workflow in the cache while it runs.
        max_concurrent_workflow_tasks=min(100, max(2, settings.worker_max_cached_workflows)),
    )


def serve_metrics(address: str) -> None:
    """Prometheus metrics at ``http://address/metrics``: the SDK's (task latencies,
    schedule-to-start, slots) and the secure email counters that activities add
    (``activities.read_model``), all from the one runtime every client of the process
    uses by default."""
    telemetry = TelemetryConfig(metrics=PrometheusConfig(bind_address=address))
    Runtime.set_default(Runtime(telemetry=telemetry), error_if_already_set=True)


async def resume_at_start(client: Client, settings: Settings, engine: AsyncEngine) -> None:
    """The resume step, once, beside polling: a failure is logged, the worker goes on."""
    log = logging.getLogger(__name__)
    try:
        found = await resume_open_secure_emails(
            client, settings.task_queue, make_sessionmaker(engine), portal_keys(settings)
        )
    except Exception:
        log.exception("resuming open secure emails failed; run `securemail resume`")
        return
    log.info("open secure emails at start: %s", found.summary())


async def keep_reconciling(client: Client, settings: Settings) -> None:
    """The reconciliation's Schedule, created or brought to the settings at start: a
    failure is logged, the worker goes on (the next start tries again)."""
    try:
        await keep_reconciliation_schedule(
            client, settings.task_queue, settings.reconcile_minutes, settings.reconcile_page
        )
    except Exception:
        logging.getLogger(__name__).exception("could not keep the reconciliation schedule")


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Caps glibc's malloc arenas for this process, before its threads start (glibc
    fixes the cap when it first needs one arena more); False where malloc is not
    glibc's (musl, macOS), which is left as it is."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


async def run_worker(settings: Settings) -> None:
    limit_malloc_arenas()
    configure_logging(settings)
    if settings.worker_metrics_address:
        serve_metrics(settings.worker_metrics_address)
    configure_field_encryption(encryption_keys(settings))
    # Each cached workflow runs its own import of its module, on the code loaded once.
    keep_workflow_code(WORKFLOWS)
    engine = make_engine(
        settings.database_url,
        connections=DATABASE_CONNECTIONS,
        sqlite_page_cache_kib=SQLITE_PAGE_CACHE_KIB,
    )
    client = await connect(settings)
    worker = build_worker(client, settings, mail_transport(settings), make_sessionmaker(engine))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with keep_linking(engine), worker:
        logging.getLogger(__name__).info("worker polling task queue %s", settings.task_queue)
        # What the database says is open, Temporal runs (``workflows.resuming``).
        resuming = asyncio.create_task(resume_at_start(client, settings, engine))
        # And keeps it so every few minutes (``workflows.reconciling``).
        await keep_reconciling(client, settings)
        await stop.wait()
        resuming.cancel()
    # Leaving the block waits for in-flight activities before the process exits.
    await engine.dispose()
