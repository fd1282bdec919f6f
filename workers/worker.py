"""The Temporal worker: secure email workflows and every activity they call."""

from __future__ import annotations

import asyncio
import logging
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from activities.mail import MailActivities
from activities.passcodes import make_passcode_secret
from activities.read_model import ReadModelActivities
from infra.db.engine import make_engine, make_sessionmaker
from infra.mail.factory import mail_transport
from infra.settings import Settings
from infra.temporal.client import connect
from workflows.secure_email import SecureEmailWorkflow

WORKFLOWS = [SecureEmailWorkflow]


def build_worker(
    client: Client, settings: Settings, mail: MailActivities, read_model: ReadModelActivities
) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=[
            mail.deliver_notice,
            mail.deliver_passcode,
            make_passcode_secret,
            read_model.record_status,
        ],
    )


async def run_worker(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    engine = make_engine(settings.database_url)
    client = await connect(settings)
    worker = build_worker(
        client,
        settings,
        MailActivities(mail_transport(settings), settings.public_url),
        ReadModelActivities(make_sessionmaker(engine)),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with worker:
        logging.getLogger(__name__).info("worker polling task queue %s", settings.task_queue)
        await stop.wait()
    # Leaving the block waits for in-flight activities before the process exits.
    await engine.dispose()
