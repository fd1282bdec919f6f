"""``securemail dev`` as ``make run`` starts it, on free ports in a temporary directory.

The lifecycle, Verify and upload benchmarks drive this real process tree (Temporal dev
server on a SQLite file, rclone S3, SMTP catcher, worker, uvicorn web app) over HTTP, so
they measure what a developer runs, each part in its own process as in production.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import free_ports
from infra.settings import Settings

READY_WITHIN = 120.0
PORT_NAMES = ("web", "temporal", "temporal_ui", "s3", "smtp")


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    workdir: Path
    output_path: Path

    @property
    def data_dir(self) -> Path:
        return self.workdir / ".data"

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.ports['web']}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.ports['temporal']}"

    @property
    def maildir(self) -> Path:
        return self.data_dir / "mail"

    def settings(self) -> Settings:
        """The settings the stack's children run with, for clients of its servers."""
        return Settings(data_dir=self.data_dir, temporal_address=self.temporal_address)

    def api_token(self) -> str:
        credentials = json.loads((self.data_dir / "dev-credentials.json").read_text())
        return str(credentials["api_token"])

    def child(self, name: str) -> int:
        """The pid of the ``worker`` or ``web`` child."""
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            for pid in (task / "children").read_text().split():
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if name.encode() in argv[-3:]:
                    return int(pid)
        raise LookupError(f"no {name} child")

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN
        while b"Secure Email is running." not in self.output_path.read_bytes():
            if self.process.poll() is not None:
                raise RuntimeError(f"securemail dev exited:\n{self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"securemail dev not ready in {READY_WITHIN:.0f} s")
            time.sleep(0.2)
        httpx.get(f"{self.web}/login", timeout=10).raise_for_status()

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")[-4000:]


@contextmanager
def securemail_dev(workdir: Path) -> Iterator[DevStack]:
    workdir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
    # Only the defaults and the ports: a developer's own SECURE_EMAIL_* must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_EMAIL_")}
    env.update(
        {
            "SECURE_EMAIL_DATA_DIR": ".data",
            "SECURE_EMAIL_WEB_PORT": str(ports["web"]),
            "SECURE_EMAIL_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
            "SECURE_EMAIL_TEMPORAL_UI_PORT": str(ports["temporal_ui"]),
            "SECURE_EMAIL_S3_ENDPOINT": f"127.0.0.1:{ports['s3']}",
            "SECURE_EMAIL_SMTP_PORT": str(ports["smtp"]),
        }
    )
    output_path = workdir / "dev.out"
    with open(output_path, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "dev"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    stack = DevStack(process, ports, workdir, output_path)
    try:
        stack.wait_until_ready()
        yield stack
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # Its children die with it (PR_SET_PDEATHSIG in workers.dev).
                process.kill()
                process.wait()
