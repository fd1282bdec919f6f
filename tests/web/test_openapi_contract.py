"""``/api/v1`` holds to its OpenAPI document, as an integrator's generated client meets it:
schemathesis (its command line, as a practice's developer would run it) against the app
on a real port, with an administrator's API token, every check, a fixed seed.

The checks all run; "schema-valid data is accepted" is replaced by the same check that
lets through only the refusals the document declares as the practice's rules
(``tests/web/contract_hooks.py``), which also keeps the run from revoking its own token
or deactivating its own administrator.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.fixtures.stack import Stack

HOOKS = "tests.web.contract_hooks"
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = "28"
# Cases per operation and phase: a few hundred in all, under a minute on two cores.
CASES_PER_OPERATION = "8"
# The fuzzing and stateful phases (with the schema's own examples); the coverage phase's
# thousand boundary cases would triple the time.
PHASES = "examples,fuzzing,stateful"


async def _own_ids(stack: Stack) -> dict[str, str]:
    """The ids of the run's own token and administrator, which it must not harm."""
    api = stack.office.api
    (token,) = (await api.get("/api/v1/tokens")).json()["items"]
    (admin,) = (await api.get("/api/v1/staff")).json()["items"]
    return {"CONTRACT_TOKEN_ID": token["id"], "CONTRACT_STAFF_ID": admin["id"]}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_api_holds_to_its_openapi_document(live_stack: Stack) -> None:
    patient = await live_stack.office.add_patient()  # someone to send to
    env = {
        **os.environ,
        "CONTRACT_PATIENT_ID": patient["id"],
        "PYTHONIOENCODING": "utf-8",
        "SCHEMATHESIS_HOOKS": HOOKS,
        **await _own_ids(live_stack),
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")),
        *("--config-file", str(CONFIG), "--no-color", "run"),
        f"{live_stack.settings.public_url}/openapi.json",
        *("--include-path-regex", "^/api/v1/"),
        *("--header", f"Authorization: Bearer {live_stack.office.token}"),
        *("--checks", "all", "--exclude-checks", "positive_data_acceptance"),
        *("--phases", PHASES, "--max-examples", CASES_PER_OPERATION, "--seed", SEED),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode(errors="replace")
    assert process.returncode == 0, output
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated[1]) >= 200, output
    # The run kept its own access to the end.
    assert (await live_stack.office.api.get("/api/v1/practice")).status_code == 200
