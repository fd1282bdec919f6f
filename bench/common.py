"""What every benchmark shares: output, percentiles, polling, process memory, mail.

The processes they run (ports, the dev stack, a worker) are the tests' own:
``tests.fixtures.processes`` and ``tests.fixtures.devstack``.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

LINK = re.compile(r"View Secure Email: \S+?(/m/[\w-]+)")
PASSCODE = re.compile(r"\b(\d{8})\b")


def say(line: str = "") -> None:
    """Benchmarks report on stdout, flushed, so a long run shows its progress."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def machine() -> str:
    memory = "?"
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    model = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), {memory}, Python {platform.python_version()}"


def percentile(samples: list[float], share: float) -> float:
    """Nearest-rank percentile: with few samples it reports a real sample, not a blend."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Latencies:
    """Seconds per operation."""

    samples: list[float] = field(default_factory=list)

    def ms(self, share: float) -> float:
        return percentile(self.samples, share) * 1000

    def summary(self) -> str:
        return (
            f"n={len(self.samples)} p50={self.ms(0.50):.1f} ms p95={self.ms(0.95):.1f} ms "
            f"p99={self.ms(0.99):.1f} ms max={self.ms(1.0):.1f} ms"
        )


# Process memory ------------------------------------------------------------------------


def _status_kib(pid: int, name: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    raise LookupError(f"{name} not in /proc/{pid}/status")


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmHWM") / 1024


def reset_peak_rss(pid: int) -> bool:
    """Starts VmHWM again from the current RSS (Linux 4.0+); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Poller:
    """Runs ``poll`` every ``every`` seconds in a background task, from ``start`` to ``stop``."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._task: asyncio.Task[None] | None = None

    async def poll(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.every)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


class RssSampler(Poller):
    """Samples a process's RSS in the background: a second opinion beside VmHWM."""

    def __init__(self, pid: int, every: float = 0.01) -> None:
        super().__init__(every)
        self.pid = pid
        self.peak = 0.0

    async def poll(self) -> None:
        self.peak = max(self.peak, rss_mib(self.pid))

    def __enter__(self) -> RssSampler:
        self.peak = rss_mib(self.pid)
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


# Mail ----------------------------------------------------------------------------------


class Mailbox(Poller):
    """The dev stack's Maildir, read incrementally: each file is parsed once.

    One task polls ``new/`` and wakes whoever waits for mail to an address, so a
    hundred patients waiting cost one directory listing per poll, not a hundred.
    """

    def __init__(self, maildir: Path, every: float = 0.02) -> None:
        super().__init__(every)
        self.new = maildir / "new"
        self.by_address: dict[str, list[EmailMessage]] = {}
        self._seen: set[str] = set()
        self._changed = asyncio.Condition()
        self._parser = BytesParser(_class=EmailMessage, policy=default_policy)

    def _scan(self) -> list[EmailMessage]:
        found: list[EmailMessage] = []
        try:
            names = [entry.name for entry in os.scandir(self.new)]
        except FileNotFoundError:
            return found
        for name in names:
            if name in self._seen:
                continue
            self._seen.add(name)
            found.append(self._parser.parsebytes((self.new / name).read_bytes()))
        return found

    async def poll(self) -> None:
        found = await asyncio.to_thread(self._scan)
        if found:
            async with self._changed:
                for message in found:
                    self.by_address.setdefault(str(message["To"]), []).append(message)
                self._changed.notify_all()

    async def wait(self, address: str, kind: str, count: int = 1, timeout: float = 120) -> str:
        """The text of the ``count``-th mail of ``kind`` (notice/passcode) to ``address``."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                matching = [m for m in self.by_address.get(address, []) if kind_of(m) == kind]
                if len(matching) >= count:
                    return text_of(matching[count - 1])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind} #{count} for {address} in {timeout:.0f} s")
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    continue

    async def link(self, address: str) -> str:
        found = LINK.search(await self.wait(address, "notice"))
        if not found:
            raise AssertionError("no View Secure Email link in the notice")
        return found.group(1)

    async def passcode(self, address: str, count: int) -> str:
        found = PASSCODE.search(await self.wait(address, "passcode", count))
        if not found:
            raise AssertionError("no passcode in the passcode email")
        return found.group(1)


def kind_of(message: EmailMessage) -> str:
    subject = str(message["Subject"] or "")
    if "passcode" in subject.lower():
        return "passcode"
    if "secure email from" in subject.lower():
        return "notice"
    return "other"


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    if body is None:
        return ""
    return str(body.get_content())


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as elapsed:`` ... ``elapsed[0]`` is the seconds the block took."""
    result: list[float] = []
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.append(time.perf_counter() - start)


def median_table(title: str, first: str, found: dict[str, list[float]], digits: int = 1) -> None:
    """A table of each row's median over the rounds, and the rounds beside it."""
    say(f"\n{title}")
    say(f"| {first} | CPU ms | rounds |")
    say("|---|---|---|")
    for name, figures in found.items():
        each = ", ".join(f"{x:.{digits}f}" for x in figures)
        say(f"| {name} | {statistics.median(figures):.{digits}f} | {each} |")
