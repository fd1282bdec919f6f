"""``securemail dev`` as ``make run`` starts it: a real process tree on free ports.

Each stack gets its own data directory and ports, so these tests run beside a developer's
own ``make run`` on the default ports.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
from pathlib import Path

import httpx

from tests.fixtures.devstack import (
    READY_WITHIN,
    child_pids,
    command_line,
    dev_ports,
    securemail_dev,
)


def test_dev_stack_starts_stops_and_keeps_its_state(tmp_path: Path) -> None:
    ports = dev_ports()

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
    ports = dev_ports()
    # Bound but not listening: nothing answers there, yet the web app cannot bind it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["web"]))
        with securemail_dev(tmp_path, ports) as stack:
            assert stack.wait_for_exit(within=READY_WITHIN) == 1, stack.output
            assert "web exited with code" in stack.output
            assert "address already in use" in stack.output.lower()  # the end of web's log
            stack.assert_all_gone([])


def test_ports_in_use_are_named_before_anything_starts(tmp_path: Path) -> None:
    ports = dev_ports()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["smtp"]))
        taken.listen()
        with securemail_dev(tmp_path, ports) as stack:
            assert stack.wait_for_exit() == 1, stack.output
            assert f"smtp cannot start: 127.0.0.1:{ports['smtp']} is already in use" in (
                stack.output
            )
            assert not stack.data_dir.exists()
