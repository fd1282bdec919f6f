"""Where a process's CPU goes: py-spy samples it from outside during a benchmark.

``python -m bench --profile DIR`` records the worker and the web app while the
lifecycles run: ``DIR/<name>.svg`` is the flame graph to open in a browser, and
``DIR/<name>.txt`` the same samples as collapsed stacks, which ``top_shares`` sums by
module for the summary printed beside the figures. Samples are taken without pausing
the process (``--nonblocking``), so its CPU figures stay those of an unprofiled run,
200 a second, and only of the thread holding the GIL (``--gil``): Python's CPU, not its
waits on the event loop's ``select`` or on a thread pool's queue.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

PY_SPY = Path(sys.executable).with_name("py-spy")
STOP_WITHIN = 60.0
# ``function (path/to/file.py:line)`` in a collapsed stack's frame; py-spy gives the
# path from the import root (``temporalio/worker/_workflow.py``, ``asyncio/events.py``).
_FRAME_FILE = re.compile(r"\((.+?\.py)(?::\d+)?\)$")
_FROZEN = re.compile(r"\(<frozen ([\w.]+)>")
# Modules that only run the others (the event loop, threads, the command line): on
# nearly every sample, they say nothing about where the CPU goes.
DISPATCHING = (
    "<",
    "asyncio",
    "threading",
    "concurrent.futures",
    "selectors",
    "runpy",
    "typer",
    "click",
    "uvicorn.main",
    "uvicorn.server",
    "uvicorn._compat",
    "workers.cli",
)


@contextmanager
def _recording(pid: int, output: Path, form: str) -> Iterator[None]:
    command = [str(PY_SPY), "record", "--pid", str(pid), "--nonblocking", "--gil", "--rate", "200"]
    process = subprocess.Popen(
        [*command, "--format", form, "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        # py-spy writes its output when interrupted, as on Ctrl-C.
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=STOP_WITHIN)
        if not output.exists():
            raise RuntimeError(f"py-spy wrote no {output.name}: {errors.decode()[-500:]}")


@contextmanager
def profiles(processes: dict[str, int], directory: Path) -> Iterator[None]:
    """Flame graph and collapsed stacks of each named process over the block."""
    directory.mkdir(parents=True, exist_ok=True)
    with ExitStack() as recordings:
        for name, pid in processes.items():
            recordings.enter_context(_recording(pid, directory / f"{name}.svg", "flamegraph"))
            recordings.enter_context(_recording(pid, directory / f"{name}.txt", "raw"))
        yield


def module_of(frame: str) -> str:
    """A frame's module as a dotted name: ``temporalio.worker.workflow_sandbox._runner``,
    ``activities.mail``."""
    found = _FRAME_FILE.search(frame)
    if found is None:
        frozen = _FROZEN.search(frame)
        return frozen.group(1) if frozen else "<unknown>"
    path = found.group(1).rsplit("site-packages/", 1)[-1]
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def top_shares(
    collapsed: Path, depth: int = 3, count: int = 12, *, own: bool = False
) -> list[tuple[str, float]]:
    """The modules (cut to ``depth`` parts) on the most samples' stacks, with the share
    of samples each is on: a module under another counts in both. ``own``: only the
    innermost frame counts, the module whose code was running."""
    on_stack: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        frames = stack.split(";")[-1:] if own else stack.split(";")
        modules = {".".join(module_of(f).split(".")[:depth]) for f in frames}
        on_stack.update(dict.fromkeys(modules, int(samples)))
        total += int(samples)
    shares = [(m, n / total) for m, n in on_stack.most_common() if not m.startswith(DISPATCHING)]
    return shares[:count]


def summary(collapsed: Path, *, own: bool = False) -> str:
    shares = top_shares(collapsed, own=own)
    return ", ".join(f"{module} {share:.0%}" for module, share in shares)
