"""Fault tests: parts of the product killed, stopped and refused while secure emails live.

Each test runs its own processes where it breaks them (a worker process to kill -9, a
file-backed Temporal server to restart, an S3 server to stop), so nothing another test
shares is broken. What each run saw (kills, duplicates) is reported at the end of the
session, under "fault report".
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from infra.settings import Settings
from tests.fixtures.s3 import RCLONE, S3Server
from workers.smtp_catcher import read_maildir

BIN_DIR = Path(sys.executable).parent
# Lines for the terminal summary: what each fault run saw.
REPORT: list[str] = []


def report(line: str) -> None:
    REPORT.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("fault report")
        for line in REPORT:
            terminalreporter.write_line(line)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def until(
    check: Callable[[], Any], what: str, seconds: float = 60.0, every: float = 0.1
) -> None:
    """Polls ``check`` (returning something truthy when done, or an awaitable of it)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f} s")
        await asyncio.sleep(every)


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as the ``SECURE_EMAIL_*`` environment a process of ours reads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_EMAIL_")}
    env.update(
        {
            "SECURE_EMAIL_DATA_DIR": str(settings.data_dir),
            "SECURE_EMAIL_DATABASE_URL": settings.database_url,
            "SECURE_EMAIL_PUBLIC_URL": settings.public_url,
            "SECURE_EMAIL_TEMPORAL_ADDRESS": settings.temporal_address,
            "SECURE_EMAIL_TASK_QUEUE": settings.task_queue,
            "SECURE_EMAIL_S3_ENDPOINT": settings.s3_endpoint,
            "SECURE_EMAIL_S3_ACCESS_KEY": settings.s3_access_key,
            "SECURE_EMAIL_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value(),
            "SECURE_EMAIL_S3_BUCKET": settings.s3_bucket,
            "SECURE_EMAIL_SMTP_HOST": settings.smtp_host,
            "SECURE_EMAIL_SMTP_PORT": str(settings.smtp_port),
            "SECURE_EMAIL_ENCRYPTION_KEYS": settings.encryption_keys,
            # Stopped by SIGKILL in these tests; a SIGTERM at the end need not wait long.
            "SECURE_EMAIL_WORKER_SHUTDOWN_GRACE_SECONDS": "2",
        }
    )
    return env


class WorkerProcess:
    """``securemail worker`` as production runs it: its own process, killed at will."""

    READY = b"worker polling task queue"

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.env = settings_env(settings)
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"worker-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "worker"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def ready(self) -> None:
        process = self.process
        assert process is not None

        def polling() -> bool:
            assert process.poll() is None, self.log_path.read_text(errors="replace")
            return self.READY in self.log_path.read_bytes()

        await until(polling, "the worker polling", seconds=60)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.kills += 1

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                # fmt: off
                [
                    str(RCLONE),
                    "serve",
                    "s3",
                    "--config",
                    "",
                    "--auth-key",
                    "fault-test,fault-test-secret",
                    "--addr",
                    f"127.0.0.1:{self.port}",
                    str(self.data_dir),
                ],
                # fmt: on
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while not answers(self.port):
            assert self.process.poll() is None, self.log_file.read_text(errors="replace")
            assert time.monotonic() < deadline, "rclone serve s3 did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[RcloneS3]:
    data_dir = tmp_path / "s3"
    data_dir.mkdir()
    s3 = RcloneS3(data_dir, tmp_path / "rclone.log", free_port())
    s3.start()
    yield s3
    s3.stop()


def mail_in(maildir: Path) -> list[EmailMessage]:
    return read_maildir(maildir)


def duplicates(messages: list[EmailMessage]) -> int:
    """Copies beyond the first of each Message-ID: a delivery retried after it went out."""
    ids = [str(message["Message-ID"]) for message in messages]
    return len(ids) - len(set(ids))
