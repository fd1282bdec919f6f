"""Two of each: the lifecycle benchmark with N worker and N web processes against one.

Both stacks are ``securemail dev`` on the same kind of database, a fresh PostgreSQL
database each (the local cluster, ``tests/fixtures/postgres.py``), one after the other
in the same run: first one worker and one web app, then the given numbers. The driver
spreads the patients over the web apps, each web app getting an equal share of the
lifecycles and of the concurrency; the alerts and the mailbox are watched once, through
the first web app, so no alert is acknowledged before the driver that waits for it
has seen it. The throughput of a stack is every lifecycle over the longest share's time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import Mailbox, say
from bench.cpu import stack_cpu
from bench.lifecycle import HTTP_TIMEOUT, Office, lifecycle_throughput, office_of
from tests.fixtures.devstack import DevStack, securemail_dev
from tests.fixtures.postgres import fresh_postgres


@dataclass
class StackThroughput:
    workers: int
    webs: int
    lifecycles: int
    concurrency: int
    seconds: float
    # CPU per lifecycle by process, over the whole run (the warm-ups and the patients'
    # records included: a little more than the timed part alone).
    cpu_ms: dict[str, float]

    @property
    def per_second(self) -> float:
        return self.lifecycles / self.seconds


@dataclass
class TwoOfEach:
    one: StackThroughput
    many: StackThroughput

    @property
    def factor(self) -> float:
        return self.many.per_second / self.one.per_second


@asynccontextmanager
async def offices_of(stack: DevStack) -> AsyncIterator[list[Office]]:
    """An office per web app, sharing the first one's mailbox and alert watcher."""
    token = stack.api_token()
    mailbox = Mailbox(stack.maildir)
    async with office_of(stack.web, token, mailbox) as first, AsyncExitStack() as more:
        offices = [first]
        for web in stack.webs[1:]:
            api = await more.enter_async_context(
                httpx.AsyncClient(
                    base_url=web, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
                )
            )
            offices.append(Office(web, api, first.mailbox, first.alerts))
        yield offices


async def stack_throughput(
    workdir: Path, workers: int, webs: int, count: int, concurrency: int
) -> StackThroughput:
    async with fresh_postgres("bench_two_of_each") as url:
        with securemail_dev(
            workdir / f"stack-{workers}x{webs}", workers=workers, webs=webs, database_url=url
        ) as stack:
            stack.wait_until_ready()
            async with offices_of(stack) as offices:
                share, gate = count // webs, max(1, concurrency // webs)
                with stack_cpu(stack) as meter:
                    runs = await asyncio.gather(
                        *(lifecycle_throughput(office, share, gate) for office in offices)
                    )
    every = share * webs + webs  # and one warm-up per web app
    say(f"  {workers} x {webs}: CPU per lifecycle {meter.per(every)}")
    return StackThroughput(
        workers,
        webs,
        share * webs,
        gate * webs,
        max(run.seconds for run in runs),
        meter.ms_per(every),
    )


async def two_of_each(
    workdir: Path, workers: int, webs: int, count: int, concurrency: int
) -> TwoOfEach:
    say(f"\n[two of each] {count} lifecycles, {concurrency} at once, PostgreSQL")
    one = await stack_throughput(workdir, 1, 1, count, concurrency)
    say(f"  1 worker, 1 web: {one.per_second:.2f} lifecycles/s")
    many = await stack_throughput(workdir, workers, webs, count, concurrency)
    say(f"  {workers} workers, {webs} webs: {many.per_second:.2f} lifecycles/s")
    result = TwoOfEach(one, many)
    say(f"  two-of-each factor: {result.factor:.2f}")
    return result
