"""The portal in the patient's language (R20): the switch's choice, else the patient's
``language``, else the browser's Accept-Language, else English; ``<html lang>`` says
which; the office's pages stay English whatever the browser or the portal chose."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from infra.i18n import moment_text
from tests.fixtures.passcodes import another_code
from tests.fixtures.stack import Stack
from tests.web.test_portal import send, sign_in
from web import body_limits, csrf, errors, uploads
from web.languages import LANGUAGE_COOKIE, accepted_language
from web.portal.borrowed_words import BORROWED
from web.portal.language import page_back

ADA = "ada@example.com"
SPANISH = {"accept-language": "es-MX,es;q=0.9,en;q=0.8"}


async def spanish_patient(stack: Stack, email: str = ADA) -> tuple[str, str]:
    """A secure email to a patient who reads Spanish: its id and link."""
    secure_email_id, link = await send(stack, email)
    patient_id = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()[
        "patient_id"
    ]
    changed = await stack.office.api.patch(
        f"/api/v1/patients/{patient_id}", json={"language": "es"}
    )
    assert changed.status_code == 200, changed.text
    return secure_email_id, link


def lang_of(page: httpx.Response) -> str:
    start = page.text.index("<html lang=")
    return page.text[start + 12 : page.text.index('"', start + 12)]


# The patient's language ------------------------------------------------------------------


async def test_link_and_portal_follow_the_patients_language(stack: Stack) -> None:
    secure_email_id, link = await spanish_patient(stack)
    async with stack.browser() as patient:
        # The browser asks for English: the patient's own language comes first.
        opened = await patient.get(link, headers={"accept-language": "en"})
        assert lang_of(opened) == "es"
        assert "Tiene un correo seguro" in opened.text
        assert ">Ver correo seguro</button>" in opened.text
        assert 'value="en" lang="en" class="link">English</button>' in opened.text
        assert '<strong lang="es" aria-current="true">Español</strong>' in opened.text

        malformed = await patient.post(f"{link}/verify", data={"passcode": "12ab"})
        assert malformed.status_code == 422
        assert "Escriba el código de acceso de 8 dígitos" in malformed.text

        message_path = await sign_in(stack, patient, link, ADA)
        message = await patient.get(message_path)
        assert lang_of(message) == "es"
        assert ">Responder a todos</a>" in message.text
        assert (
            ">Bandeja de entrada</a>" in message.text and ">Cerrar sesión</button>" in message.text
        )
        # Dates written the Spanish way, in the practice's zone.
        sent_at = datetime.fromisoformat(
            (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()[
                "sent_at"
            ]
        )
        practice = (await stack.office.api.get("/api/v1/practice")).json()
        assert moment_text(sent_at, "es", practice["time_zone"]) in message.text

        reply = await patient.get(f"{message_path}/reply")
        assert "Fotos, PDF, Word o texto, de hasta 20 MB cada archivo." in reply.text
        refused = await patient.post(f"{message_path}/reply", data={"body": "  "})
        assert refused.status_code == 422
        assert "Escriba un mensaje antes de enviar su respuesta" in refused.text

        await patient.post("/portal/sign-out")
        signed_out = await patient.get("/portal/signed-out", headers=SPANISH)
        assert "Ha cerrado la sesión" in signed_out.text


async def test_wrong_passcode_is_refused_in_spanish(stack: Stack) -> None:
    _, link = await spanish_patient(stack)
    async with stack.browser() as patient:
        await patient.post(f"{link}/passcode")
        passcode = await stack.passcode(ADA, 2)
        wrong = another_code(passcode)
        refused = await patient.post(f"{link}/verify", data={"passcode": wrong})
        assert refused.status_code == 422
        assert "Ese código de acceso no es correcto. Le quedan 4 intentos." in refused.text


async def test_refused_files_are_named_with_reasons_in_spanish(stack: Stack) -> None:
    """The reply form's list of refused files gives each reason in the patient's language,
    what a file was taken for included; the API's words stay English."""
    _, link = await spanish_patient(stack)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, ADA)
        refused = await patient.post(
            f"{message_path}/reply",
            data={"body": "Adjunto mi radiografía."},
            files=[
                ("attachments", ("radiografia.pdf", b"MZ\x90\x00program", "application/pdf")),
                ("attachments", ("virus.exe", b"MZ\x90\x00", "application/octet-stream")),
                ("attachments", ("vacio.png", b"", "image/png")),
            ],
        )
    assert refused.status_code == 422
    assert (
        "radiografia.pdf: el contenido no es un documento PDF (parece un programa de Windows)"
        in refused.text
    )
    assert "virus.exe: no se aceptan archivos de tipo .exe; se permiten:" in refused.text
    assert "vacio.png: el archivo está vacío" in refused.text
    assert "the content is not" not in refused.text and "Adjunto mi radiografía." in refused.text


async def test_english_patient_reads_english(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        opened = await patient.get(link, headers=SPANISH)
        assert lang_of(opened) == "en"
        assert "You have a secure email" in opened.text


# Accept-Language, when no patient is known -----------------------------------------------


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("es-MX,es;q=0.9,en;q=0.8", "es"),
        ("en-US,en;q=0.9,es;q=0.8", "en"),
        ("fr-CA,fr;q=0.9,es;q=0.5", "es"),
        ("fr", "en"),
        ("", "en"),
        ("es;q=0", "en"),
    ],
)
async def test_pages_without_a_patient_follow_the_browser(
    stack: Stack, header: str, language: str
) -> None:
    async with stack.browser() as browser:
        signed_out = await browser.get("/portal", headers={"accept-language": header})
        assert signed_out.status_code == 401
        assert lang_of(signed_out) == language
        # The handler's reason (web.errors), shown in the page's language.
        ended = "Su sesión segura ha terminado." if language == "es" else "Your secure session"
        assert ended in signed_out.text
        bad_link = await browser.get("/m/not-a-link", headers={"accept-language": header})
        assert bad_link.status_code == 404
        assert lang_of(bad_link) == language
        words = "Este enlace no es válido" if language == "es" else "This link is not valid"
        assert f"<h1>{words}</h1>" in bad_link.text


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("es", "es"),
        ("ES-419", "es"),
        ("en;q=0.4, es;q=0.8", "es"),
        ("es;q=0.8, en;q=0.8", "es"),  # equal: the first named
        ("de, *;q=0.1", None),
        ("es;q=abc", None),
        ("es;q=2", None),
        (",,;,", None),
    ],
)
def test_accepted_language(header: str, language: str | None) -> None:
    assert accepted_language(header) == language


# The switch ------------------------------------------------------------------------------


async def test_switch_changes_the_language_and_is_remembered(stack: Stack) -> None:
    _, link = await spanish_patient(stack)
    async with stack.browser() as patient:
        assert lang_of(await patient.get(link)) == "es"
        switched = await patient.post("/portal/language", data={"language": "en", "back": link})
        assert switched.status_code == 303
        assert switched.headers["location"] == link  # the same page
        assert patient.cookies.get(LANGUAGE_COOKIE) == "en"
        again = await patient.get(link)
        assert lang_of(again) == "en" and "You have a secure email" in again.text

        # Remembered on the next pages, signed in too.
        message_path = await sign_in(stack, patient, link, ADA)
        message = await patient.get(message_path)
        assert lang_of(message) == "en" and ">Reply All</a>" in message.text

        # And back to Spanish from the message page, which it comes back to.
        back = await patient.post("/portal/language", data={"language": "es", "back": message_path})
        assert back.headers["location"] == message_path
        assert lang_of(await patient.get(message_path)) == "es"


async def test_switch_form_returns_to_this_page(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        opened = await patient.get(link)
        assert f'<input type="hidden" name="back" value="{link}">' in opened.text
        # A refused Verify (a POST) comes back to the passcode page, which GET shows.
        refused = await patient.post(f"{link}/verify", data={"passcode": "1"})
        assert f'<input type="hidden" name="back" value="{link}/passcode">' in refused.text


@pytest.mark.parametrize(
    "back",
    ["https://evil.example/", "//evil.example/portal", "/patients", "", "/portal\r\nX: y"],
)
def test_switch_returns_only_to_portal_pages(back: str) -> None:
    assert page_back(back) == "/portal"


@pytest.mark.parametrize(
    "back", ["/portal", "/portal/sent", "/portal/messages/abc/reply", "/m/AbC_-1", "/m/x/passcode"]
)
def test_switch_returns_to_portal_pages(back: str) -> None:
    assert page_back(back) == back
    assert page_back(f"{back}?cursor=abc") == f"{back}?cursor=abc"


async def test_switch_refuses_unknown_language_and_missing_token(stack: Stack) -> None:
    async with stack.browser() as browser:
        unknown = await browser.post("/portal/language", data={"language": "fr", "back": "/portal"})
        assert unknown.status_code == 303
        assert browser.cookies.get(LANGUAGE_COOKIE) is None
        # Another site's form: no token, nothing changes.
        forged = await browser.post(
            "/portal/language",
            content="language=es&back=%2Fportal",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert forged.status_code == 403
        assert browser.cookies.get(LANGUAGE_COOKIE) is None


# The office stays English ----------------------------------------------------------------


async def test_office_pages_stay_english(stack: Stack) -> None:
    _, link = await spanish_patient(stack)
    office = stack.office.browser
    async with stack.browser() as patient:
        # A Spanish portal page rendered first, in the same process.
        assert lang_of(await patient.get(link)) == "es"
    office.cookies.set(LANGUAGE_COOKIE, "es")
    for path in ("/", "/patients"):
        page = await office.get(path, headers=SPANISH)
        assert page.status_code == 200
        assert lang_of(page) == "en"
        assert "Skip to content" in page.text and "Ir al contenido" not in page.text
    office.cookies.delete(LANGUAGE_COOKIE)


# Words from elsewhere --------------------------------------------------------------------


def test_borrowed_words_are_their_sources() -> None:
    sources = {
        errors.TEMPORAL_DOWN,
        errors.STORE_DOWN,
        errors.UNREADABLE,
        errors.DATABASE_BUSY,
        csrf.REFUSED,
        uploads.TOO_MANY_FILES,
        uploads.TOO_MANY_FIELDS,
        uploads.UNREADABLE_FORM,
        body_limits.refusal(
            "/portal/messages/x/reply",
            body_limits.limit_for("POST", "/portal/messages/x/reply"),
            body_limits.UPLOADS,
        ),
        body_limits.refusal("/portal/sign-out", body_limits.DEFAULT, body_limits.ANONYMOUS_FORM),
        body_limits.refusal("/portal/messages/x/reply", body_limits.DEFAULT, body_limits.FORM),
    }
    assert sources <= set(BORROWED)
