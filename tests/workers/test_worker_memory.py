"""What keeps the worker's memory down (docs/BENCHMARKS.md §4): sandboxed runs share the
workflows' code objects and nothing else; two malloc arenas; a small SQLite page cache."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import temporalio.workflow
from sqlalchemy import text
from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.worker import WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

# The stand-in Info the SDK itself gives the instance it makes to validate a workflow.
from temporalio.worker.workflow_sandbox._runner import _fake_info

from infra.db.engine import make_engine
from workers.worker import MALLOC_ARENAS, SQLITE_PAGE_CACHE_KIB, WORKFLOWS
from workers.workflow_code import KeptWorkflowCode, keep_workflow_code
from workflows.secure_email import SecureEmailWorkflow


@pytest.fixture
def kept() -> Iterator[KeptWorkflowCode]:
    finder = keep_workflow_code(WORKFLOWS)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)


def sandboxed_class(workflow: type) -> Any:
    """The workflow class one sandboxed run gets: its module imported afresh, as the
    worker does for every workflow it runs (the sandbox's ``__temporal_workflow_class``)."""
    defn = temporalio.workflow._Definition.must_from_class(workflow)
    details = WorkflowInstanceDetails(
        payload_converter_factory=DataConverter.default._new_payload_converter,
        failure_converter_class=DataConverter.default.failure_converter_class,
        interceptor_classes=[],
        defn=defn,
        info=_fake_info,
        randomness_seed=1,
        extern_functions={},
        disable_eager_activity_execution=False,
        worker_level_failure_exception_types=[],
        patch_activation_callback=None,
        last_completion_result=Payloads(),
        last_failure=Failure(),
    )
    instance = SandboxedWorkflowRunner().create_instance(details)
    return instance.globals_and_locals["__temporal_workflow_class"]  # type: ignore[attr-defined]


async def test_each_run_has_its_own_class_on_the_same_code(kept: KeptWorkflowCode) -> None:
    first, second = sandboxed_class(SecureEmailWorkflow), sandboxed_class(SecureEmailWorkflow)
    # Isolation is the sandbox's as before: a module, its globals and classes per run.
    assert first is not second and first is not SecureEmailWorkflow
    assert first.run is not second.run
    assert first.run.__globals__ is not second.run.__globals__
    # Only the immutable bytecode is the one loaded first.
    assert first.run.__code__ is second.run.__code__
    assert any(path.endswith("secure_email.py") for path in kept.codes)


async def test_without_it_each_run_loads_the_code_again() -> None:
    # What it saves: the SDK's sandbox reads and unmarshals the module for every run.
    assert not any(isinstance(finder, KeptWorkflowCode) for finder in sys.meta_path)
    first, second = sandboxed_class(SecureEmailWorkflow), sandboxed_class(SecureEmailWorkflow)
    assert first.run.__code__ is not second.run.__code__
    assert first.run.__code__.co_code == second.run.__code__.co_code


def test_keeping_twice_installs_one_finder(kept: KeptWorkflowCode) -> None:
    assert keep_workflow_code(WORKFLOWS) is kept
    assert sum(isinstance(finder, KeptWorkflowCode) for finder in sys.meta_path) == 1
    assert kept.packages == ("workflows",)


# Threads that allocate at once, each taking an arena of its own unless capped; then
# glibc's own account of its arenas (one <heap> each in malloc_info's XML).
ARENAS_SCRIPT = """
import ctypes, sys, threading
from workers.worker import limit_malloc_arenas
if sys.argv[1] == "capped":
    assert limit_malloc_arenas()
start = threading.Barrier(16)
def allocate():
    start.wait()
    for _ in range(200):
        blocks = [bytearray(2000) for _ in range(500)]
        del blocks
threads = [threading.Thread(target=allocate) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
report = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(report))
libc.fclose(ctypes.c_void_p(report))
"""


def arenas(tmp_path: Path, mode: str) -> int:
    report = tmp_path / f"{mode}.xml"
    subprocess.run([sys.executable, "-c", ARENAS_SCRIPT, mode, str(report)], check=True)
    return report.read_text().count("<heap nr=")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_worker_keeps_to_two_malloc_arenas(tmp_path: Path) -> None:
    # Without the cap glibc gives a thread that finds the arenas busy a new one, up to 8
    # per core; the cap holds whatever the machine.
    assert arenas(tmp_path, "capped") <= MALLOC_ARENAS < arenas(tmp_path, "default")


async def test_the_workers_sqlite_connections_keep_a_small_page_cache(tmp_path: Path) -> None:
    engine = make_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'cache.db'}",
        sqlite_page_cache_kib=SQLITE_PAGE_CACHE_KIB,
    )
    default = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cache.db'}")
    try:
        async with engine.connect() as connection:
            small = (await connection.execute(text("PRAGMA cache_size"))).scalar_one()
        async with default.connect() as connection:
            kept = (await connection.execute(text("PRAGMA cache_size"))).scalar_one()
    finally:
        await engine.dispose()
        await default.dispose()
    # Negative sizes are KiB: the worker's 256, the web app's SQLite's default 2,000.
    assert (small, kept) == (-SQLITE_PAGE_CACHE_KIB, -2000)
