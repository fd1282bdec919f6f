"""The ``securemail`` command: the embedded stack, the worker, the web app, admin tasks."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer

from infra.settings import get_settings

app = typer.Typer(help="Secure Email for dental offices.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for practice software.", no_args_is_help=True)
staff_app = typer.Typer(help="Office staff accounts.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(staff_app, name="staff")
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@app.command()
def dev() -> None:
    """Run the whole product on this machine (what `make run` starts)."""
    from workers.dev import run_dev

    raise typer.Exit(asyncio.run(run_dev(get_settings())))


@app.command()
def worker() -> None:
    """Run a Temporal worker for secure email workflows and activities."""
    from workers.worker import run_worker

    asyncio.run(run_worker(get_settings()))


@app.command()
def web() -> None:
    """Serve the office pages, the patient portal and the API."""
    import uvicorn

    from infra.logging import configure_logging
    from web.app import create_app

    settings = get_settings()
    configure_logging(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.web_host,
        port=settings.web_port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # uvicorn's loggers go to the root handler set above; its access log would write
        # each full path, portal tokens and patient searches included, so the app's own
        # (web.metrics) logs route templates instead.
        log_config=None,
        access_log=False,
        # On SIGTERM, open requests get this long to finish before they are cancelled.
        timeout_graceful_shutdown=settings.web_shutdown_grace_seconds,
    )


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    from infra.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.migration_database_url, app_database_url=settings.database_url)


@app.command("smtp-catcher")
def smtp_catcher(
    maildir: Annotated[Path, typer.Option(help="Maildir to deliver into")],
    host: str = "127.0.0.1",
    port: int = 1025,
) -> None:
    """Accept every email and keep it in a Maildir (development only)."""
    from workers.smtp_catcher import run_smtp_catcher

    asyncio.run(run_smtp_catcher(host, port, maildir))


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Option(help="Staff account the token acts as")],
    label: Annotated[str, typer.Option(help="What the token is for")] = "practice software",
) -> None:
    """Create an API token; it is printed once and only its hash is kept."""
    from workers.admin import create_token

    print(asyncio.run(create_token(get_settings(), email, label)))


@staff_app.command("create")
def staff_create(
    email: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    practice: Annotated[str, typer.Option(help="Practice name; created if new")],
    admin: bool = False,
) -> None:
    """Create an office staff account (asks for the password)."""
    from workers.admin import create_staff

    password = getpass.getpass("Password: ")
    if len(password) < 12:
        raise typer.BadParameter("use at least 12 characters", param_hint="password")
    asyncio.run(create_staff(get_settings(), email, name, practice, password, admin))
    print(f"Created {email}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain; name the first event deleted, edited or moved."""
    from infra.audit_chain import verify_database

    report = asyncio.run(verify_database(get_settings().database_url))
    if not report.intact:
        print(f"BROKEN at event {report.broken_at}: {report.problem}")
        print(f"{report.checked} event(s) checked.")
        raise typer.Exit(1)
    print(f"Intact: {report.checked} event(s), newest event {report.last_id or 'none'}.")
    # Kept elsewhere, this hash holds even the database's owner to today's log.
    print(f"Head hash: {report.last_hash}")


if __name__ == "__main__":
    app()
