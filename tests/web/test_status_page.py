"""The status page of an open secure email: what happened first, then the changes, and
Withdraw apart from them, red, behind its confirmation step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_sent_box import add_patient, record_sent


async def test_withdraw_stands_apart_from_resend(settings: Settings, office: Office) -> None:
    patient_id = await add_patient(office, "Ada Lovelace")
    sent = await record_sent(settings, office, patient_id, datetime.now(UTC) - timedelta(hours=1))
    page = (await office.browser.get(f"/secure-emails/{sent.id}")).text

    timeline_at = page.index('id="timeline-heading"')
    changes_at = page.index('id="changes-heading"')
    withdraw_at = page.index('id="withdraw-heading"')
    assert timeline_at < changes_at < withdraw_at
    changes = page[changes_at:withdraw_at]
    assert '<button type="submit" class="secondary">Resend notice</button>' in changes
    assert "Withdraw" not in changes  # not among the everyday changes
    withdraw = page[withdraw_at:]
    assert '<section class="card danger-zone"' in page[changes_at : withdraw_at + 1]
    assert f'<form method="get" action="/secure-emails/{sent.id}/withdraw">' in withdraw
    assert '<button type="submit" class="danger">Withdraw</button>' in withdraw

    # Its confirmation step, red too, is the only form that withdraws.
    confirm = (await office.browser.get(f"/secure-emails/{sent.id}/withdraw")).text
    assert f'<form method="post" action="/secure-emails/{sent.id}/withdraw"' in confirm
    assert '<button type="submit" class="danger">Withdraw</button>' in confirm
