"""``python -m bench.routes``: the web app's CPU per request, route by route.

An embedded stack (``securemail dev``, SQLite unless ``--postgres``), the routes of one
secure email's life driven one request at a time, in the order a patient meets them:
Send Secure (the API, one PDF), the link page, the passcode request, the passcode page,
Verify, the message page, the Reply All page, the reply (one PNG), Sign Out. Each
route is driven ``--count`` times in a row (a patient each, each from its own loopback
address as in ``bench.lifecycle``) while nothing else is asked of the web app, and the
web app's process CPU (user + system, from ``/proc``, every thread: the aiosqlite
connection threads and the audit linker included) over that stretch, divided by the
count, is the route's figure. A warm-up patient goes through every route first, so
first-use costs (templates compiled, connections opened) are left out.

``--against REF`` compares with another commit: its code (``git archive``) runs a stack
of its own beside this checkout's, and the rounds alternate between the two, so both
see the same load on a shared machine. ``--rounds`` rounds each, with new patients.
``--pages N`` measures the portal's pages (link, passcode, message, Reply All) more
finely instead: one signed-in patient per stack loads each page N times in a row, in
blocks (``--rounds``) whose order between the stacks alternates.

Beside each CPU figure, the SQL statements the route executes per request, counted in
the web app (``web.statement_counts``, installed because the bench sets its variable;
per route template, never a path): steady where the CPU moves by milliseconds between
stacks of the same code. A commit without the counter shows "-".

The clock's resolution is 10 ms per process: 40 requests give a figure good to about
0.25 ms. The load of a shared machine moves it far more: two stacks of the same code
differed by up to 2 ms a page (median of 4 blocks of 50 loads, load average 4 to 9).
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from bench.__main__ import PACKAGES, ROOT, compile_bytecode
from bench.common import Mailbox, say
from bench.cpu import CpuMeter, cpu_seconds, idle_cpu
from bench.lifecycle import (
    BROWSER_TLS,
    HTTP_TIMEOUT,
    PDF,
    PNG,
    AlertWatcher,
    Office,
    Patient,
    expect,
    form_on,
)
from bench.profile import profiles
from tests.fixtures.devstack import securemail_dev
from tests.fixtures.postgres import fresh_postgres
from web.statement_counts import STATEMENT_LOG_ENV

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
# A new connection for each request: a request sent on a kept connection just as the
# server closes it (uvicorn's 5 s keep-alive; the stretches between one patient's
# requests are seconds long) is lost ("server disconnected", a reset), which a browser
# retries and the bench cannot (a passcode is used once). Both variants pay the same.
BROWSER_LIMITS = httpx.Limits(max_keepalive_connections=0)


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


@asynccontextmanager
async def browser_of(office: Office, patient: Patient) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=patient.source_address, verify=BROWSER_TLS)
    async with httpx.AsyncClient(
        base_url=office.web,
        transport=transport,
        timeout=HTTP_TIMEOUT,
        limits=BROWSER_LIMITS,
    ) as client:
        yield client


async def _waited(office: Office, visits: list[Visit], step: Step) -> None:
    """What a step waits for that is not the web app's work (the notice, the passcode
    mail), done before its stretch is measured."""
    for visit in visits:
        if step is link_page:
            await office.mailbox.link(visit.patient.email)
        elif step is verify:
            await office.mailbox.passcode(visit.patient.email, 1)


class StatementLog:
    """The web app's statement counts (``web.statement_counts``), one line a request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def skip(self) -> None:
        """Forgets what is logged so far."""
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    async def per_request(self, requests: int) -> float | None:
        """Statements per request of the route asked most since ``skip``, once its
        ``requests`` are logged (each is logged just after its answer has gone out); None
        for a web app without the counter."""
        if not self.path.exists():  # the web app opens it as it starts, if it counts
            return None
        found: dict[str, list[int]] = {}
        for _ in range(100):
            with self.path.open(encoding="utf-8") as log:
                log.seek(self.offset)
                found = {}
                for line in log.read().splitlines():
                    route, _, count = line.rpartition(" ")
                    found.setdefault(route, []).append(int(count))
            if sum(len(counts) for counts in found.values()) >= requests:
                break
            await asyncio.sleep(0.02)
        self.skip()
        if not found:
            return None
        counts = max(found.values(), key=len)
        return sum(counts) / len(counts)


def statements(figure: float | None) -> str:
    """Two decimals at most: a statement some requests make (a session's idle clock
    moved every 30 s, a limit's window begun) shows as a fraction."""
    return "-" if figure is None else f"{figure:.2f}".rstrip("0").rstrip(".")


@dataclass
class Variant:
    """One stack under test: this checkout's code, or another commit's."""

    name: str
    office: Office
    web_pid: int
    patients: list[Patient]
    statement_log: StatementLog
    rounds: list[list[float]] = field(default_factory=list)
    # Statements per request of each route, in ``STEPS`` order, per round.
    statement_rounds: list[list[float | None]] = field(default_factory=list)

    async def round(self, count: int, profile: Path | None) -> None:
        """CPU ms per request of each route, in ``STEPS`` order; with ``profile``,
        py-spy's samples of the web app over each route's stretch in
        ``profile/<variant>/<step>/`` (the variant: ``this`` or the ``--against`` commit)."""
        patients, self.patients = self.patients[:count], self.patients[count:]
        figures = []
        counted: list[float | None] = []
        async with AsyncExitStack() as browsers:
            visits = [
                Visit(patient, await browsers.enter_async_context(browser_of(self.office, patient)))
                for patient in patients
            ]
            for step in STEPS:
                await _waited(self.office, visits, step)
                recording = (
                    profiles({"web": self.web_pid}, profile / self.name / step.__name__)
                    if profile
                    else nullcontext()
                )
                self.statement_log.skip()
                with recording:
                    before = cpu_seconds(self.web_pid)
                    for visit in visits:
                        await step(self.office, visit)
                    figures.append((cpu_seconds(self.web_pid) - before) / len(visits) * 1000)
                counted.append(await self.statement_log.per_request(len(visits)))
        self.rounds.append(figures)
        self.statement_rounds.append(counted)


def code_of(ref: str, directory: Path) -> Path:
    """``ref``'s packages in ``directory``, their bytecode written (``compile_bytecode``)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, *PACKAGES], check=True, capture_output=True
    ).stdout
    directory.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    for package in PACKAGES:
        compileall.compile_dir(directory / package, quiet=1)
    return directory


@asynccontextmanager
async def variant(
    name: str, workdir: Path, database_url: str | None, code: Path | None, patients: int
) -> AsyncIterator[Variant]:
    """A stack running ``code`` (its directory first on ``PYTHONPATH``) or this checkout's,
    its patients added and a warm-up patient through every route."""
    kept = os.environ.get("PYTHONPATH")
    if code is not None:
        os.environ["PYTHONPATH"] = str(code)
    statement_log = StatementLog(workdir.with_name(f"{workdir.name}-statements.log"))
    os.environ[STATEMENT_LOG_ENV] = str(statement_log.path)
    try:
        running = securemail_dev(workdir, database_url=database_url)
        stack = running.__enter__()
    finally:
        os.environ.pop(STATEMENT_LOG_ENV)
        if code is not None:
            if kept is None:
                os.environ.pop("PYTHONPATH")
            else:
                os.environ["PYTHONPATH"] = kept
    try:
        stack.wait_until_ready()
        mailbox = Mailbox(stack.maildir)
        async with httpx.AsyncClient(
            base_url=stack.web,
            headers={"Authorization": f"Bearer {stack.api_token()}"},
            timeout=HTTP_TIMEOUT,
        ) as api:
            office = Office(stack.web, api, mailbox, AlertWatcher(api))
            mailbox.start()
            try:
                everyone = await office.add_patients(patients + 1)
                tried = Variant(name, office, stack.child("web"), everyone, statement_log)
                await tried.round(1, None)
                tried.rounds.clear()
                tried.statement_rounds.clear()
                yield tried
            finally:
                mailbox.stop()
    finally:
        running.__exit__(None, None, None)


PAGES: dict[str, Callable[[Visit], str]] = {
    "link page (GET /m/{token})": lambda visit: visit.link,
    "passcode page (GET /m/{token}/passcode)": lambda visit: f"{visit.link}/passcode",
    "message page (GET /portal/messages/{id})": lambda visit: visit.message,
    "reply page (GET /portal/messages/{id}/reply)": lambda visit: f"{visit.message}/reply",
}


async def pages(variants: list[Variant], loads: int, blocks: int, stacks: AsyncExitStack) -> None:
    """Each page of ``PAGES`` ``loads`` times in a row per block, per stack, by one patient
    signed in on each; the stacks' order alternates from block to block."""
    visits = []
    for tried in variants:
        patient = tried.patients.pop()
        visit = Visit(patient, await stacks.enter_async_context(browser_of(tried.office, patient)))
        for step in STEPS[: STEPS.index(message_page) + 1]:
            await _waited(tried.office, [visit], step)
            await step(tried.office, visit)
        visits.append(visit)
    found: dict[tuple[str, str], list[float]] = {}
    counted: dict[tuple[str, str], float | None] = {}
    for block in range(blocks):
        pairs = list(zip(variants, visits, strict=True))
        for page, address in PAGES.items():
            for tried, visit in pairs if block % 2 == 0 else pairs[::-1]:
                tried.statement_log.skip()
                before = cpu_seconds(tried.web_pid)
                for _ in range(loads):
                    expect(await visit.browser.get(address(visit)), 200, page)
                used = (cpu_seconds(tried.web_pid) - before) / loads * 1000
                found.setdefault((page, tried.name), []).append(used)
                counted[page, tried.name] = await tried.statement_log.per_request(loads)
    say(f"\nweb app CPU ms per page load ({loads} loads a block, median of {blocks} blocks)")
    say("and SQL statements per load (the last block's)")
    say(f"| page | {' | '.join(f'{v.name} ms | statements' for v in variants)} | blocks |")
    say("|---|" + "---|---|" * len(variants) + "---|")
    for page in PAGES:
        medians = " | ".join(
            f"{statistics.median(found[page, v.name]):.1f} | {statements(counted[page, v.name])}"
            for v in variants
        )
        each = "; ".join(
            f"{v.name}: " + ", ".join(f"{x:.1f}" for x in found[page, v.name]) for v in variants
        )
        say(f"| {page} | {medians} | {each} |")


def _statements_of(variant: Variant, at: int) -> str:
    """The route's statements per request (the sum of every route's for ``at`` < 0),
    averaged over the rounds; "-" without a counter."""
    per_round = []
    for counted in variant.statement_rounds:
        chosen = counted if at < 0 else counted[at : at + 1]
        if None in chosen:
            return "-"
        per_round.append(sum(figure for figure in chosen if figure is not None))
    return statements(statistics.mean(per_round)) if per_round else "-"


def table(variants: list[Variant], count: int) -> None:
    say(f"\nweb app CPU ms per request ({count} each, one at a time; median of the rounds)")
    say("and SQL statements per request")
    names = " | ".join(f"{v.name} ms | statements" for v in variants)
    say(f"| route | {names} | rounds |")
    say("|---|" + "---|---|" * len(variants) + "---|")
    rows = [*((route, position) for position, route in enumerate(ROUTES)), ("one of each", -1)]
    for route, position in rows:

        def value(figures: list[float], at: int = position) -> float:
            return sum(figures) if at < 0 else figures[at]

        medians = " | ".join(
            f"{statistics.median(value(f) for f in v.rounds):.1f} | {_statements_of(v, position)}"
            for v in variants
        )
        each = "; ".join(
            f"{v.name}: " + ", ".join(f"{value(f):.1f}" for f in v.rounds) for v in variants
        )
        say(f"| {route} | {medians} | {each} |")


async def run(args: argparse.Namespace, workdir: Path) -> None:
    patients = 1 if args.pages else args.rounds * args.count
    async with AsyncExitStack() as stacks:

        async def database(name: str) -> str | None:
            """A fresh PostgreSQL database per stack with ``--postgres``: two stacks on one
            would share its staff (the second's ``securemail dev`` refuses to start) and,
            across a migration, its schema."""
            if not args.postgres:
                return None
            return await stacks.enter_async_context(fresh_postgres(f"bench_routes_{name}"))

        variants = []
        if args.against:
            code = code_of(args.against, workdir / "against")
            url = await database("against")
            variants.append(
                await stacks.enter_async_context(
                    variant(args.against, workdir / "stack-against", url, code, patients)
                )
            )
        url = await database("this")
        variants.append(
            await stacks.enter_async_context(
                variant("this", workdir / "stack", url, None, patients)
            )
        )
        if args.pages:
            await pages(variants, args.pages, args.rounds, stacks)
            return
        for tried in variants:
            # The web app's own timers (the audit linker's round), to read the figures against.
            idle = await idle_cpu(partial(CpuMeter, {"web": [tried.web_pid]}), windows=1)
            say(f"idle web app ({tried.name}): {idle['web'] * 1000:.1f} ms/s")
        for index in range(args.rounds):
            for tried in variants:
                started = time.perf_counter()
                await tried.round(args.count, args.profile)
                say(
                    f"round {index + 1} ({tried.name}): {time.perf_counter() - started:.0f} s, "
                    f"{sum(tried.rounds[-1]):.1f} ms CPU for one of each, load average "
                    f"{os.getloadavg()[0]:.1f}"
                )
    table(variants, args.count)


async def main_async(args: argparse.Namespace) -> None:
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="bench-routes-") as directory:
        await run(args, Path(directory))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.routes", description=__doc__)
    parser.add_argument("--count", type=int, default=40, help="requests per route per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pages", type=int, help="each portal page this many times a block, --rounds blocks"
    )
    parser.add_argument("--against", help="a commit to compare with, its rounds alternating")
    parser.add_argument(
        "--profile",
        type=Path,
        nargs="?",
        const=Path("bench-profiles/routes"),
        help="py-spy samples of each route's stretch (default bench-profiles/routes/)",
    )
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
