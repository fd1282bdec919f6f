"""The pages that read lists from the database, with a busy practice's years of mail in it.

100,000 secure emails (subject and body encrypted) over two years among 5,000 patients,
a fifth of them answered (a tenth of those replies unread), plus one patient with 1,000
messages of their own (a referring office entered as NonPatient, say). The app runs
in-process (httpx's ASGI transport): the figures are the server's time for a page,
without a network or a browser.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench import seed
from bench.common import Latencies, say, timed
from bench.lifecycle import form_on
from infra.crypto.fields import configure_field_encryption
from infra.crypto.keys import EncryptionKeys
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade_async
from infra.db.models import PortalSession
from infra.security import token_hash
from infra.settings import Settings
from tests.fixtures.postgres import new_database
from web.app import create_app

PATIENTS_PER_1000 = 50
HEAVY_PATIENT_MESSAGES = 1000


@dataclass
class OfficePages:
    database: str
    rows: int
    seconds_to_seed: float
    email_client: Latencies
    sent_box: Latencies
    inbox: Latencies
    heavy_inbox: Latencies


async def portal_cookie(url: str, patient_id: str, email: str) -> str:
    """A live portal session, as Verify would have started it."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        db.add(
            PortalSession(
                token_hash=token_hash(token),
                patient_id=patient_id,
                address_normalised=email,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=12),
            )
        )
        await db.commit()
    await engine.dispose()
    return token


async def measure(client: httpx.AsyncClient, path: str, count: int) -> Latencies:
    for _ in range(5):  # warm-up: templates compiled, statements cached
        (await client.get(path)).raise_for_status()
    latencies = Latencies()
    for _ in range(count):
        start = time.perf_counter()
        response = await client.get(path)
        latencies.samples.append(time.perf_counter() - start)
        response.raise_for_status()
    return latencies


async def office_pages(kind: str, rows: int, workdir: Path, requests: int = 200) -> OfficePages:
    ring = EncryptionKeys.generate()
    configure_field_encryption(ring)
    async with new_database(kind, workdir / "office-pages.db", "securemail_bench") as url:
        await upgrade_async(url)
        engine = make_engine(url)
        with timed() as seeding:
            patients = max(10, rows * PATIENTS_PER_1000 // 1000)
            practice = await seed.practice_with_patients(engine, patients + 1)
            heavy = practice.patient_ids[-1]
            owners = [random.choice(practice.patient_ids[:-1]) for _ in range(rows)]
            owners[:HEAVY_PATIENT_MESSAGES] = [heavy] * min(rows, HEAVY_PATIENT_MESSAGES)
            emails = await seed.secure_emails(engine, practice, owners, spread=timedelta(days=730))
            answered = random.sample(emails, len(emails) // 5)
            await seed.replies(engine, answered, unread=0.1)
        await engine.dispose()
        say(f"  seeded {rows} secure emails, {len(answered)} replies in {seeding[0]:.1f} s")
        typical = owners[-1]
        typical_index = practice.patient_ids.index(typical)
        typical_cookie = await portal_cookie(url, typical, f"patient-{typical_index}@example.com")
        heavy_cookie = await portal_cookie(
            url, heavy, f"patient-{len(practice.patient_ids) - 1}@example.com"
        )
        settings = Settings(
            data_dir=workdir / "data",
            database_url=url,
            public_url="http://portal.test",
            **ring.settings_fields(),
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as c:
                logged_in = await c.post(
                    "/login",
                    data=await form_on(
                        c, "/login", email=practice.staff_email, password=seed.STAFF_PASSWORD
                    ),
                )
                if logged_in.status_code != 303:
                    raise RuntimeError(f"log-in answered {logged_in.status_code}")
                email_client = await measure(c, "/email-client", requests)
                sent_box = await measure(c, "/email-client/sent", requests)
            async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as c:
                c.cookies.set("portal_session", typical_cookie)
                inbox = await measure(c, "/portal", requests)
            async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as c:
                c.cookies.set("portal_session", heavy_cookie)
                heavy_inbox = await measure(c, "/portal", max(20, requests // 4))
    return OfficePages(kind, rows, seeding[0], email_client, sent_box, inbox, heavy_inbox)
