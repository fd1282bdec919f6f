"""``python -m bench.floor``: the least CPU a request can cost here, to read goals against.

A web app's CPU per secure email is a sum over the requests a lifecycle makes; this
measures what one request costs before it does anything of its own, one request at a
time, each on a new connection as ``bench.routes`` sends them:

- a bare FastAPI app with one route returning a word, under uvicorn, with the event loop
  and HTTP parser the product runs (uvloop, httptools) and with asyncio's loop and h11
  (uvicorn's pure-Python defaults when the C parts are not installed);
- the product's own ``/healthz`` (its ASGI middlewares and exception handling, no
  database) on an embedded stack (``securemail dev``).

The web app's process CPU (``/proc``, every thread) over ``--count`` requests, divided by
the count; the median of ``--rounds`` rounds, the variants alternating.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from bench.common import median_table, say
from bench.cpu import cpu_seconds
from bench.rounds import rounds_main
from bench.routes import BROWSER_LIMITS
from tests.fixtures.devstack import securemail_dev

# The bare app uvicorn imports from this module (``bench.floor:app``).
app = FastAPI()


@app.get("/")
async def word() -> dict[str, str]:
    return {"status": "ok"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def bare_app(loop: str, http: str) -> Iterator[tuple[str, int]]:
    """The bare app in a uvicorn process of its own: its URL and pid."""
    port = _free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bench.floor:app"),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--loop", loop, "--http", http, "--no-access-log", "--log-level", "warning"),
        ]
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"uvicorn ({loop}, {http}) did not start") from None
                time.sleep(0.1)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=10)


async def cpu_ms_per_request(url: str, pid: int, count: int) -> float:
    async with httpx.AsyncClient(limits=BROWSER_LIMITS, timeout=10) as client:
        before = cpu_seconds(pid)
        for _ in range(count):
            (await client.get(url)).raise_for_status()
        return (cpu_seconds(pid) - before) / count * 1000


async def run(count: int, rounds: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-floor-") as directory,
        securemail_dev(Path(directory)) as stack,
    ):
        stack.wait_until_ready()
        with (
            bare_app("uvloop", "httptools") as fast,
            bare_app("asyncio", "h11") as pure,
        ):
            variants = {
                "bare FastAPI, uvloop + httptools": fast,
                "bare FastAPI, asyncio + h11": pure,
                "the product's /healthz": (f"{stack.web}/healthz", stack.child("web")),
            }
            found: dict[str, list[float]] = {name: [] for name in variants}
            for url, pid in variants.values():  # warm-up: first-use costs left out
                await cpu_ms_per_request(url, pid, 20)
            for index in range(rounds):
                for name, (url, pid) in variants.items():
                    found[name].append(await cpu_ms_per_request(url, pid, count))
                say(f"round {index + 1} done, load average {os.getloadavg()[0]:.1f}")
    median_table(
        f"web app CPU ms per request ({count} each, new connection each; median of rounds)",
        "app",
        found,
        2,
    )


def main() -> None:
    rounds_main("floor", __doc__, run, 300, "requests to each app")


if __name__ == "__main__":
    main()
