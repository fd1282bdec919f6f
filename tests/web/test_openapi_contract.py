"""``/api/v1`` holds to its OpenAPI document: schemathesis, every check."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.fixtures.stack import Stack

HERE = Path(__file__).parent


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_api_holds_to_its_openapi_document(live_stack: Stack, tmp_path: Path) -> None:
    office = live_stack.office
    await office.add_patient()
    tokens = (await office.api.get("/api/v1/tokens")).json()["items"]
    staff = (await office.api.get("/api/v1/staff")).json()["items"]
    env = {
        **os.environ,
        "PYTHONIOENCODING": "utf-8",
        "SCHEMATHESIS_HOOKS": "tests.web.contract_hooks",
        "CONTRACT_TOKEN_ID": tokens[0]["id"],
        "CONTRACT_STAFF_ID": staff[0]["id"],
    }
    base = live_stack.settings.public_url
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{base}/openapi.json",
        "--include-path-regex",
        "^/api/v1/",
        "-H",
        f"Authorization: Bearer {office.token}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "-n",
        "20",
        "--seed",
        "28",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    (Path("/tmp/i28-contract.txt")).write_bytes(output)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]
