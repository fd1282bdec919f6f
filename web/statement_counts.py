"""SQL statements per request, for ``python -m bench.routes`` only: off unless it asks.

The web app's CPU per request moves by a few milliseconds between two stacks of the same
code on a shared machine; the number of statements a route executes does not move at all,
so a change that removes one shows as exactly that. The bench sets
``SECUREMAIL_BENCH_STATEMENT_LOG`` (not a ``SECURE_EMAIL_`` setting: no deployment sets it)
to a file; ``create_app`` then installs the counter, and each request appends one line,
``METHOD ROUTE-TEMPLATE STATEMENTS``. Route templates (``/m/{token}``), never paths: a
path carries portal tokens and ids. Unset, nothing here runs.

Counted: every statement the database driver is handed (``before_cursor_execute``) while
the request is being answered, on any connection (a rate limit's own transaction
included); not the audit linker's rounds, which run in a task of their own.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

from web.metrics import route_template

STATEMENT_LOG_ENV = "SECUREMAIL_BENCH_STATEMENT_LOG"

# The running request's count: a list, so every task and thread that copied the request's
# context (FastAPI's thread pool, SQLAlchemy's greenlets) adds to the same one.
_counted: ContextVar[list[int] | None] = ContextVar("statements_counted", default=None)


def _count(*_: Any) -> None:
    counted = _counted.get()
    if counted is not None:
        counted[0] += 1


class StatementCounts:
    """Outermost of the app's middlewares, so routing has left the route in the scope."""

    def __init__(self, app: ASGIApp, *, log: TextIO) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        counted = [0]
        token = _counted.set(counted)
        try:
            await self.app(scope, receive, send)
        finally:
            _counted.reset(token)
            route = route_template(scope, root_path)
            self.log.write(f"{scope['method']} {route} {counted[0]}\n")
            self.log.flush()


def count_statements_if_asked(app: FastAPI) -> None:
    """Installs the counter when the bench set ``STATEMENT_LOG_ENV``; else does nothing."""
    path = os.environ.get(STATEMENT_LOG_ENV)
    if not path:
        return
    if not event.contains(Engine, "before_cursor_execute", _count):
        event.listen(Engine, "before_cursor_execute", _count)
    log = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
    app.add_middleware(StatementCounts, log=log)
