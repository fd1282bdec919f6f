"""The Temporal trust boundary (R12), attacked on real parts: the dev server, the worker,
the codec endpoint, SMTP and a second practice.

- Another practice's admin posts this practice's history to the codec: refused.
- An operator decodes a whole history: ids, counters, times, statuses, key ids; no
  address, practice name, link, passcode, secret or anything anyone wrote.
- A forged start (plain input from the CLI, or encrypted input naming a secure email the
  database does not know) sends nothing.
- The operator's ``temporal workflow show --codec-endpoint`` prints decoded payloads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.secure_email import workflow_id_for
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import AuditEvent
from tests.conftest import SENDER, make_office
from tests.fixtures.operators import make_operator
from tests.fixtures.stack import Stack
from tests.fixtures.temporal import start_secure_email
from tests.fixtures.waiting import eventually
from workers.smtp_catcher import read_maildir

PATIENT = "ada@example.com"
SUBJECT = "Biopsy results for Ada"
BODY = "The biopsy of tooth 14 came back clear."
REPLY = "Thank you, my insurance number is INS-5521."
BIN_DIR = Path(sys.executable).parent


async def send(stack: Stack) -> tuple[str, str]:
    """A secure email to Ada; returns its id and the notice link's path."""
    patient_id = await stack.add_patient("Ada Lovelace", PATIENT)
    sent = await stack.office.api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, "subject": SUBJECT, "body": BODY},
    )
    assert sent.status_code == 201, sent.text
    return str(sent.json()["id"]), await stack.notice_link(PATIENT)


async def opened_and_answered(stack: Stack) -> tuple[str, list[str]]:
    """Sent, two passcodes requested, opened with the second, answered with Reply All.

    Returns the id and every secret the history must not hold."""
    secure_email_id, link = await send(stack)
    async with stack.browser() as patient:
        await patient.post(f"{link}/passcode")
        first = await stack.passcode(PATIENT, 2)
        await patient.post(f"{link}/passcode")
        second = await stack.passcode(PATIENT, 3)
        verified = await patient.post(f"{link}/verify", data={"passcode": second})
        assert verified.status_code == 303
        replied = await patient.post(
            f"/portal/messages/{secure_email_id}/reply",
            data={"subject": "RE: results", "body": REPLY},
        )
        assert replied.status_code == 303, replied.text
    token = link.rsplit("/", 1)[1]
    return secure_email_id, [
        PATIENT,
        "Smile Dental",
        SENDER,
        token,
        first,
        second,
        SUBJECT,
        BODY,
        REPLY,
        "INS-5521",
    ]


async def history_payloads(client: Client, secure_email_id: str) -> list[Payload]:
    """Every payload of the workflow's history (all runs), as the server stores them."""
    found: list[Payload] = []
    handle = client.get_workflow_handle(workflow_id_for(secure_email_id))
    async for event in handle.fetch_history_events():
        collect(event, found)
    return found


def collect(message: object, found: list[Payload]) -> None:
    """Payloads anywhere in a protobuf message (inputs, results, update and failure
    details); search attributes are Payloads too and are checked as they are stored."""
    if isinstance(message, Payload):
        found.append(message)
        return
    descriptor = getattr(message, "DESCRIPTOR", None)
    if descriptor is None:
        return
    for _field, value in message.ListFields():  # type: ignore[attr-defined]
        if isinstance(value, (str, bytes, int, float, bool)):
            continue
        if hasattr(value, "DESCRIPTOR"):
            collect(value, found)
        else:  # a repeated field, or a map (search attributes, headers)
            for item in value.values() if hasattr(value, "values") else value:
                collect(item, found)


async def audit_events(stack: Stack, practice_id: str, action: str) -> list[AuditEvent]:
    engine = make_engine(stack.settings.database_url)
    async with make_sessionmaker(engine)() as db:
        from sqlalchemy import select

        rows = await db.scalars(
            select(AuditEvent).where(
                AuditEvent.practice_id == practice_id, AuditEvent.action == action
            )
        )
        events = list(rows.all())
    await engine.dispose()
    return events


def fields_of(value: object) -> list[tuple[str, object]]:
    """Every (key, value) of a decoded JSON payload, however deep."""
    found: list[tuple[str, object]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((key, item))
            found.extend(fields_of(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(fields_of(item))
    return found


async def mail_count(stack: Stack, address: str) -> int:
    everything = await asyncio.to_thread(read_maildir, stack.maildir)
    return len([message for message in everything if message["To"] == address])


def as_body(payloads: list[Payload]) -> dict[str, object]:
    return json_format.MessageToDict(Payloads(payloads=payloads))


async def test_other_practices_admin_cannot_decode_this_practices_history(stack: Stack) -> None:
    secure_email_id, _ = await send(stack)
    stored = await _encrypted_history(stack, secure_email_id)
    other = await make_office(stack.app, stack.settings)
    try:
        by_token = await other.api.post("/codec/decode", json=as_body(stored))
        by_cookie = await other.browser.post("/codec/decode", json=as_body(stored))
    finally:
        await other.aclose()
    for response in (by_token, by_cookie):
        assert response.status_code == 403
        assert PATIENT not in response.text
    # Nor does this practice's own admin read it: Temporal is the operators' tool.
    own = await stack.office.api.post("/codec/decode", json=as_body(stored))
    assert own.status_code == 403
    assert await audit_events(stack, stack.office.practice_id, "operator.decode") == []


async def _encrypted_history(stack: Stack, secure_email_id: str) -> list[Payload]:
    client = await stack.app.state.app_state.temporal()
    return [
        p
        for p in await history_payloads(client, secure_email_id)
        if p.metadata.get("encoding") == b"binary/encrypted"
    ]


async def test_decoded_history_holds_ids_never_secrets(stack: Stack) -> None:
    secure_email_id, secrets = await opened_and_answered(stack)
    client = await stack.app.state.app_state.temporal()
    everything = await history_payloads(client, secure_email_id)
    encrypted = [p for p in everything if p.metadata.get("encoding") == b"binary/encrypted"]
    assert encrypted, "the history has payloads"
    operator = await make_operator(stack.app, stack.settings)
    try:
        response = await operator.api.post("/codec/decode", json=as_body(encrypted))
    finally:
        await operator.aclose()
    assert response.status_code == 200, response.text
    decoded = json_format.ParseDict(response.json(), Payloads()).payloads
    text = "\n".join(p.data.decode(errors="replace") for p in decoded)
    # What the history does hold: the secure email's id, and the checks of passcodes.
    assert secure_email_id in text
    # Search attributes are stored unencrypted (ids and statuses only); check them too.
    plain = "\n".join(p.data.decode(errors="replace") for p in everything if p not in encrypted)
    for secret in secrets:
        assert secret not in text, f"{secret!r} is in the decoded history"
        assert secret not in plain, f"{secret!r} is in a search attribute"
    forbidden = {"secret", "patient_address", "sender_address", "practice_name", "link_token"}
    forbidden |= {"passcode", "subject", "body", "filename", "attachments"}
    for payload in decoded:
        if not payload.metadata["encoding"].startswith(b"json/"):
            continue  # binary/null: an activity or update with no result
        filled = {key for key, value in fields_of(json.loads(payload.data)) if value}
        assert not filled & forbidden, f"{filled & forbidden} in {payload.data[:80]!r}"
    # The decode is in this practice's audit log, naming the operator and the message.
    (event,) = await audit_events(stack, stack.office.practice_id, "operator.decode")
    assert event.secure_email_id == secure_email_id
    assert event.actor_type == "operator"


async def _closed_or_task_failed(
    handle: WorkflowHandle[object, object],
) -> list[EventType.ValueType]:
    """Waits until the workflow closed or its task failed; returns the event types."""
    ends = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    }

    async def ended() -> list[EventType.ValueType] | None:
        kinds = [event.event_type async for event in handle.fetch_history_events()]
        return kinds if ends & set(kinds) else None

    return await eventually(ended, what="the workflow closed or a task failed")


@pytest.mark.parametrize("workflow_type", ["SecureEmail", "SecureEmailWorkflow"])
async def test_plain_input_start_sends_nothing(stack: Stack, workflow_type: str) -> None:
    """`temporal workflow start --input '{...}'` from anyone with access to port 7233."""
    temporal = await stack.app.state.app_state.temporal()
    plain_client = await Client.connect(
        temporal.service_client.config.target_host,
        namespace=temporal.namespace,
        data_converter=pydantic_data_converter,
    )
    now = datetime.now(UTC)
    forged = {
        "secure_email_id": str(uuid.uuid4()),
        "practice_id": stack.office.practice_id,
        "patient_id": str(uuid.uuid4()),
        "practice_name": "Bank Security",
        "sender_address": SENDER,
        "patient_address": "victim@example.com",
        "link_token": "phish" * 9,
        "portal_key_id": "any",
        "sent_at": now.isoformat(),
        "expires_at": (now + timedelta(days=7)).isoformat(),
    }
    handle = await plain_client.start_workflow(
        workflow_type,
        forged,
        id=workflow_id_for(forged["secure_email_id"]),
        task_queue=stack.settings.task_queue,
    )
    kinds = await _closed_or_task_failed(handle)
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED in kinds
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
    await handle.terminate("forged start, test over")
    assert await mail_count(stack, "victim@example.com") == 0


async def test_forged_encrypted_start_sends_nothing(stack: Stack) -> None:
    """An operator's encode (or a stolen key) can start a workflow, but the database
    decides what is sent: an unknown secure email gets no notice, in either version."""
    patient_id = await stack.add_patient("Vic Tim", "victim@example.com")
    temporal = await stack.app.state.app_state.temporal()
    now = datetime.now(UTC)
    v2_id, v1_id = str(uuid.uuid4()), str(uuid.uuid4())
    v2 = await start_secure_email(
        temporal,
        stack.settings.task_queue,
        secure_email_id=v2_id,
        practice_id=stack.office.practice_id,
        patient_id=patient_id,
        sent_at=now,
        portal_key_id=stack.app.state.app_state.portal_keys.current_id,
    )
    v1 = await stack.start_legacy(
        v1_id, patient_id, "victim@example.com", "phish" * 9, practice_name="Bank Security"
    )
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(v2.result(), 30)
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(v1.result(), 30)
    assert await mail_count(stack, "victim@example.com") == 0


async def test_operator_decodes_with_the_temporal_cli(live_stack: Stack) -> None:
    stack = live_stack
    secure_email_id, _ = await send(stack)
    operator = await make_operator(stack.app, stack.settings)
    await operator.aclose()
    temporal = await stack.app.state.app_state.temporal()
    argv = [
        str(BIN_DIR / "temporal"), "workflow", "show",
        "-w", workflow_id_for(secure_email_id),
        "--address", temporal.service_client.config.target_host,
        "--codec-endpoint", f"{stack.settings.public_url}/codec",
        "--codec-auth", f"Bearer {operator.token}",
        "--output", "json",
    ]  # fmt: skip
    shown = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0, shown.stderr
    started = json.loads(shown.stdout)["events"][0]["workflowExecutionStartedEventAttributes"]
    (payload,) = started["input"]["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(payload["data"]))["secure_email_id"] == secure_email_id
    assert base64.b64encode(b"binary/encrypted").decode() not in shown.stdout
    assert PATIENT not in shown.stdout
