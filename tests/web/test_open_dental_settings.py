"""The Open Dental connector's settings: ``/api/v1/integrations/open-dental`` and the
Settings page, against the Open Dental stand-in and the Temporal dev server (the
schedule is real)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import ScheduleIntervalSpec
from temporalio.testing import WorkflowEnvironment

from domain.errors import FieldRefused
from domain.open_dental import (
    CONNECTED,
    KEYS_REFUSED,
    UNREACHABLE,
    check_base_url,
    schedule_id_for,
)
from infra.db.engine import make_engine, make_sessionmaker
from infra.open_dental import mark_keys_refused
from infra.open_dental_schedule import is_paused, pause_schedule
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.open_dental import CUSTOMER_KEY, DEVELOPER_KEY, FakeOpenDental
from tests.fixtures.processes import free_port
from tests.fixtures.rows import raw_rows

URL = "/api/v1/integrations/open-dental"


@pytest.fixture
def settings(settings: Settings, dev_server_env: WorkflowEnvironment) -> Settings:
    # The app's schedules go to the dev server: the time-skipping one has none.
    target = dev_server_env.client.service_client.config.target_host
    return settings.model_copy(update={"temporal_address": target})


def connection(fake: FakeOpenDental, **changes: object) -> dict[str, object]:
    return {
        "base_url": fake.url,
        "developer_key": DEVELOPER_KEY,
        "customer_key": CUSTOMER_KEY,
        "document_category": 187,
        "sync_minutes": 15,
        **changes,
    }


async def test_connect_open_dental_shows_the_keys_masked(
    office: Office, open_dental_api: FakeOpenDental, dev_server_env: WorkflowEnvironment
) -> None:
    assert (await office.api.get(URL)).status_code == 404
    saved = await office.api.put(URL, json=connection(open_dental_api, sync_minutes=20))
    assert saved.status_code == 200, saved.text
    shown = (await office.api.get(URL)).json()
    assert shown["base_url"] == open_dental_api.url
    assert shown["developer_key"] == "••••" + DEVELOPER_KEY[-4:]
    assert shown["customer_key"] == "••••" + CUSTOMER_KEY[-4:]
    assert (shown["document_category"], shown["sync_minutes"]) == (187, 20)
    assert DEVELOPER_KEY not in saved.text and CUSTOMER_KEY not in saved.text

    schedule = dev_server_env.client.get_schedule_handle(schedule_id_for(office.practice_id))
    described = await schedule.describe()
    assert described.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(minutes=20))]
    assert described.schedule.state.paused is False

    # A PUT that leaves the keys out keeps them; a new interval moves the schedule.
    kept = await office.api.put(URL, json={"base_url": open_dental_api.url, "sync_minutes": 30})
    assert kept.status_code == 200, kept.text
    assert kept.json()["customer_key"] == shown["customer_key"]
    assert kept.json()["document_category"] is None
    described = await schedule.describe()
    assert described.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(minutes=30))]
    tested = await office.api.post(f"{URL}/test")
    assert tested.json() == {"connected": True, "message": CONNECTED}


async def test_open_dental_keys_are_stored_encrypted(
    office: Office, settings: Settings, open_dental_api: FakeOpenDental
) -> None:
    assert (await office.api.put(URL, json=connection(open_dental_api))).status_code == 200
    (stored,) = await raw_rows(
        settings.database_url,
        "SELECT developer_key, customer_key FROM open_dental_integrations WHERE practice_id = :id",
        id=office.practice_id,
    )
    assert all(value.startswith("v2:") for value in stored)
    assert DEVELOPER_KEY not in "".join(stored) and CUSTOMER_KEY not in "".join(stored)


async def test_open_dental_change_is_audited_without_the_keys(
    office: Office, open_dental_api: FakeOpenDental
) -> None:
    await office.api.put(URL, json=connection(open_dental_api))
    await office.api.put(URL, json=connection(open_dental_api, customer_key="AnotherKey9876"))
    details = [e["detail"] for e in await office.audit_events(action="office.settings_change")]
    assert len(details) == 2
    assert "Open Dental: customer key changed" in details
    assert any(f"base_url: none → {open_dental_api.url}" in d for d in details)
    for secret in (DEVELOPER_KEY, CUSTOMER_KEY, "AnotherKey9876", "9876", "X2z"):
        assert all(secret not in detail for detail in details)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_url": "http://api.opendental.example/api/v1"}, "base_url"),
        ({"base_url": "ftp://127.0.0.1/api"}, "base_url"),
        ({"base_url": "not an address"}, "base_url"),
        ({"sync_minutes": 1}, "sync_minutes"),
        ({"sync_minutes": 100_000}, "sync_minutes"),
        ({"document_category": 0}, "document_category"),
        ({"developer_key": ""}, "developer_key"),
        ({"cc": "x"}, "cc"),
    ],
)
async def test_open_dental_change_refused_names_the_field(
    office: Office, open_dental_api: FakeOpenDental, body: dict[str, object], field: str
) -> None:
    refused = await office.api.put(URL, json=connection(open_dental_api) | body)
    assert refused.status_code == 422, refused.text
    assert field in {item["loc"][-1] for item in refused.json()["detail"]}
    assert (await office.api.get(URL)).status_code == 404


async def test_first_open_dental_connection_needs_both_keys(
    office: Office, open_dental_api: FakeOpenDental
) -> None:
    refused = await office.api.put(URL, json={"base_url": open_dental_api.url})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "developer_key"]
    assert "none stored yet" in refused.json()["detail"][0]["msg"]


def test_base_url_is_https_but_for_this_machine_in_development() -> None:
    cloud = "https://api.opendental.com/api/v1/"
    assert check_base_url(cloud, allow_local_http=False) == cloud.rstrip("/")
    assert check_base_url("http://localhost:8765/api/v1", allow_local_http=True)
    with pytest.raises(FieldRefused):
        check_base_url("http://127.0.0.1:8765/api/v1", allow_local_http=False)
    with pytest.raises(FieldRefused):
        check_base_url("http://10.0.0.5/api/v1", allow_local_http=True)


async def test_connection_test_says_keys_refused_or_unreachable(
    office: Office, open_dental_api: FakeOpenDental
) -> None:
    await office.api.put(URL, json=connection(open_dental_api, customer_key="WrongKey0000"))
    refused = await office.api.post(f"{URL}/test")
    assert refused.json() == {"connected": False, "message": KEYS_REFUSED}
    assert open_dental_api.requests[-1] == "GET /api/v1/patients/Simple?Limit=1"
    nowhere = f"http://127.0.0.1:{free_port()}/api/v1"
    await office.api.put(URL, json={"base_url": nowhere})
    unreachable = await office.api.post(f"{URL}/test")
    assert unreachable.json() == {"connected": False, "message": UNREACHABLE}


async def test_open_dental_settings_page_saves_and_tests(
    office: Office, open_dental_api: FakeOpenDental
) -> None:
    page = await office.browser.get("/settings/open-dental")
    assert page.status_code == 200
    assert "Test connection" not in page.text  # nothing to test before it is connected
    assert 'href="/settings/open-dental"' in (await office.browser.get("/settings")).text
    form = {
        "base_url": open_dental_api.url,
        "developer_key": DEVELOPER_KEY,
        "customer_key": CUSTOMER_KEY,
        "document_category": "",
        "sync_minutes": "15",
    }
    saved = await office.browser.post("/settings/open-dental", data=form)
    assert saved.status_code == 303, saved.text
    page = await office.browser.get(saved.headers["location"])
    assert "Open Dental settings saved." in page.text
    assert "••••" + CUSTOMER_KEY[-4:] in page.text and CUSTOMER_KEY not in page.text
    tested = await office.browser.post("/settings/open-dental/test", data={})
    assert CONNECTED in tested.text
    refused = await office.browser.post(
        "/settings/open-dental", data=form | {"sync_minutes": "2", "developer_key": ""}
    )
    assert refused.status_code == 422
    assert "Sync every (minutes): enter a whole number from 5" in refused.text


async def test_sync_now_starts_a_sync(
    office: Office, open_dental_api: FakeOpenDental, dev_server_env: WorkflowEnvironment
) -> None:
    assert (await office.api.post(f"{URL}/sync")).status_code == 404
    await office.api.put(URL, json=connection(open_dental_api))
    started = await office.api.post(f"{URL}/sync")
    assert started.status_code == 202, started.text
    assert started.json() == {"detail": "A sync of patients from Open Dental has started."}
    handle = dev_server_env.client.get_workflow_handle(f"open-dental-sync-{office.practice_id}-now")
    described = await handle.describe()
    assert described.workflow_type == "OpenDentalSyncWorkflow"
    # Again while it runs: that sync, not a second one.
    again = await office.api.post(f"{URL}/sync")
    assert again.status_code == 202
    assert (await handle.describe()).run_id == described.run_id
    await handle.terminate()


async def test_keys_refused_show_on_the_main_menu_until_saved_again(
    office: Office,
    settings: Settings,
    open_dental_api: FakeOpenDental,
    dev_server_env: WorkflowEnvironment,
) -> None:
    await office.api.put(URL, json=connection(open_dental_api))
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        # What the sync records when Open Dental answers 401 (tests/workflows).
        assert await mark_keys_refused(db, office.practice_id)
        assert not await mark_keys_refused(db, office.practice_id)
    await engine.dispose()
    await pause_schedule(dev_server_env.client, office.practice_id)
    menu = await office.browser.get("/")
    assert "Open Dental refused the keys" in menu.text
    assert (await office.api.get(URL)).json()["keys_refused_at"] is not None
    paused = await office.api.post(f"{URL}/sync")
    assert paused.status_code == 409
    assert "syncing is paused" in paused.text
    # The same keys saved again (the office enabled them in Open Dental): resumed.
    resumed = await office.api.put(URL, json=connection(open_dental_api))
    assert resumed.json()["keys_refused_at"] is None
    assert not await is_paused(dev_server_env.client, office.practice_id)
    assert "Open Dental refused the keys" not in (await office.browser.get("/")).text


async def test_clinics_get_their_open_dental_clinic_numbers(
    office: Office, other_office: Office, open_dental_api: FakeOpenDental
) -> None:
    downtown = await office.api.post(
        "/api/v1/clinics", json={"name": "Downtown", "sender_address": "d@smile-dental.example"}
    )
    uptown = await office.api.post(
        "/api/v1/clinics", json={"name": "Uptown", "sender_address": "u@smile-dental.example"}
    )
    elsewhere = await other_office.api.post(
        "/api/v1/clinics", json={"name": "Theirs", "sender_address": "t@other.example"}
    )
    ids = downtown.json()["id"], uptown.json()["id"], elsewhere.json()["id"]
    numbers = {ids[0]: 3, ids[1]: 7}
    saved = await office.api.put(URL, json=connection(open_dental_api, clinic_numbers=numbers))
    assert saved.status_code == 200, saved.text
    assert (await office.api.get(URL)).json()["clinic_numbers"] == numbers
    # Left out: kept. Another practice's clinic, or one number twice: refused, kept.
    kept = await office.api.put(URL, json=connection(open_dental_api))
    assert kept.json()["clinic_numbers"] == numbers
    for refused_numbers in ({ids[2]: 4}, {ids[0]: 5, ids[1]: 5}, {ids[0]: 0}):
        body = connection(open_dental_api, clinic_numbers=refused_numbers)
        refused = await office.api.put(URL, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"][1] == "clinic_numbers"
    assert (await office.api.get(URL)).json()["clinic_numbers"] == numbers
    cleared = await office.api.put(URL, json=connection(open_dental_api, clinic_numbers={}))
    assert cleared.json()["clinic_numbers"] == {}
    details = [e["detail"] for e in await office.audit_events(action="office.settings_change")]
    shown = ", ".join(f"{clinic} = {number}" for clinic, number in sorted(numbers.items()))
    assert f"Open Dental ClinicNums: {shown}" in details
    assert "Open Dental ClinicNums: none" in details


async def test_sync_now_on_the_page(
    office: Office, open_dental_api: FakeOpenDental, dev_server_env: WorkflowEnvironment
) -> None:
    before = await office.browser.post("/settings/open-dental/sync", data={})
    assert before.status_code == 409
    assert "Open Dental is not connected" in before.text
    untested = await office.browser.post("/settings/open-dental/test", data={})
    assert untested.status_code == 409
    await office.api.put(URL, json=connection(open_dental_api))
    started = await office.browser.post("/settings/open-dental/sync", data={})
    assert started.status_code == 303
    page = await office.browser.get(started.headers["location"])
    assert "A sync of patients from Open Dental has started." in page.text
    handle = dev_server_env.client.get_workflow_handle(f"open-dental-sync-{office.practice_id}-now")
    assert (await handle.describe()).workflow_type == "OpenDentalSyncWorkflow"
    await handle.terminate()
