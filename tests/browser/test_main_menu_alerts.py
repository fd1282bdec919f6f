"""The Main Menu's live alert, in a real browser: it arrives without a reload and shows
its time exactly as the server writes every office time, in the practice's zone (R16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from infra import alerts
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import Reply
from infra.settings import Settings
from tests.browser.pages import signed_in_page
from tests.conftest import Office
from tests.web.test_local_times import OFFICE_MOMENT
from tests.web.test_sent_box import add_patient, record_sent
from web.templating import moment_in

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ZONE = "America/Chicago"


async def test_live_alert_shows_the_servers_format(
    live_app: str, chromium: Browser, office: Office, settings: Settings
) -> None:
    changed = await office.api.patch("/api/v1/practice", json={"time_zone": ZONE})
    assert changed.status_code == 200, changed.text
    patient_id = await add_patient(office, "Ada Lovelace")
    async with signed_in_page(chromium, live_app, office.email) as page:
        await page.goto("/")
        await expect(page.locator("#alert-count")).to_have_text("0")

        # A reply is recorded while the page stays open.
        sent = await record_sent(
            settings, office, patient_id, datetime.now(UTC) - timedelta(hours=1), replies=1
        )
        engine = make_engine(settings.database_url)
        async with make_sessionmaker(engine)() as db:
            reply = await db.scalar(select(Reply).where(Reply.secure_email_id == sent.id))
            assert reply is not None
            await alerts.raise_for_reply(db, reply)
            await db.commit()
        await engine.dispose()

        item = page.locator("#alert-list li")
        link = item.get_by_role("link", name="New secure email reply from Ada Lovelace")
        await expect(link).to_be_visible(timeout=15_000)
        await expect(page.locator("#alert-count")).to_have_text("1")
        time = item.locator("time")
        instant = await time.get_attribute("datetime")
        assert instant is not None
        live = await time.text_content()
        assert live == moment_in(datetime.fromisoformat(instant), ZONE)
        assert live is not None and OFFICE_MOMENT.fullmatch(live) and "UTC" not in live

        # The page the server renders writes the same words.
        await page.reload()
        await expect(item.locator("time")).to_have_text(live)
