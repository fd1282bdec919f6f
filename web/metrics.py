"""Request metrics for Prometheus (``GET /metrics``) and the access log.

Both name a request by its route template (``/m/{token}``), never by its path: paths
carry portal tokens and ids, query strings carry searches for patients' names. A request
that matched no route is ``unmatched``. Pure ASGI, so streamed downloads and the live
alert stream stay streamed; their latency is the time until the last byte.
"""

from __future__ import annotations

import logging
import re
import time

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"
# Any other method is counted as one, so junk requests cannot add series without end.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_log = logging.getLogger("securemail.access")


class RequestMetrics:
    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from a request's start to its last response byte, by route template.",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        # What the client gets if the app raises: Starlette's outermost handler answers 500.
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = route_template(scope, root_path)
            self.requests.labels(method, route, str(status)).inc()
            self.latency.labels(method, route).observe(elapsed)
            access_log.info("%s %s %d %.1f ms", method, route, status, elapsed * 1000)


def route_template(scope: Scope, root_path: str = "") -> str:
    """The template of the route that answered (routing leaves the route in the scope).

    A route of a router included in another router knows only its own router's prefix
    (``/patients/{patient_id}/chart`` for ``/api/v1/patients/…/chart``); the outer
    prefixes are the part of the path before what the route matched. They are fixed
    words in this app, never ids. A mounted app (``/static``) leaves no route, only its
    prefix added to the scope's ``root_path``, which was ``root_path`` before routing.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        mounted = str(scope.get("root_path", ""))[len(root_path) :]
        return f"{mounted}/{{path}}" if mounted else UNMATCHED
    regex = getattr(route, "path_regex", None)
    path: str = scope.get("path", "")
    if isinstance(regex, re.Pattern):
        for cut, char in enumerate(path):
            if char == "/" and regex.match(path[cut:]):
                return path[:cut] + template
    return template


def instrument(app: FastAPI) -> None:
    """Count every request of ``app`` and serve the counts at ``/metrics``.

    A registry per app, not the process-wide default: tests build many apps in one
    process, and each must count only its own requests.
    """
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    app.add_middleware(RequestMetrics, registry=registry)

    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
