"""Every staff read of PHI is audited (R13, HIPAA §164.312(b)), and a new route cannot forget.

The test walks the app's route table. Each GET route meant for practice staff (the office
pages and ``/api/v1``: its endpoint lives in ``web.office`` or ``web.api``, or it takes a
signed-in staff member) is called as the practice's admin, with its ids filled from one
seeded patient: a secure email with a file, the patient's reply with a file of its own
(filed into the chart, raising an alert). Then either

- the response shows the patient's PHI (name, address, subject, body or a file) and at
  least one new audit event names the patient, by ``patient_id`` or, for a list, among the
  ids in its detail, and no new event carries the PHI itself; or
- the route is on ``NO_PHI`` below, and its response shows none of the patient's PHI.

Behavioural rather than a declared marker: a marker proves a dependency is present, not
that the event names the patient whose details the page shows. The whole walk is one
seeded stack and about forty requests. Portal routes (the patient's own) and operator
routes are neither office nor API modules and take no staff member: they are not walked.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from domain.audit import AuditAction
from tests.fixtures.stack import Stack
from tests.web.test_alerts import next_block, staff_client, streams_served
from tests.web.test_chart import PDF, filed
from tests.web.test_portal import sign_in
from web.deps import staff_from_bearer, staff_from_cookie

# Staff GET routes whose responses show no patient's PHI, and why. Staff names and
# addresses are not patient PHI; the audit log's API names patients by id only (its page
# and export name them, and are audited).
NO_PHI: dict[str, str] = {
    "/login": "the log-in form",
    "/change-password": "the staff member's own password form",
    "/patients/search": "a redirect to /patients (a search is a POST)",
    "/patients/import": "the CSV import's upload form (a file's rows are shown only to a POST)",
    "/settings": "the practice's settings",
    "/staff": "the practice's staff",
    "/tokens": "the practice's API tokens",
    "/docs": "the API's documentation",
    "/docs/assets/{name}": "the documentation's scripts and styles",
    "/api/v1/practice": "the practice's settings",
    "/api/v1/staff": "the practice's staff",
    "/api/v1/tokens": "the practice's API tokens",
    "/api/v1/audit": "the audit log: ids, actions and times",
    "/settings/clinics": "the practice's clinics",
    "/settings/clinics/{clinic_id}": "one of the practice's clinics",
    "/api/v1/clinics": "the practice's clinics",
    "/api/v1/clinics/{clinic_id}": "one of the practice's clinics",
    "/settings/open-dental": "the practice's Open Dental connection, its keys masked",
    "/api/v1/integrations/open-dental": "the practice's Open Dental connection, keys masked",
}
# Query strings that make a page show more of the patient than its bare URL does.
QUERIES: dict[str, dict[str, str]] = {
    # Answering a thread prefills "RE: <its subject>".
    "/patients/{patient_id}/compose": {"answering": "{secure_email_id}"},
}
# Server-sent events: read up to the first event on a real server (httpx's in-process
# transport answers only once a body has ended, and an event stream never ends).
STREAMS = {"/alerts/stream"}

NAME = "Winifred Quackenbush"
EMAIL = "winifred.quackenbush@example.com"
SUBJECT = "Root canal follow-up"
BODY = "The temporary crown comes off on Thursday."
OFFICE_FILE = "crown-plan-winifred.pdf"
REPLY_BODY = "Thursday at nine suits me; the tooth still throbs at night."
REPLY_FILE = "xray-winifred.pdf"
PHI = (NAME, EMAIL, SUBJECT, BODY, OFFICE_FILE, REPLY_BODY, REPLY_FILE)


@dataclass(frozen=True)
class Seeded:
    patient_id: str
    secure_email_id: str
    reply_id: str
    attachment_id: str  # the reply's file
    document_id: str  # the same file, in the chart
    clinic_id: str

    def fill(self, template: str) -> str:
        """A route's path (or a query's value) with the seeded ids in its ``{...}``
        parameters; ``{name}``, the documentation's assets, is one of its files."""
        return template.format(**asdict(self), name="swagger-ui.css")


async def seed(stack: Stack) -> Seeded:
    clinic = await stack.office.api.post("/api/v1/clinics", json={"name": "Downtown Clinic"})
    assert clinic.status_code == 201, clinic.text
    patient_id = await stack.add_patient(NAME, EMAIL)
    files = [(OFFICE_FILE, PDF, "application/pdf")]
    secure_email_id = await stack.send_secure(patient_id, SUBJECT, BODY, files)
    link = await stack.notice_link(EMAIL)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, EMAIL)
        replied = await patient.post(
            f"{message_path}/reply",
            data={"subject": f"RE: {SUBJECT}", "body": REPLY_BODY},
            files=[("attachments", (REPLY_FILE, PDF, "application/pdf"))],
        )
        assert replied.status_code == 303, replied.text
    document = (await filed(stack, patient_id, 1))[0]
    status = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
    reply = status["replies"][0]
    return Seeded(
        patient_id=patient_id,
        secure_email_id=secure_email_id,
        reply_id=reply["id"],
        attachment_id=reply["attachments"][0]["id"],
        document_id=document["id"],
        clinic_id=clinic.json()["id"],
    )


def _calls(dependant: Dependant | None) -> Iterator[Any]:
    for sub in dependant.dependencies if dependant else ():
        yield sub.call
        yield from _calls(sub)


def staff_get_routes(app: FastAPI) -> list[str]:
    """The path of every GET route for practice staff, in the route table's order."""
    found: list[str] = []
    for route in iter_route_contexts(app.routes):
        methods = getattr(route, "methods", None) or set()
        endpoint = getattr(route, "endpoint", None)
        if "GET" not in methods or endpoint is None:
            continue
        module = inspect.getmodule(endpoint)
        in_staff_module = module is not None and module.__name__.startswith(
            ("web.office.", "web.api.")
        )
        takes_staff = {staff_from_cookie, staff_from_bearer} & set(
            _calls(getattr(route, "dependant", None))
        )
        if in_staff_module or takes_staff:
            found.append(str(route.path))
    return found


async def event_ids(stack: Stack) -> set[int]:
    return {event["id"] for event in await stack.office.audit_events()}


async def shown_by_stream(stack: Stack, path: str) -> str:
    """The first server-sent event of ``path``, as the admin's browser receives it."""
    async with streams_served(stack.app) as url, staff_client(url, stack.office) as client:
        async with client.stream("GET", path) as stream:
            assert stream.status_code == 200, path
            return "\n".join(await next_block(stream.aiter_lines()))


async def shown_by(stack: Stack, seeded: Seeded, path: str) -> tuple[int, str]:
    """The status and what the response showed: its text and any file name it carried."""
    if path in STREAMS:
        return 200, await shown_by_stream(stack, path)
    client: httpx.AsyncClient = (
        stack.office.api if path.startswith("/api/") else stack.office.browser
    )
    query = {name: seeded.fill(value) for name, value in QUERIES.get(path, {}).items()}
    response = await client.get(seeded.fill(path), params=query)
    shown = response.content.decode("utf-8", "replace")
    return response.status_code, shown + response.headers.get("content-disposition", "")


def names_patient(event: dict[str, Any], patient_id: str) -> bool:
    return event["patient_id"] == patient_id or patient_id in (event["detail"] or "")


async def test_every_staff_read_of_phi_is_audited_naming_the_patient(stack: Stack) -> None:
    seeded = await seed(stack)
    routes = staff_get_routes(stack.app)
    assert set(NO_PHI) <= set(routes), "NO_PHI names a route the app no longer has"
    assert not {path for path in routes if path.startswith(("/portal", "/m/", "/operator"))}

    failures: list[str] = []
    for path in routes:
        before = await event_ids(stack)
        status, shown = await shown_by(stack, seeded, path)
        added = [e for e in await stack.office.audit_events() if e["id"] not in before]
        phi_shown = [phi for phi in PHI if phi in shown]
        if path in NO_PHI:
            if phi_shown:
                failures.append(f"{path} is on NO_PHI but shows {phi_shown}")
            continue
        if status != 200:
            failures.append(f"{path} answered {status}: fill its ids or query")
        elif not phi_shown:
            failures.append(f"{path} showed no PHI of the patient: is it for NO_PHI?")
        elif not any(names_patient(event, seeded.patient_id) for event in added):
            failures.append(f"{path} shows {phi_shown} and wrote no event naming the patient")
        leaked = [phi for phi in PHI if phi in str(added)]
        if leaked:
            failures.append(f"{path} wrote {leaked} into the audit log")
    assert failures == [], "\n".join(failures)

    # The log's patient filter finds the lists' events too, which name patients in detail.
    found = {e["action"] for e in await stack.office.audit_events(patient_id=seeded.patient_id)}
    lists = {
        AuditAction.OFFICE_PATIENT_SEARCH,
        AuditAction.OFFICE_SENT_LIST,
        AuditAction.OFFICE_INBOX_LIST,
        AuditAction.OFFICE_ALERT_LIST,
    }
    assert {action.value for action in lists} <= found
