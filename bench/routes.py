"""``python -m bench.routes``: the web app's CPU per request, route by route.

One embedded stack (``securemail dev``, SQLite unless ``--postgres``), the routes of one
secure email's life driven one request at a time, in the order a patient meets them:
Send Secure (the API, one PDF), the link page, the passcode request, the passcode page,
Verify, the message page, the Reply All page, the reply (one PNG), Sign Out. Each
route is driven ``--count`` times in a row (a patient each, each from its own loopback
address as in ``bench.lifecycle``) while nothing else is asked of the web app, and the
web app's process CPU (user + system, from ``/proc``, every thread: the aiosqlite
connection threads and the audit linker included) over that stretch, divided by the
count, is the route's figure. A warm-up patient goes through every route first, so
first-use costs (templates compiled, connections opened) are left out.

``--rounds`` repeats the whole thing on the same stack, each round with new patients:
on a shared machine compare the figures of several rounds, and of runs made back to
back, not one number. The clock's resolution is 10 ms per process, so 40 requests
give a figure good to about 0.25 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.__main__ import compile_bytecode
from bench.common import Mailbox, say
from bench.cpu import cpu_seconds
from bench.lifecycle import PDF, PNG, AlertWatcher, Office, Patient, expect, form_on
from bench.profile import profiles
from tests.fixtures.devstack import securemail_dev
from tests.fixtures.postgres import fresh_postgres

ROUTES = (
    "send secure (POST /api/v1/secure-emails)",
    "link page (GET /m/{token})",
    "passcode request (POST /m/{token}/passcode)",
    "passcode page (GET /m/{token}/passcode)",
    "verify (POST /m/{token}/verify)",
    "message page (GET /portal/messages/{id})",
    "reply page (GET /portal/messages/{id}/reply)",
    "reply (POST /portal/messages/{id}/reply)",
    "sign out (POST /portal/sign-out)",
)


@dataclass
class Visit:
    """One patient's way through the portal: what each step needs from the one before."""

    patient: Patient
    browser: httpx.AsyncClient
    secure_email_id: str = ""
    link: str = ""
    form: dict[str, str] | None = None
    message: str = ""


Step = Callable[[Office, Visit], Awaitable[None]]


async def send(office: Office, visit: Visit) -> None:
    visit.secure_email_id = await office.send(visit.patient, ("plan.pdf", PDF, "application/pdf"))


async def link_page(office: Office, visit: Visit) -> None:
    visit.link = await office.mailbox.link(visit.patient.email)
    visit.form = await form_on(visit.browser, visit.link)


async def passcode_request(_office: Office, visit: Visit) -> None:
    asked = await visit.browser.post(f"{visit.link}/passcode", data=visit.form)
    expect(asked, 303, "passcode request")


async def passcode_page(_office: Office, visit: Visit) -> None:
    visit.form = await form_on(visit.browser, f"{visit.link}/passcode")


async def verify(office: Office, visit: Visit) -> None:
    assert visit.form is not None
    passcode = await office.mailbox.passcode(visit.patient.email, 1)
    verified = await visit.browser.post(
        f"{visit.link}/verify", data={**visit.form, "passcode": passcode}
    )
    expect(verified, 303, "Verify")
    visit.message = verified.headers["location"]


async def message_page(_office: Office, visit: Visit) -> None:
    # The message page's Sign Out form carries the token Sign Out sends later.
    visit.form = await form_on(visit.browser, visit.message)


async def reply_page(_office: Office, visit: Visit) -> None:
    reply = await visit.browser.get(f"{visit.message}/reply")
    expect(reply, 200, "Reply All page")


async def reply(_office: Office, visit: Visit) -> None:
    assert visit.form is not None
    replied = await visit.browser.post(
        f"{visit.message}/reply",
        data={**visit.form, "subject": "RE: Treatment plan", "body": "My card is attached."},
        files=[("attachments", ("card.png", PNG, "image/png"))],
    )
    expect(replied, 303, "Reply All")


async def sign_out(_office: Office, visit: Visit) -> None:
    assert visit.form is not None
    ended = await visit.browser.post("/portal/sign-out", data=visit.form)
    expect(ended, 303, "Sign Out")


STEPS: tuple[Step, ...] = (
    send,
    link_page,
    passcode_request,
    passcode_page,
    verify,
    message_page,
    reply_page,
    reply,
    sign_out,
)


async def _waited(office: Office, visits: list[Visit], step: Step) -> None:
    """What a step waits for that is not the web app's work (the notice, the passcode
    mail), done before its stretch is measured."""
    for visit in visits:
        if step is link_page:
            await office.mailbox.link(visit.patient.email)
        elif step is verify:
            await office.mailbox.passcode(visit.patient.email, 1)


async def one_round(
    office: Office, web_pid: int, patients: list[Patient], profile: Path | None = None
) -> list[float]:
    """CPU ms per request of each route, in ``STEPS`` order; with ``profile``, py-spy's
    samples of the web app over each route's stretch in ``profile/<step>/``."""
    figures = []
    async with AsyncExitStack() as browsers:
        visits = [
            Visit(patient, await browsers.enter_async_context(office.browser(patient)))
            for patient in patients
        ]
        for step in STEPS:
            await _waited(office, visits, step)
            recording = (
                profiles({"web": web_pid}, profile / step.__name__) if profile else nullcontext()
            )
            with recording:
                before = cpu_seconds(web_pid)
                for visit in visits:
                    await step(office, visit)
                figures.append((cpu_seconds(web_pid) - before) / len(visits) * 1000)
    return figures


async def idle_ms_per_second(web_pid: int, seconds: float = 3.0) -> float:
    """The web app's CPU while nobody asks it anything (its own timers: the audit
    linker's round), to read the routes' figures against."""
    before = cpu_seconds(web_pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(web_pid) - before) / seconds * 1000


async def run(args: argparse.Namespace, workdir: Path, database_url: str | None) -> None:
    with securemail_dev(workdir / "stack", database_url=database_url) as stack:
        stack.wait_until_ready()
        web_pid = stack.child("web")
        mailbox = Mailbox(stack.maildir)
        async with httpx.AsyncClient(
            base_url=stack.web,
            headers={"Authorization": f"Bearer {stack.api_token()}"},
            timeout=httpx.Timeout(180.0),
        ) as api:
            office = Office(stack.web, api, mailbox, AlertWatcher(api))
            mailbox.start()
            try:
                everyone = await office.add_patients(1 + args.rounds * args.count)
                say("warm-up: one patient through every route")
                await one_round(office, web_pid, everyone[:1])
                say(f"idle web app: {await idle_ms_per_second(web_pid):.1f} ms CPU per second")
                rounds = []
                for index in range(args.rounds):
                    start = 1 + index * args.count
                    started = time.perf_counter()
                    figures = await one_round(
                        office, web_pid, everyone[start : start + args.count], args.profile
                    )
                    rounds.append(figures)
                    say(
                        f"round {index + 1}: {time.perf_counter() - started:.0f} s, "
                        f"{sum(figures):.1f} ms CPU for one of each"
                    )
            finally:
                mailbox.stop()
    header = " | ".join(f"round {i + 1}" for i in range(len(rounds)))
    say(f"\nweb app CPU ms per request ({args.count} each, one at a time)")
    say(f"| route | {header} | median |")
    say("|---|" + "---|" * (len(rounds) + 1))
    for position, route in enumerate(ROUTES):
        values = sorted(figures[position] for figures in rounds)
        middle = values[len(values) // 2]
        shown = " | ".join(f"{figures[position]:.1f}" for figures in rounds)
        say(f"| {route} | {shown} | {middle:.1f} |")
    totals = sorted(sum(figures) for figures in rounds)
    say(
        f"| one of each | {' | '.join(f'{sum(f):.1f}' for f in rounds)} | "
        f"{totals[len(totals) // 2]:.1f} |"
    )


async def main_async(args: argparse.Namespace) -> None:
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="bench-routes-") as directory:
        workdir = Path(directory)
        if args.postgres:
            async with fresh_postgres("bench_routes") as url:
                await run(args, workdir, url)
        else:
            await run(args, workdir, None)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.routes", description=__doc__)
    parser.add_argument("--count", type=int, default=40, help="requests per route per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--profile",
        type=Path,
        nargs="?",
        const=Path("bench-profiles/routes"),
        help="py-spy samples of each route's stretch (default bench-profiles/routes/<step>/)",
    )
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
