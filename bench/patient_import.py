"""``python -m bench.patient_import [--rows 10000] [--database sqlite|postgresql]``: a CSV
file of patients through ``POST /api/v1/patients/import``.

One file of ``--rows`` patients (every tenth row the head of a family of three at one
address, the others on their own; each with an external_id), posted four times to an
empty practice: a dry run, the import, the same file again (every row unchanged) and the
file with every address changed (every row updated). The app runs in-process (httpx's
ASGI transport): the figures are the server's time, without a network. The goal: 10,000
rows in under 30 s on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from bench.common import machine, say, timed
from domain.staff import StaffRole
from infra.accounts import create_api_token, create_practice, create_staff_user
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import migrate_async
from infra.settings import Settings
from tests.fixtures.postgres import fresh_postgres
from tests.fixtures.stack import own_settings
from web.app import create_app

GOAL_SECONDS = 30.0


def csv_file(rows: int, domain: str = "example.com") -> bytes:
    lines = ["first_name,last_name,email,language,status,family_id,external_id"]
    for number in range(rows):
        family = number - number % 3 if number % 30 < 3 else None
        address = f"family{family}@{domain}" if family is not None else f"p{number}@{domain}"
        language = "es" if number % 4 == 0 else ""
        lines.append(
            f"First{number},Last{number},{address},{language},,"
            f"{'' if family is None else f'F{family}'},{number}"
        )
    return ("\n".join(lines) + "\n").encode("utf-8")


@asynccontextmanager
async def api_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    await migrate_async(settings)
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        practice = await create_practice(db, "Bench Dental")
        admin = await create_staff_user(
            db, practice, "admin@bench.example", "bench-password-1234", role=StaffRole.ADMIN
        )
        token = await create_api_token(db, admin, "bench")
        await db.commit()
    await engine.dispose()
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://portal.test",
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        ) as client,
    ):
        yield client


async def post(client: httpx.AsyncClient, data: bytes, label: str, **params: str) -> float:
    with timed() as elapsed:
        response = await client.post(
            "/api/v1/patients/import",
            content=data,
            headers={"Content-Type": "text/csv"},
            params=params,
        )
    response.raise_for_status()
    answer = response.json()
    counts = f"{answer['created']} created, {answer['updated']} updated, "
    counts += f"{answer['unchanged']} unchanged, {len(answer['errors'])} errors"
    say(f"  {label:<22} {elapsed[0]:7.2f} s   ({counts})")
    return elapsed[0]


async def run(rows: int, database: str) -> None:
    say(f"CSV import, {rows:,} rows, {database}; {machine()}")
    data = csv_file(rows)
    say(f"  file: {len(data) / 1024 / 1024:.2f} MiB")
    with tempfile.TemporaryDirectory() as directory:
        overrides: dict[str, str] = {}
        if database == "postgresql":
            async with fresh_postgres("bench_import") as url:
                overrides["database_url"] = url
                await _measure(own_settings(Path(directory), **overrides), data, rows)
        else:
            await _measure(own_settings(Path(directory)), data, rows)


async def _measure(settings: Settings, data: bytes, rows: int) -> None:
    async with api_of(settings) as client:
        await post(client, data, "dry run", dry_run="true")
        imported = await post(client, data, "import (all created)")
        await post(client, data, "again (all unchanged)")
        await post(client, csv_file(rows, "changed.example"), "changed (all updated)")
    verdict = "met" if imported < GOAL_SECONDS else "missed"
    say(f"import: {rows:,} rows in {imported:.2f} s (goal < {GOAL_SECONDS:.0f} s: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.patient_import", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    options = parser.parse_args()
    asyncio.run(run(options.rows, options.database))


if __name__ == "__main__":
    main()
