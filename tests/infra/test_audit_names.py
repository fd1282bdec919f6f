"""The Audit page's names (``infra.audit_names``): the practice's own staff and patients
only, the same whether read by id or, for a large export, all at once."""

from __future__ import annotations

from domain.audit import ActorType, AuditAction
from infra.audit import Actor, AuditFilter, audit, find_events
from infra.audit_names import AuditNames, names_in
from infra.db.engine import make_engine, make_sessionmaker
from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_audit_page import admin_id, strangers
from tests.web.test_sent_box import add_patient


async def test_names_of_the_practices_own_people_by_id_or_all_at_once(
    settings: Settings, office: Office
) -> None:
    ada = await add_patient(office, "Ada Lovelace")
    grace = await add_patient(office, "Grace Hopper")
    stranger, their_patient = await strangers(settings)
    admin = await admin_id(office)
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        audit(db, office.practice_id, AuditAction.OFFICE_PATIENT_VIEW,
              Actor(ActorType.STAFF, stranger), patient_id=their_patient)  # fmt: skip
        audit(db, office.practice_id, AuditAction.VIEW, Actor(ActorType.PATIENT, ada))
        await db.commit()
        events = [
            event
            for event in await find_events(db, office.practice_id, AuditFilter())
            if event.patient_id != grace
        ]
        by_id = await names_in(db, office.practice_id, events)
        all_at_once = await names_in(db, office.practice_id, events, many=0)
        nothing = await names_in(db, office.practice_id, [])
    await engine.dispose()
    assert by_id.staff == {admin: "Office admin"}
    # Grace was added (an event names her) but Ada alone is left in the events read.
    assert by_id.patients == {ada: "Ada Lovelace"}
    # Every name of the practice, and still none of another's.
    assert all_at_once.staff == by_id.staff
    assert all_at_once.patients == {ada: "Ada Lovelace", grace: "Grace Hopper"}
    assert nothing == AuditNames()
