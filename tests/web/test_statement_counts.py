"""The statement counter ``bench.routes`` asks for (``web.statement_counts``): one line per
request, its route's template and its count, never the path; absent unless asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import Settings
from tests.conftest import app_of_its_own
from web.app import create_app
from web.statement_counts import STATEMENT_LOG_ENV, StatementCounts

LINK_TOKEN = "k" * 43


async def test_each_request_is_logged_by_its_route_template_with_its_statements(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "statements.log"
    monkeypatch.setenv(STATEMENT_LOG_ENV, str(log))
    async with app_of_its_own(settings) as client:
        assert (await client.get(f"/m/{LINK_TOKEN}")).status_code == 404
        assert (await client.get(f"/m/{LINK_TOKEN}")).status_code == 404
    written = log.read_text()
    # A link that opens nothing: its one read (the message with its patient and practice).
    assert written.splitlines() == ["GET /m/{token} 1", "GET /m/{token} 1"]
    assert LINK_TOKEN not in written


def test_nothing_is_installed_unless_the_bench_asks(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STATEMENT_LOG_ENV, raising=False)
    app = create_app(settings)
    layers = [getattr(layer.cls, "__name__", "") for layer in app.user_middleware]
    assert "RequestMetrics" in layers
    assert StatementCounts.__name__ not in layers
