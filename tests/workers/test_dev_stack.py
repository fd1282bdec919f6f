"""``securemail dev`` as ``make run`` starts it: a real process tree on free ports.

Each stack gets its own data directory and ports, so these tests run beside a developer's
own ``make run`` on the default ports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_WITHIN = 90.0
STOP_WITHIN = 20.0
PORT_NAMES = ("web", "temporal", "temporal_ui", "s3", "smtp")


def free_ports(count: int) -> list[int]:
    # All bound at once, so the kernel cannot hand out the same port twice.
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def child_pids(pid: int) -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    return pids


def running(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


def processes_in(directory: Path) -> list[int]:
    """Every process whose working directory is ``directory``: the stack's children
    inherit it, whatever they run."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cwd").resolve() == directory.resolve():
                    found.append(int(entry.name))
            except OSError:
                continue
    return [pid for pid in found if running(pid)]


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    data_dir: Path
    output_path: Path

    @property
    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.ports['web']}"

    def credentials(self) -> dict[str, str]:
        loaded: dict[str, str] = json.loads((self.data_dir / "dev-credentials.json").read_text())
        return loaded

    def api(self) -> httpx.Client:
        token = self.credentials()["api_token"]
        return httpx.Client(
            base_url=self.web, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def wait_until_ready(self) -> None:
        urls = [f"{self.web}/login", f"http://127.0.0.1:{self.ports['temporal_ui']}/"]
        deadline = time.monotonic() + READY_WITHIN
        while True:
            assert self.process.poll() is None, f"securemail dev exited:\n{self.output}"
            # Ready is when the developer is told so: the pages answer and the banner
            # with the URLs and credentials is out.
            if "Secure Email is running." in self.output and all(
                _status(url) == 200 for url in urls
            ):
                return
            assert time.monotonic() < deadline, f"not ready in {READY_WITHIN} s:\n{self.output}"
            time.sleep(0.3)

    def wait_for_exit(self, within: float = STOP_WITHIN) -> int:
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired as late:
            raise AssertionError(f"still running after {within} s:\n{self.output}") from late

    def assert_all_gone(self, children: list[int]) -> None:
        assert [pid for pid in children if running(pid)] == [], self.output
        assert processes_in(self.data_dir.parent) == [], self.output
        assert [name for name, port in self.ports.items() if answers(port)] == [], self.output


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


@contextmanager
def securemail_dev(workdir: Path, ports: dict[str, int]) -> Iterator[DevStack]:
    """Runs ``securemail dev`` the way ``make run`` does: the default, relative data
    directory in the current directory, only the ports moved."""
    workdir.mkdir(exist_ok=True)
    output_path = workdir / f"dev-{time.monotonic_ns()}.out"
    # Only the defaults and these: a developer's own SECURE_EMAIL_* must not leak in.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_EMAIL_")}
    env = {
        **inherited,
        "SECURE_EMAIL_DATA_DIR": ".data",
        "SECURE_EMAIL_WEB_PORT": str(ports["web"]),
        "SECURE_EMAIL_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "SECURE_EMAIL_TEMPORAL_UI_PORT": str(ports["temporal_ui"]),
        "SECURE_EMAIL_S3_ENDPOINT": f"127.0.0.1:{ports['s3']}",
        "SECURE_EMAIL_SMTP_PORT": str(ports["smtp"]),
    }
    with open(output_path, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "dev"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    stack = DevStack(process, ports, workdir / ".data", output_path)
    try:
        yield stack
    finally:
        if process.poll() is None:
            # The children are asked to stop by the kernel when their parent dies.
            process.kill()
            process.wait()


def test_dev_stack_starts_stops_and_keeps_its_state(tmp_path: Path) -> None:
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))

    with securemail_dev(tmp_path, ports) as stack:
        stack.wait_until_ready()
        children = child_pids(stack.process.pid)
        assert len(children) == 5, stack.output

        credentials_file = stack.data_dir / "dev-credentials.json"
        assert stat.S_IMODE(credentials_file.stat().st_mode) == 0o600
        credentials = stack.credentials()
        assert set(credentials) == {
            "email",
            "password",
            "api_token",
            "operator_email",
            "operator_password",
            "operator_token",
        }
        assert credentials["api_token"] in stack.output  # printed for the developer
        assert credentials["operator_token"] in stack.output  # with the CLI decode command
        # The operator's token opens the codec; the practice admin's does not.
        plain = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IngiCg=="}]}
        for token, expected in (
            (credentials["operator_token"], 200),
            (credentials["api_token"], 403),
        ):
            encoded = httpx.post(
                f"{stack.web}/codec/encode",
                json=plain,
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert encoded.status_code == expected, encoded.text

        with stack.api() as api:
            practice = api.get("/api/v1/practice")
            assert practice.status_code == 200, practice.text
            assert practice.json()["secure_email_enabled"] is True
            created = api.post(
                "/api/v1/patients", json={"name": "Ada Lovelace", "email": "ada@example.com"}
            )
            assert created.status_code == 201, created.text

        stack.process.send_signal(signal.SIGTERM)
        assert stack.wait_for_exit() == 0, stack.output
        stack.assert_all_gone(children)

    with securemail_dev(tmp_path, ports) as stack:
        stack.wait_until_ready()
        assert stack.credentials() == credentials
        with stack.api() as api:
            found = api.get("/api/v1/patients", params={"q": "ada"})
            assert found.status_code == 200, found.text
            assert [p["email"] for p in found.json()["items"]] == ["ada@example.com"]

        # A child that dies later takes the stack down, named, and nothing is left behind.
        children = child_pids(stack.process.pid)
        worker = next(pid for pid in children if command_line(pid)[-1:] == ["worker"])
        os.kill(worker, signal.SIGKILL)
        assert stack.wait_for_exit() == 1, stack.output
        assert "worker exited with code -9" in stack.output
        stack.assert_all_gone(children)


def test_a_child_that_cannot_start_is_named(tmp_path: Path) -> None:
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
    # Bound but not listening: nothing answers there, yet the web app cannot bind it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["web"]))
        with securemail_dev(tmp_path, ports) as stack:
            assert stack.wait_for_exit(within=READY_WITHIN) == 1, stack.output
            assert "web exited with code" in stack.output
            assert "address already in use" in stack.output.lower()  # the end of web's log
            stack.assert_all_gone([])


def test_ports_in_use_are_named_before_anything_starts(tmp_path: Path) -> None:
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["smtp"]))
        taken.listen()
        with securemail_dev(tmp_path, ports) as stack:
            assert stack.wait_for_exit() == 1, stack.output
            assert f"smtp cannot start: 127.0.0.1:{ports['smtp']} is already in use" in (
                stack.output
            )
            assert not stack.data_dir.exists()
