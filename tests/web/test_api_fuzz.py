"""``/api/v1`` fuzzed from its own OpenAPI document (schemathesis, in-process ASGI).

Every operation gets generated requests, valid and not, with a real API token: none may
answer 5xx, and every answer must match what the document promises (status code, body
schema and content type). Bounded per operation so the whole run stays well under a minute.

Schemathesis calls the app from an event loop of its own (one thread for the process),
so the app here gets its own SQLite database and Temporal client, made on that loop;
only the Temporal dev server and the S3 server are shared with other tests. A worker
(and an SMTP catcher) runs on a loop of its own too, in another thread: the office's
changes (withdraw, expiry, resend) are updates that a worker must answer.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, checks
from schemathesis.core.result import Ok
from schemathesis.python import asgi
from temporalio.testing import WorkflowEnvironment

from domain.staff import StaffRole
from infra.accounts import create_api_token, create_practice, create_staff_user
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import migrate
from infra.db.models import Patient
from infra.mail.smtp import SmtpTransport
from infra.objects.s3 import object_store
from infra.settings import Settings
from infra.temporal.client import connect
from tests.conftest import SENDER, STAFF_PASSWORD
from tests.fixtures.s3 import S3Server
from tests.fixtures.stack import own_settings
from web.app import create_app
from workers.smtp_catcher import serve
from workers.worker import build_worker

EXAMPLES_PER_OPERATION = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}
# Changing the practice (Secure Email off, another sender) last, so sends before it can
# get through to a real 201.
LAST = "PUT /api/v1/practice"
# Looked up by name: schemathesis registers its checks when they are first asked for.
CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.content_type_conformance,
    checks.status_code_conformance,
]


async def _office(settings: Settings) -> tuple[str, list[str]]:
    """A practice with Secure Email on, two patients and an admin's API token; and its
    bucket."""
    await object_store(settings).ensure_bucket()
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        practice = await create_practice(
            db, "Smile Dental", sender_address=SENDER, secure_email_enabled=True
        )
        admin = await create_staff_user(
            db, practice, "admin@smile-dental.example", STAFF_PASSWORD, role=StaffRole.ADMIN
        )
        token = await create_api_token(db, admin, "fuzz")
        patients = [
            Patient(
                practice_id=practice.id,
                name=name,
                email=f"{name.lower()}@example.com",
                email_normalised=f"{name.lower()}@example.com",
                status="Patient",
            )
            for name in ("Ada", "Grace")
        ]
        db.add_all(patients)
        await db.commit()
        patient_ids = [patient.id for patient in patients]
    await engine.dispose()
    return token, patient_ids


@contextmanager
def worker_thread(settings: Settings, maildir: Path) -> Iterator[None]:
    """The worker and an SMTP catcher for it, on a loop of their own in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[asyncio.Server, Any, Any, asyncio.Task[None]]:
        smtp = await serve("127.0.0.1", 0, maildir)
        transport = SmtpTransport(
            "127.0.0.1", smtp.sockets[0].getsockname()[1], local_hostname="tests"
        )
        engine = make_engine(settings.database_url)
        worker = build_worker(
            await connect(settings), settings, transport, make_sessionmaker(engine)
        )
        return smtp, engine, worker, asyncio.create_task(worker.run())

    smtp, engine, worker, running = asyncio.run_coroutine_threadsafe(start(), loop).result()

    async def stop() -> None:
        await worker.shutdown()
        await asyncio.gather(running, return_exceptions=True)
        await engine.dispose()
        smtp.close()
        await smtp.wait_closed()

    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


@pytest.fixture
def fuzzed_app(
    tmp_path: Path, s3_server: S3Server, dev_server_env: WorkflowEnvironment
) -> Iterator[tuple[FastAPI, str, list[str]]]:
    settings = own_settings(
        tmp_path,
        temporal_address=dev_server_env.client.service_client.config.target_host,
        **s3_server.connection(),
    )
    migrate(settings)  # what `securemail migrate` runs; the app never migrates
    # A loop of its own, in a thread: this test's thread has pytest-asyncio's loop.
    with ThreadPoolExecutor(1) as thread:
        token, patient_ids = thread.submit(asyncio.run, _office(settings)).result()
    # No Temporal client handed in: the app connects on schemathesis's loop when needed.
    with worker_thread(settings, tmp_path / "mail"):
        yield create_app(settings), token, patient_ids
        asgi.shutdown_lifespans()


def with_known_ids(case: Case[Any], known: dict[str, list[str]], use: bool) -> Case[Any]:
    """Half the cases name things that exist, so the fuzzing reaches past the 404s."""
    if use:
        for name in list(case.path_parameters or {}):
            if known.get(name):
                case.path_parameters[name] = known[name][-1]
        if isinstance(case.body, dict) and "patient_id" in case.body and known["patient_id"]:
            case.body["patient_id"] = known["patient_id"][0]
    return case


def test_api_v1_answers_every_generated_request_within_its_schema(
    fuzzed_app: tuple[FastAPI, str, list[str]],
) -> None:
    app, token, patient_ids = fuzzed_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/api/v1/")
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) >= 8, [op.label for op in operations]
    operations.sort(key=lambda op: (op.label == LAST, op.method != "post"))
    headers = {"Authorization": f"Bearer {token}"}
    known: dict[str, list[str]] = {"patient_id": patient_ids, "secure_email_id": []}
    answered: Counter[tuple[str, int]] = Counter()

    for operation, mode in itertools.product(operations, EXAMPLES_PER_OPERATION):
        strategy = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans()).map(
            lambda drawn: with_known_ids(drawn[0], known, drawn[1])
        )

        @given(case=strategy)
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION[mode],
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def answers_within_schema(case: Case[Any]) -> None:
            response = case.call(headers=headers)
            answered[(case.operation.label, response.status_code)] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)
            if case.operation.label == "POST /api/v1/secure-emails" and response.status_code == 201:
                known["secure_email_id"].append(response.json()["id"])

        answers_within_schema()

    # The run reached the paths that do work, not only the refusals.
    assert answered[("POST /api/v1/secure-emails", 201)] > 0, answered
    assert answered[("GET /api/v1/secure-emails/{secure_email_id}", 200)] > 0, answered
    assert answered[("GET /api/v1/patients/{patient_id}", 200)] > 0, answered
