"""``python -m bench.middlewares``: the CPU the web app's ASGI middlewares cost a request.

In-process, no server: the layers ``web.app.create_app`` and ``workers.cli web`` stack
(``TrustedProxyScheme``, ``RequestMetrics``, ``SecurityHeaders``, ``BodyLimits``,
``MultipartCsrf``) around an endpoint that only answers (the route ``/m/{token}`` left in
the scope, as routing leaves it, a 200 with a small page), called ``--requests`` times
each for a link page ``GET`` and a passcode ``POST`` (a 64-byte form), with the access
log written to ``/dev/null`` through the app's own formatter. The figure is process CPU
per request (``time.process_time``), the bare endpoint's subtracted: what the layers
cost together, and each layer alone over the bare endpoint. Merging layers could save at
most their frames and closures, not their work (the headers, the counting, the metrics
and the access line stay), so this bounds what a merge is worth against the ~11 ms of a
page (``bench.routes``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.common import say
from infra.logging import TEXT_FORMAT
from web.body_limits import BodyLimits
from web.client_address import TrustedProxyScheme
from web.csrf import MultipartCsrf
from web.metrics import RequestMetrics
from web.security_headers import SecurityHeaders

ROUTE = Route("/m/{token}", lambda _: None)
BROWSER_HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"es-MX,es;q=0.9,en;q=0.8"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"cookie", b"csrf_token=" + b"x" * 43 + b"; portal_session=" + b"y" * 43),
    (b"connection", b"keep-alive"),
]
FORM = b"csrf_token=" + b"t" * 43 + b"&passcode=12345678"


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body as a form would, leaves the route as routing does, answers."""
    scope["route"] = ROUTE
    more = scope["method"] == "POST"
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b"<!doctype html><title>Secure Email</title>" + b"." * 2000
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def scope_of(method: str) -> Scope:
    headers = list(BROWSER_HEADERS)
    if method == "POST":
        headers += [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(FORM)).encode()),
        ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/m/" + "k" * 43 + ("/verify" if method == "POST" else ""),
        "raw_path": b"",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.2", 50000),
        "server": ("127.0.0.1", 8000),
    }


def stacks() -> dict[str, Callable[[ASGIApp], ASGIApp]]:
    """Each layer alone, and all of them in the app's order (outermost first)."""

    def metrics(app: ASGIApp) -> ASGIApp:
        return RequestMetrics(app, registry=CollectorRegistry())

    def everything(app: ASGIApp) -> ASGIApp:
        inner = SecurityHeaders(BodyLimits(MultipartCsrf(app)), hsts=False)
        return TrustedProxyScheme(RequestMetrics(inner, registry=CollectorRegistry()), "")

    return {
        "bare endpoint": lambda app: app,
        "TrustedProxyScheme": lambda app: TrustedProxyScheme(app, ""),
        "RequestMetrics (and its access line)": metrics,
        "SecurityHeaders": lambda app: SecurityHeaders(app, hsts=False),
        "BodyLimits": BodyLimits,
        "MultipartCsrf": MultipartCsrf,
        "all five": everything,
    }


async def per_request_us(app: ASGIApp, method: str, requests: int) -> float:
    template = scope_of(method)
    body: Message = {"type": "http.request", "body": FORM, "more_body": False}

    async def receive() -> Message:
        return body

    async def send(_: Message) -> None:
        return None

    started = time.process_time()
    for _ in range(requests):
        await app(dict(template), receive, send)
    return (time.process_time() - started) / requests * 1e6


async def run(requests: int, repeats: int) -> None:
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - the run's life
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    found: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for name, wrap in stacks().items():
            for method in ("GET", "POST"):
                figure = await per_request_us(wrap(endpoint), method, requests)
                found.setdefault((name, method), []).append(figure)
    say(f"\nCPU µs per request, median of {repeats} runs of {requests}, the bare endpoint's")
    say("subtracted (its own figure in its row)")
    say("| layers | GET /m/{token} | POST /m/{token}/verify |")
    say("|---|---|---|")
    bare = {m: statistics.median(found["bare endpoint", m]) for m in ("GET", "POST")}
    for name in stacks():
        cells = []
        for method in ("GET", "POST"):
            median = statistics.median(found[name, method])
            cells.append(
                f"{median:.1f}" if name == "bare endpoint" else f"{median - bare[method]:.1f}"
            )
        say(f"| {name} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.middlewares", description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.repeats))


if __name__ == "__main__":
    main()
