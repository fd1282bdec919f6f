"""Fault tests: parts of the product killed, stopped and refused while secure emails live.

Each test runs its own processes where it breaks them (a worker process to kill -9, a
file-backed Temporal server to restart, an S3 server to stop, a PostgreSQL cluster to
stop and start), so nothing another test shares is broken. What each run saw (kills,
duplicates) is reported at the end of the session, under "fault report".
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import FAULT_REPORT
from tests.fixtures.processes import free_port, stop
from tests.fixtures.s3 import S3Server, start_rclone

BIN_DIR = Path(sys.executable).parent
# Lines for the terminal summary: what each fault run saw.
REPORT: list[str] = []


def report(line: str) -> None:
    """A line for the run's "fault report" (printed by ``tests/conftest.py``)."""
    REPORT.append(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    # The lines ride on the test's report: with the suite in several processes, only
    # the one that prints the summary sees them all.
    try:
        return (yield)
    finally:
        item.user_properties.extend((FAULT_REPORT, line) for line in REPORT)
        REPORT.clear()


@dataclass
class RcloneS3:
    """An S3 server of this test's own, to stop and start again on the same port."""

    data_dir: Path
    log_file: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> S3Server:
        return S3Server(
            endpoint=f"127.0.0.1:{self.port}",
            access_key="fault-test",
            secret_key="fault-test-secret",
            data_dir=self.data_dir,
            log_file=self.log_file,
        )

    def start(self) -> None:
        self.process = start_rclone(
            self.data_dir, self.log_file, self.port, "fault-test", "fault-test-secret"
        )
        assert self.process is not None, self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[RcloneS3]:
    data_dir = tmp_path / "s3"
    data_dir.mkdir()
    s3 = RcloneS3(data_dir, tmp_path / "rclone.log", free_port())
    s3.start()
    yield s3
    s3.stop()


class Seeded(random.Random):
    """The random timing of a fault run, with the seed it drew: the report says it, so a
    run that failed can be replayed with ``random.Random(seed)``."""

    def __init__(self) -> None:
        self.drawn = random.randrange(2**32)
        super().__init__(self.drawn)


@pytest.fixture
def rng() -> Seeded:
    return Seeded()


def duplicates(messages: list[EmailMessage]) -> int:
    """Copies beyond the first of each Message-ID: a delivery retried after it went out."""
    ids = [str(message["Message-ID"]) for message in messages]
    return len(ids) - len(set(ids))


def _postgres_bin() -> Path:
    """The newest Debian PostgreSQL's programs (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.skip("no PostgreSQL server programs under /usr/lib/postgresql")
    return found[-1].parent


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster of this test's own (trust, 127.0.0.1, its own port), to stop
    and start again: stopping the shared one would break every other test."""

    data_dir: Path
    port: int

    def _run(self, program: str, *argv: str) -> None:
        command = [str(_postgres_bin() / program), *argv]
        # PostgreSQL refuses to run as root: as the Debian cluster's owner then.
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/securemail"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.data_dir / "server.log")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        # "fast": open connections are ended at once, as a crash or a restart ends them.
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    @property
    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()


@pytest.fixture
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    # Outside pytest's tmp_path: its directories are the test user's alone, and the
    # server may run as another.
    data_dir = Path(tempfile.mkdtemp(prefix="securemail-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
    postgres = OwnPostgres(data_dir / "cluster", free_port())
    if os.geteuid() == 0:
        postgres.data_dir.mkdir(mode=0o700)
        shutil.chown(postgres.data_dir, "postgres", "postgres")
    postgres.init()
    postgres.start()
    try:
        connection = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
        )
        await connection.execute("CREATE DATABASE securemail")
        await connection.close()
        yield postgres
    finally:
        if postgres.running:
            postgres.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
