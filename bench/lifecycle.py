"""Secure emails through their whole life, over HTTP, as the office and patients do it.

send (API, one PDF) → notice (Maildir) → View Secure Email (passcode request) → passcode
(Maildir) → Verify → Reply All (one PNG) → the office's alert (API). Each patient's
browser is its own HTTP client with its own loopback source address, so the portal's
per-client rate limits count each patient separately, as they would in an office.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.common import Latencies, Mailbox, Poller
from bench.cpu import CpuMeter

PDF = b"%PDF-1.7\n" + b"1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 20
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2048
CSRF = "csrf_token"
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
HTTP_TIMEOUT = httpx.Timeout(180.0)
# One TLS context for every patient's browser: httpx builds a new one per transport,
# loading the CA bundle each time, which took a quarter of the driver's CPU (py-spy),
# on the same two cores as the product it measures.
BROWSER_TLS = ssl.create_default_context()


@dataclass(frozen=True)
class Patient:
    id: str
    email: str
    index: int

    @property
    def source_address(self) -> str:
        # 127.0.0.0/8 is all loopback on Linux: a source address per patient's browser.
        return f"127.1.{self.index // 250}.{self.index % 250 + 1}"


@dataclass
class Office:
    """The practice software (API token) and the shared watchers of mail and alerts."""

    web: str
    api: httpx.AsyncClient
    mailbox: Mailbox
    alerts: AlertWatcher

    async def add_patients(self, count: int, concurrency: int = 8) -> list[Patient]:
        run = uuid.uuid4().hex[:8]
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> Patient:
            email = f"patient-{run}-{i}@example.com"
            async with gate:
                response = await self.api.post(
                    "/api/v1/patients", json={"name": f"Patient {i}", "email": email}
                )
            response.raise_for_status()
            return Patient(str(response.json()["id"]), email, i)

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    async def send(self, patient: Patient, attachment: tuple[str, bytes, str] | None) -> str:
        files = [("attachments", attachment)] if attachment else None
        response = await self.api.post(
            "/api/v1/secure-emails",
            data={
                "patient_id": patient.id,
                "subject": "Treatment plan",
                "body": "Two fillings, upper left. Please reply with your insurance card.",
            },
            files=files,
        )
        if response.status_code != 201:
            raise RuntimeError(f"send answered {response.status_code}: {response.text[:300]}")
        return str(response.json()["id"])

    @asynccontextmanager
    async def browser(self, patient: Patient) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.AsyncHTTPTransport(
            local_address=patient.source_address, verify=BROWSER_TLS
        )
        async with httpx.AsyncClient(
            base_url=self.web, transport=transport, timeout=HTTP_TIMEOUT
        ) as client:
            yield client


async def form_on(browser: httpx.AsyncClient, page: str, **fields: str) -> dict[str, str]:
    """What a browser sends from the form on ``page``: the form token the page was
    rendered with (bound to the browser's cookies, ``web.csrf``), then ``fields``."""
    shown = await browser.get(page)
    found = FORM_TOKEN.search(shown.text)
    if found is None:
        raise RuntimeError(f"{page} answered {shown.status_code} without a form token")
    return {CSRF: found.group(1), **fields}


def expect(response: httpx.Response, code: int, what: str) -> None:
    if response.status_code != code:
        raise RuntimeError(f"{what} answered {response.status_code}: {response.text[:300]}")


class AlertWatcher(Poller):
    """Polls the office's open alerts, acknowledges each and wakes whoever waits for it."""

    def __init__(self, api: httpx.AsyncClient, every: float = 0.1) -> None:
        super().__init__(every)
        self.api = api
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._seen: set[str] = set()

    def expect(self, secure_email_id: str) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        if secure_email_id in self._seen:
            future.set_result(None)
        self._waiting[secure_email_id] = future
        return future

    async def poll(self) -> None:
        response = await self.api.get("/api/v1/alerts")
        items: list[dict[str, Any]] = response.json()["items"] if response.is_success else []
        for item in items:
            secure_email_id = item.get("secure_email_id")
            if secure_email_id is None:
                continue
            self._seen.add(secure_email_id)
            await self.api.post(f"/api/v1/alerts/{item['id']}/ack")
            future = self._waiting.pop(secure_email_id, None)
            if future is not None and not future.done():
                future.set_result(None)


@asynccontextmanager
async def office_of(web: str, token: str, mailbox: Mailbox) -> AsyncIterator[Office]:
    async with httpx.AsyncClient(
        base_url=web, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
    ) as api:
        alerts = AlertWatcher(api)
        mailbox.start()
        alerts.start()
        try:
            yield Office(web, api, mailbox, alerts)
        finally:
            alerts.stop()
            mailbox.stop()


async def one_lifecycle(office: Office, patient: Patient) -> str:
    secure_email_id = await office.send(patient, ("plan.pdf", PDF, "application/pdf"))
    alerted = office.alerts.expect(secure_email_id)
    link = await office.mailbox.link(patient.email)
    async with office.browser(patient) as browser:
        asked = await browser.post(f"{link}/passcode", data=await form_on(browser, link))
        expect(asked, 303, "View Secure Email")
        passcode = await office.mailbox.passcode(patient.email, 1)
        typed = await form_on(browser, f"{link}/passcode", passcode=passcode)
        verified = await browser.post(f"{link}/verify", data=typed)
        expect(verified, 303, "Verify")
        reply = f"{verified.headers['location']}/reply"
        replied = await browser.post(
            reply,
            data=await form_on(
                browser, reply, subject="RE: Treatment plan", body="My card is attached."
            ),
            files=[("attachments", ("card.png", PNG, "image/png"))],
        )
        expect(replied, 303, "Reply All")
    await asyncio.wait_for(alerted, 120)
    return secure_email_id


@dataclass
class Throughput:
    count: int
    seconds: float
    each: Latencies = field(default_factory=Latencies)
    sample_id: str = ""

    @property
    def per_second(self) -> float:
        return self.count / self.seconds


async def lifecycle_throughput(
    office: Office,
    count: int,
    concurrency: int,
    meter: AbstractContextManager[object] | None = None,
) -> Throughput:
    """``count`` lifecycles, ``concurrency`` at once; ``meter`` (a ``CpuMeter``, with a
    profiler beside it) measures the timed part."""
    patients = await office.add_patients(count + 1)
    # Warm-up: the first use of every code path; its workflow is the sample whose
    # history is counted.
    sample_id = await one_lifecycle(office, patients.pop())
    gate = asyncio.Semaphore(concurrency)
    each = Latencies()

    async def run(patient: Patient) -> None:
        async with gate:
            start = time.perf_counter()
            await one_lifecycle(office, patient)
            each.samples.append(time.perf_counter() - start)

    with meter or nullcontext():
        start = time.perf_counter()
        await asyncio.gather(*(run(patient) for patient in patients))
        elapsed = time.perf_counter() - start
    return Throughput(count, elapsed, each, sample_id)


@dataclass
class VerifyLatency:
    right: Latencies
    wrong: Latencies


async def verify_latency(
    office: Office, count: int, concurrency: int, meter: CpuMeter | None = None
) -> VerifyLatency:
    """Verify at ``concurrency`` at once: first a wrong passcode (the update answers
    without any activity), then the right one (the update records "opened" through an
    activity, the web app starts the portal session). ``meter`` measures the right ones."""
    patients = await office.add_patients(count)
    gate = asyncio.Semaphore(concurrency)
    ready: list[tuple[Patient, httpx.AsyncClient, str, dict[str, str], str]] = []
    browsers = AsyncExitStack()

    async def prepare(patient: Patient) -> None:
        async with gate:
            await office.send(patient, None)
            link = await office.mailbox.link(patient.email)
            browser = await browsers.enter_async_context(office.browser(patient))
            asked = await browser.post(f"{link}/passcode", data=await form_on(browser, link))
            expect(asked, 303, "View Secure Email")
            passcode = await office.mailbox.passcode(patient.email, 1)
            # The passcode page's token; a wrong passcode leaves the cookies, so it stays good.
            typed = await form_on(browser, f"{link}/passcode")
            ready.append((patient, browser, link, typed, passcode))

    async with browsers:
        await asyncio.gather(*(prepare(patient) for patient in patients))
        await asyncio.sleep(1.0)  # let the last passcode's status and audit writes settle

        async def timed_verifies(right: bool) -> Latencies:
            latencies = Latencies()
            queue: asyncio.Queue[tuple[Patient, httpx.AsyncClient, str, dict[str, str], str]] = (
                asyncio.Queue()
            )
            for item in ready:
                queue.put_nowait(item)

            async def worker() -> None:
                while not queue.empty():
                    _, browser, link, fields, passcode = queue.get_nowait()
                    typed = passcode if right else f"{(int(passcode) + 1) % 10**8:08d}"
                    start = time.perf_counter()
                    answer = await browser.post(f"{link}/verify", data=fields | {"passcode": typed})
                    latencies.samples.append(time.perf_counter() - start)
                    expect(answer, 303 if right else 422, "Verify")

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies

        wrong = await timed_verifies(right=False)
        with meter or nullcontext():
            right = await timed_verifies(right=True)
    return VerifyLatency(right=right, wrong=wrong)
