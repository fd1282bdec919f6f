"""CPU per operation, by process: on a machine of two cores, what bounds a benchmark.

Every process of the stack (and the local PostgreSQL cluster, and the driver itself)
shares the same cores, so throughput is the cores' CPU over what one operation needs
from all of them; these say which process needs it.
"""

from __future__ import annotations

import os
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
    _before: dict[int, float] = field(default_factory=dict)

    def _all(self) -> dict[str, list[int]]:
        return self.groups | {name: found() for name, found in self.joining.items()}

    def __enter__(self) -> CpuMeter:
        self._before = {pid: cpu_seconds(pid) for pids in self._all().values() for pid in pids}
        return self

    def __exit__(self, *_: object) -> None:
        self.used = {
            name: sum(max(0.0, cpu_seconds(pid) - self._before.get(pid, 0.0)) for pid in pids)
            for name, pids in self._all().items()
        }

    def ms_per(self, count: int) -> dict[str, float]:
        """Milliseconds each group used per operation, for the JSON figures."""
        return {name: seconds / count * 1000 for name, seconds in self.used.items()}

    def per(self, count: int) -> str:
        """The total per operation, and ``name X ms`` for each group that used 0.5 ms or
        more of it, largest first."""
        each = sorted(self.ms_per(count).items(), key=lambda item: -item[1])
        listed = ", ".join(f"{name} {ms:.0f}" for name, ms in each if ms >= 0.5)
        return f"{sum(ms for _, ms in each):.0f} ms ({listed})"


def stack_cpu(stack: DevStack) -> CpuMeter:
    """A CPU meter over the stack's processes, the local PostgreSQL and this driver."""
    groups: dict[str, list[int]] = {"bench": [os.getpid()], "dev": [stack.process.pid]}
    for pid in child_pids(stack.process.pid):
        words = command_line(pid)
        # `python -m workers.cli worker`, `... web`, `... smtp-catcher`; `temporal`, `rclone`
        cli = words.index("workers.cli") + 1 if "workers.cli" in words else 0
        groups.setdefault(Path(words[cli]).name, []).append(pid)
    return CpuMeter(groups, joining={"postgres": postgres_pids})
