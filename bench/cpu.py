"""CPU per operation, by process: on a machine of two cores, what bounds a benchmark.

Every process of the stack (and the local PostgreSQL cluster, and the driver itself)
shares the same cores, so throughput is the cores' CPU over what one operation needs
from all of them; these say which process needs it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.fixtures.devstack import DevStack, child_pids, command_line

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def postgres_pids() -> list[int]:
    """The local PostgreSQL cluster's processes (its backends serve the stack)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if Path(f"/proc/{entry.name}/comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@dataclass
class CpuMeter:
    """CPU seconds each named group of processes used inside ``with meter:``.
    ``joining`` groups are listed again at the end: a process that started in between
    (a PostgreSQL backend for a new pooled connection) counts from its start.
    """

    groups: dict[str, list[int]]
    joining: dict[str, Callable[[], list[int]]] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # wall time inside ``with meter:``
    _before: dict[int, float] = field(default_factory=dict)
    _started: float = 0.0

    def _all(self) -> dict[str, list[int]]:
        return self.groups | {name: found() for name, found in self.joining.items()}

    def __enter__(self) -> CpuMeter:
        self._before = {pid: cpu_seconds(pid) for pids in self._all().values() for pid in pids}
        self._started = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.monotonic() - self._started
        self.used = {
            name: sum(max(0.0, cpu_seconds(pid) - self._before.get(pid, 0.0)) for pid in pids)
            for name, pids in self._all().items()
        }

    def ms_per(self, count: int) -> dict[str, float]:
        """Milliseconds each group used per operation, for the JSON figures."""
        return {name: seconds / count * 1000 for name, seconds in self.used.items()}

    def net_ms_per(self, count: int, idle: dict[str, float]) -> dict[str, float]:
        """``ms_per`` less what each group uses idle (``idle``: CPU seconds per second)
        over the same wall time: the stack's own rounds and the driver's polls, which
        cost per second, not per operation, and so weigh more on a slower run."""
        return {
            name: max(0.0, seconds - idle.get(name, 0.0) * self.seconds) / count * 1000
            for name, seconds in self.used.items()
        }

    def per(self, count: int, idle: dict[str, float] | None = None) -> str:
        """The total per operation, and ``name X ms`` for each group that used 0.5 ms or
        more of it, largest first; net of ``idle`` when given."""
        figures = self.ms_per(count) if idle is None else self.net_ms_per(count, idle)
        each = sorted(figures.items(), key=lambda item: -item[1])
        listed = ", ".join(f"{name} {ms:.0f}" for name, ms in each if ms >= 0.5)
        return f"{sum(ms for _, ms in each):.0f} ms ({listed})"


async def idle_cpu(
    meter: Callable[[], CpuMeter], seconds: float = 3.0, windows: int = 2
) -> dict[str, float]:
    """CPU seconds per second each group uses while no operation runs (``meter`` makes a
    new meter over the stack's processes): the least of a few windows, so a start-up's
    last work in the first one does not count as idle."""
    rates: dict[str, float] = {}
    for _ in range(windows):
        with meter() as window:
            await asyncio.sleep(seconds)
        for name, used in window.used.items():
            rates[name] = min(rates.get(name, float("inf")), used / window.seconds)
    return rates


def stack_cpu(stack: DevStack) -> CpuMeter:
    """A CPU meter over the stack's processes, the local PostgreSQL and this driver."""
    groups: dict[str, list[int]] = {"bench": [os.getpid()], "dev": [stack.process.pid]}
    for pid in child_pids(stack.process.pid):
        words = command_line(pid)
        # `python -m workers.cli worker`, `... web`, `... smtp-catcher`; `temporal`, `rclone`
        cli = words.index("workers.cli") + 1 if "workers.cli" in words else 0
        groups.setdefault(Path(words[cli]).name, []).append(pid)
    return CpuMeter(groups, joining={"postgres": postgres_pids})
