"""A notice that fails for good raises an office alert saying the patient got nothing."""

from __future__ import annotations

from temporalio.testing import ActivityEnvironment

from activities.replies import AlertActivities
from domain.secure_email import NoticeFailed
from infra.db.engine import make_engine, make_sessionmaker
from tests.fixtures.stack import Stack


async def test_notice_failed_alert_shown_once(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada Lovelace", "ada@example.com")
    secure_email_id = await stack.send_secure(patient_id, "Crown fitting", "Tuesday")
    engine = make_engine(stack.settings.database_url)
    activities = AlertActivities(make_sessionmaker(engine))
    for _ in range(2):  # a retried activity raises one alert
        await ActivityEnvironment().run(
            activities.raise_notice_failed, NoticeFailed(secure_email_id=secure_email_id)
        )
    await engine.dispose()

    alerts = (await stack.office.api.get("/api/v1/alerts")).json()["items"]
    assert [(a["kind"], a["secure_email_id"]) for a in alerts] == [
        ("notice_failed", secure_email_id)
    ]
    assert alerts[0]["message"] == "The secure email to Ada Lovelace could not be delivered"
    menu = await stack.office.browser.get("/")
    assert f'href="/secure-emails/{secure_email_id}"' in menu.text
    assert "could not be delivered" in menu.text and "Crown fitting" not in menu.text
    acked = await stack.office.api.post(f"/api/v1/alerts/{alerts[0]['id']}/ack")
    assert acked.status_code == 200
    assert (await stack.office.api.get("/api/v1/alerts")).json() == {"items": []}
