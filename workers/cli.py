"""The ``securemail`` command: the embedded stack, the worker, the web app, admin tasks."""

from __future__ import annotations

import asyncio
import getpass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from domain.operators import DEFAULT_TOKEN_DAYS as DEFAULT_OPERATOR_TOKEN_DAYS
from domain.operators import MAX_TOKEN_DAYS as MAX_OPERATOR_TOKEN_DAYS
from infra.settings import get_settings

app = typer.Typer(help="Secure Email for dental offices.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for practice software.", no_args_is_help=True)
staff_app = typer.Typer(help="Office staff accounts.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(staff_app, name="staff")
operator_app = typer.Typer(
    help="Platform operators: no practice; they alone decode Temporal payloads.",
    no_args_is_help=True,
)
app.add_typer(operator_app, name="operator")
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
legacy_app = typer.Typer(
    help="Secure emails still on the version-1 workflow (workflows/legacy).",
    no_args_is_help=True,
)
app.add_typer(legacy_app, name="legacy")
keys_app = typer.Typer(
    help="Key rotation: new primary keys, re-encryption, retiring old keys.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


@app.command()
def dev() -> None:
    """Run the whole product on this machine (what `make run` starts)."""
    from workers.dev import run_dev

    raise typer.Exit(asyncio.run(run_dev(get_settings())))


@app.command()
def worker() -> None:
    """Run a Temporal worker for secure email workflows and activities."""
    import uvloop

    from workers.worker import run_worker

    # The worker's own loop (polling, activities, the database's threads); each workflow
    # still runs on the SDK's deterministic loop inside its sandbox.
    uvloop.run(run_worker(get_settings()))


@app.command()
def web() -> None:
    """Serve the office pages, the patient portal and the API."""
    import uvicorn

    from infra.logging import configure_logging
    from web.app import create_app
    from web.client_address import TrustedProxyScheme

    settings = get_settings()
    configure_logging(settings)
    uvicorn.run(
        TrustedProxyScheme(create_app(settings), settings.forwarded_allow_ips),
        host=settings.web_host,
        port=settings.web_port,
        # One rule for the client's address, web.client_address's: uvicorn's would replace
        # the peer with its own reading of X-Forwarded-For (non-addresses included), and
        # the real peer is what decides whether that header is believed at all.
        proxy_headers=False,
        # The C event loop and HTTP parser, not asyncio's loop and h11 (pure Python):
        # named, so a missing one fails at start rather than quietly costing CPU.
        loop="uvloop",
        http="httptools",
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
    """Apply database migrations (the only command that does; run it before the others)."""
    from infra.db.migrate import migrate as run_migrations

    run_migrations(get_settings())


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
def audit_verify(
    anchor: Annotated[
        list[str] | None,
        typer.Option(
            metavar="POSITION:HASH",
            help="An anchor `audit anchor` printed earlier: that link must still have it",
        ),
    ] = None,
) -> None:
    """Check the audit log's hash chain; name the first event deleted, edited or moved."""
    from sqlalchemy.exc import SQLAlchemyError

    from infra.audit_chain import Anchor, MalformedAnchor, verify_database

    try:
        anchors = [Anchor.parse(text) for text in anchor or ()]
    except MalformedAnchor as error:
        print(f"Cannot check --anchor: {error}.")
        raise typer.Exit(2) from None
    try:
        report = asyncio.run(verify_database(get_settings().database_url, anchors))
    except SQLAlchemyError as error:
        print(f"Cannot read the audit log (is the database migrated?): {error.__class__.__name__}")
        raise typer.Exit(2) from None
    if not report.intact:
        where = f" at event {report.broken_at}" if report.broken_at is not None else ""
        print(f"BROKEN{where}: {report.problem}")
        print(f"{report.checked} event(s) checked.")
        raise typer.Exit(1)
    print(f"Intact: {report.checked} event(s), newest event {report.last_id or 'none'}.")
    if report.unlinked:
        # Written and append-only, but not yet in the chain: the linkers' backlog.
        oldest = report.oldest_unlinked_at
        since = f", the oldest from {oldest:%Y-%m-%d %H:%M:%S} UTC" if oldest else ""
        print(f"Not linked yet: {report.unlinked} newer event(s){since}.")
    # Kept elsewhere, this holds even the database's owner to today's log.
    print(f"Head: {report.head}")


@audit_app.command("anchor")
def audit_anchor() -> None:
    """Print the chain's newest link as POSITION:HASH, to keep outside the database:
    `audit verify --anchor` proves that nothing at or before it changed since."""
    from sqlalchemy.exc import SQLAlchemyError

    from infra.audit_chain import anchor_database

    try:
        print(asyncio.run(anchor_database(get_settings().database_url)))
    except SQLAlchemyError as error:
        print(f"Cannot read the audit log (is the database migrated?): {error.__class__.__name__}")
        raise typer.Exit(2) from None


@app.command()
def backup(
    directory: Annotated[Path, typer.Argument(help="A new (or empty) directory")],
    include_keys: Annotated[
        bool,
        typer.Option(
            "--include-keys",
            help="Add the keysets (development only; refused in production)",
        ),
    ] = False,
) -> None:
    """Copy the running deployment: the database, every stored object as stored, and
    manifest.json. The keysets are not in it: keep them apart (README, Backup and
    restore)."""
    from infra.backup import BackupRefused
    from infra.backup_database import DatabaseCopyFailed, DatabaseToolMissing
    from infra.objects.interface import StoreUnavailable
    from workers.backup import backup as run_backup

    settings = get_settings()
    if include_keys and settings.environment != "production":
        typer.secho(
            "WARNING: --include-keys writes the keysets into the backup (keys.json). Anyone "
            "with this directory can read every message in it. Development only.",
            err=True,
            fg=typer.colors.RED,
            bold=True,
        )
    try:
        manifest = asyncio.run(
            run_backup(settings, directory, include_keys, lambda line: typer.echo(line, err=True))
        )
    except (BackupRefused, DatabaseToolMissing, DatabaseCopyFailed, StoreUnavailable) as error:
        typer.echo(f"Backup refused or failed: {error}", err=True)
        raise typer.Exit(1) from None
    print(
        f"Backed up into {directory}: {sum(manifest.counts.values())} rows, "
        f"{len(manifest.objects)} objects ({manifest.object_bytes} bytes), "
        f"audit head {manifest.audit_head}."
    )
    if not manifest.keys_included:
        keysets = manifest.keysets
        print(
            "Keys are not in the backup. A restore needs these key ids, kept apart: "
            f"encryption {keysets.aead}, objects {keysets.objects}, portal {keysets.portal}."
        )


@app.command()
def restore(
    directory: Annotated[Path, typer.Argument(help="A directory `securemail backup` made")],
) -> None:
    """Restore a backup into an empty deployment (refused if it has data), check every
    object against the manifest, then start the workflow of every open secure email."""
    from temporalio.service import RPCError

    from infra.backup import BackupRefused, RestoreFailed
    from infra.backup_database import DatabaseCopyFailed, DatabaseToolMissing
    from infra.objects.interface import StoreUnavailable
    from workers.backup import restore_and_resume

    try:
        manifest, resumed = asyncio.run(
            restore_and_resume(get_settings(), directory, lambda line: typer.echo(line, err=True))
        )
    except RestoreFailed as error:
        typer.echo("Restore failed:", err=True)
        for problem in error.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None
    except (BackupRefused, DatabaseToolMissing, DatabaseCopyFailed, StoreUnavailable) as error:
        typer.echo(f"Restore refused or failed: {error}", err=True)
        raise typer.Exit(1) from None
    except RPCError as error:
        typer.echo(
            f"Restored, but Temporal could not be reached to resume open secure emails "
            f"({error.__class__.__name__}); run `securemail resume` once it is up.",
            err=True,
        )
        raise typer.Exit(1) from None
    print(f"Restored the backup of {manifest.created_at:%Y-%m-%d %H:%M} UTC.")
    print(f"Open secure emails: {resumed.summary()}.")
    print("Check it: `securemail audit verify` (the head was " + manifest.audit_head + ").")


@app.command()
def resume() -> None:
    """Start the workflow of every open secure email whose workflow Temporal lacks (with
    its recorded expiry and counters); running it again changes nothing."""
    from workers.backup import resume as run_resume

    found = asyncio.run(run_resume(get_settings()))
    print(f"Open secure emails: {found.summary()}.")
    for skipped in found.not_resumable:
        print(f"  not resumed: {skipped.secure_email_id}: {skipped.reason}")
    for closed in found.closed:
        print(f"  closed in Temporal, open in the database: {closed}")


@legacy_app.command("open")
def legacy_open() -> None:
    """Count open secure emails of the legacy workflow; exit 0 only when none is open
    anywhere, so workflows/legacy, activities/legacy.py and web/legacy.py can be
    deleted."""
    from sqlalchemy.exc import SQLAlchemyError

    from workers.legacy import open_legacy

    try:
        found = asyncio.run(open_legacy(get_settings()))
    except SQLAlchemyError as error:
        print(f"Cannot read the database (is it migrated?): {error.__class__.__name__}")
        raise typer.Exit(2) from None
    temporal = "unknown (Temporal unreachable)" if found.in_temporal is None else found.in_temporal
    print(f"Open in the database: {found.in_database}")
    print(f"Running in Temporal: {temporal}")
    if not found.none_open:
        raise typer.Exit(1)
    print("None open: workflows/legacy can be deleted.")


@operator_app.command("create")
def operator_create(
    email: Annotated[str, typer.Argument(help="The operator's email address")],
    name: Annotated[
        str | None, typer.Option(help="Shown on the operator page; the address if not given")
    ] = None,
    days: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_OPERATOR_TOKEN_DAYS, help="Days until the codec token printed ends"
        ),
    ] = DEFAULT_OPERATOR_TOKEN_DAYS,
) -> None:
    """Create a platform operator (asks for a password) and print a codec token for the
    Temporal CLI's --codec-auth. A revoked operator is enabled again, with the new
    password and a new token."""
    from infra.operators import OperatorError
    from workers.admin import create_operator

    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        created = asyncio.run(create_operator(get_settings(), email, name, password, days))
    except OperatorError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(1) from None
    print(f"Operator {created.email} {'enabled again' if created.enabled_again else 'created'}.")
    print(f"Codec token, shown once, ends {created.expires_at:%Y-%m-%d %H:%M} UTC:")
    print(created.token)


@operator_app.command("list")
def operator_list() -> None:
    """Every operator: state, created, last used, live tokens and sessions (times UTC)."""
    from workers.admin import list_operators

    def when(at: datetime | None) -> str:
        return f"{at:%Y-%m-%d %H:%M}" if at is not None else "never"

    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    found = asyncio.run(list_operators(get_settings()))
    if not found:
        print("No operators.")
    for summary in found:
        state = "active" if summary.active else "revoked"
        print(
            f"{summary.email}  {state}  created {when(summary.created_at)}  "
            f"last used {when(summary.last_used_at)}  "
            f"{count(summary.live_tokens, 'token')}  {count(summary.live_sessions, 'session')}"
        )


@operator_app.command("revoke")
def operator_revoke(
    email: Annotated[str, typer.Argument(help="The operator's email address")],
) -> None:
    """End an operator: their tokens and sessions are refused from the next request, and
    their password no longer logs in (`operator create` enables them again)."""
    from infra.operators import OperatorError
    from workers.admin import revoke_operator

    try:
        revoked = asyncio.run(revoke_operator(get_settings(), email))
    except OperatorError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(1) from None
    already = " (it was already revoked)" if not revoked.was_active else ""
    print(
        f"Revoked operator {revoked.email}{already}: {revoked.tokens} token(s) revoked, "
        f"{revoked.sessions} session(s) ended."
    )


@keys_app.command("rotate")
def keys_rotate(
    keyset: Annotated[str, typer.Option(help="encryption, objects, portal, or all")] = "all",
    out: Annotated[
        Path | None,
        typer.Option(help="Write each new keyset to DIR/<variable>.json (mode 600)"),
    ] = None,
    add_only: Annotated[
        bool,
        typer.Option(
            "--add-only",
            help="Add the new key without making it primary (promote it once every "
            "process has it: python -m infra.crypto.keys promote KIND KEY_ID)",
        ),
    ] = False,
) -> None:
    """Add a new primary key to each keyset (the old keys kept): print the new keysets,
    or write them to --out, for the variables that hold them. Nothing is stored here."""
    from workers.keys import KEYSET_NAMES, KEYSETS, KeysetName, rotate, write_secret

    names: list[KeysetName] = [name for name in KEYSET_NAMES if keyset in ("all", name)]
    if not names:
        raise typer.BadParameter(f"one of {', '.join(KEYSET_NAMES)} or all", param_hint="--keyset")
    what = "new key (not primary yet)" if add_only else "new primary key"
    for made in rotate(get_settings(), names, promote=not add_only):
        protects = KEYSETS[made.name][2]
        if out is not None:
            path = out / f"{made.variable}.json"
            write_secret(path, made.text)
            print(f"{made.variable} ({protects}): {what} {made.key_id}, in {path}")
        else:
            print(f"{made.variable} ({protects}): {what} {made.key_id}:")
            print(made.text)
    print(
        "Put each in its variable (.env, or your secret store) for every process, the web "
        "app and the worker alike, and restart them: old keys stay in the keysets and "
        "still open what they sealed. Then run `securemail keys reencrypt`."
    )


@keys_app.command("reencrypt")
def keys_reencrypt(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per page")] = 200,
    wait: Annotated[bool, typer.Option(help="Show progress until it finishes")] = True,
) -> None:
    """Rewrite every encrypted field and stored object under the current primary keys,
    as a workflow (resumable; running it again joins the pass already running)."""
    from infra.temporal.client import connect
    from workers.keys import progress_line, start_reencrypt
    from workflows.reencrypt import ReencryptWorkflow

    async def run() -> None:
        settings = get_settings()
        client = await connect(settings)
        handle = await start_reencrypt(client, settings.task_queue, batch)
        print(f"Re-encryption running as workflow {handle.id}.")
        if not wait:
            return
        result = asyncio.ensure_future(handle.result())
        last = ""
        while not result.done():
            progress = await handle.query(ReencryptWorkflow.progress)
            line = "starting" if progress is None else progress_line(progress)
            if line != last:
                print(line)
                last = line
            await asyncio.wait([result], timeout=2)
        print(progress_line(result.result()))
        print("Done: everything is under the primary keys.")

    asyncio.run(run())


@keys_app.command("retire")
def keys_retire(
    key_id: Annotated[int, typer.Option(help="The key to remove")],
    keyset: Annotated[str, typer.Option(help="encryption, objects or portal")],
    out: Annotated[
        Path | None, typer.Option(help="Write the keyset to this file (mode 600)")
    ] = None,
) -> None:
    """Remove a key that nothing uses any more; refuse, naming what still uses it."""
    from temporalio.service import RPCError

    from infra.crypto.keys import UnknownKey
    from infra.crypto.rotation import KeyInUse
    from workers.keys import KEYSET_NAMES, KEYSETS, key_usage, retire, write_secret

    name = next((n for n in KEYSET_NAMES if n == keyset), None)
    if name is None:
        raise typer.BadParameter(f"one of {', '.join(KEYSET_NAMES)}", param_hint="--keyset")
    settings = get_settings()
    try:
        usage = asyncio.run(key_usage(settings, name, key_id))
        text = retire(settings, name, key_id, usage)
    except (RPCError, RuntimeError) as error:
        print(f"Cannot search Temporal's histories, so key {key_id} is kept: {error}")
        raise typer.Exit(2) from None
    except KeyInUse as error:
        print(
            f"Refused: {error}. Run `securemail keys reencrypt` (portal keys: wait until "
            "those secure emails expire)."
        )
        raise typer.Exit(1) from None
    except UnknownKey:
        print(f"Keyset {name} has no key {key_id}.")
        raise typer.Exit(1) from None
    variable = KEYSETS[name][1]
    if out is not None:
        write_secret(out, text)
        print(f"{variable} without key {key_id} is in {out}.")
    else:
        print(f"{variable} without key {key_id}:")
        print(text)
    print("Put it in its variable for every process and restart them.")


if __name__ == "__main__":
    app()
