"""The Audit page's names (``infra.audit_names``): the practice's own staff, patients and
clinics only, and the clinic each event is about, the same whether read by id or, for a
large export, all at once."""

from __future__ import annotations

from domain.audit import ActorType, AuditAction
from domain.reach import Reach
from infra.audit import Actor, AuditFilter, audit, find_events
from infra.audit_names import AuditNames, EventClinics, clinics_in, names_in
from infra.db.engine import make_engine, make_sessionmaker
from infra.settings import Settings
from tests.conftest import Office
from tests.web.test_api_clinics import add_clinic
from tests.web.test_audit_clinics import message_for, move, sent_by_another_practice
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
        by_id = await names_in(db, Reach(office.practice_id), events)
        all_at_once = await names_in(db, Reach(office.practice_id), events, many=0)
        nothing = await names_in(db, Reach(office.practice_id), [])
    await engine.dispose()
    assert by_id.staff == {admin: "Office admin"}
    # Grace was added (an event names her) but Ada alone is left in the events read.
    assert by_id.patients == {ada: "Ada Lovelace"}
    # Every name of the practice, and still none of another's.
    assert all_at_once.staff == by_id.staff
    assert all_at_once.patients == {ada: "Ada Lovelace", grace: "Grace Hopper"}
    assert nothing == AuditNames()


async def test_clinics_of_events_by_id_or_all_at_once(
    settings: Settings, office: Office, other_office: Office
) -> None:
    downtown = (await add_clinic(office))["id"]
    uptown = (await add_clinic(office, name="Uptown", sender_address="up@smile.example"))["id"]
    ada = await add_patient(office, "Ada Lovelace")
    await move(office, ada, downtown)
    sent = await message_for(settings, office, ada, downtown)
    await move(office, ada, uptown)
    zed, their_message = await sent_by_another_practice(settings, other_office)
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        audit(db, office.practice_id, AuditAction.OFFICE_VIEW, Actor(ActorType.STAFF),
              patient_id=zed, secure_email_id=their_message)  # fmt: skip
        await db.commit()
        events = await find_events(db, office.practice_id, AuditFilter())
        by_id = await names_in(db, Reach(office.practice_id), events)
        all_at_once = await names_in(db, Reach(office.practice_id), events, many=0)
        alone = await clinics_in(db, office.practice_id, events)
        alone_all_at_once = await clinics_in(db, office.practice_id, events, many=0)
        no_events = await clinics_in(db, office.practice_id, [])
    await engine.dispose()
    # The practice's clinics, every one, whichever the events name.
    assert by_id.clinics == {downtown: "Downtown Clinic", uptown: "Uptown"}
    assert by_id.event_clinics == EventClinics(of_messages={sent: downtown},
                                               of_patients={ada: uptown})  # fmt: skip
    assert all_at_once.clinics == by_id.clinics
    assert all_at_once.event_clinics == by_id.event_clinics
    assert alone == alone_all_at_once == by_id.event_clinics
    assert no_events == EventClinics()
    clinic_names = {
        (event.action, event.secure_email_id is not None): by_id.clinic_name(event)
        for event in events
    }
    assert clinic_names[(AuditAction.SEND.value, True)] == "Downtown Clinic"
    assert clinic_names[(AuditAction.PATIENT_ADD.value, False)] == "Uptown"
    assert clinic_names[(AuditAction.SETTINGS_CHANGE.value, False)] is None
    # Another practice's message and patient, named in this log: no clinic.
    assert clinic_names[(AuditAction.OFFICE_VIEW.value, True)] is None
