"""``securemail backup DIR`` and ``securemail restore DIR``: the database, every stored
object as stored, and ``manifest.json``; keys kept apart.

A backup directory holds the database copy (``infra.backup_database``), ``objects/``
(``infra.backup_objects``) and the manifest: rows per table, each object's key, size and
SHA-256, the audit chain's head, the ids of the keys the deployment holds (never key
material), the schema revision and the time. The keysets are secrets kept elsewhere;
the manifest names the key ids a restore needs. ``--include-keys`` adds ``keys.json``
for development only (refused in production).

A restore goes into an empty deployment only, and checks before it changes anything:
the keys the manifest names are configured, the deployment holds no data, every object
in the backup is there and unchanged. Then it restores the database and the objects
and checks the rows it restored against the manifest. Starting the workflows of open
secure emails again is the caller's next step (``workflows.resuming``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from infra import backup_database
from infra.backup_objects import ObjectEntry, RawBucket, copy_in, copy_out, problem_with
from infra.crypto.keys import (
    Kind,
    dev_keyset_file,
    encryption_keys,
    format_keyset,
    key_ids,
    portal_keys,
)
from infra.db.engine import make_engine
from infra.settings import Settings

MANIFEST = "manifest.json"
KEYS = "keys.json"
FORMAT = 1

# The Settings field of each keyset, and its environment variable.
KEYSET_FIELDS: dict[Kind, str] = {
    "aead": "encryption_keyset",
    "objects": "object_keyset",
    "portal": "portal_keyset",
}


class BackupRefused(Exception):
    """A backup or restore that must not happen, in the operator's words."""


class RestoreFailed(Exception):
    """The backup does not restore as it is: each problem names what (ids and keys only)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class StoredObjectEntry(BaseModel):
    key: str
    size: int
    sha256: str


class Keysets(BaseModel):
    """Key ids (Tink's) of each keyset, the primary first: which keys a restore needs."""

    aead: list[int]
    objects: list[int]
    portal: list[int]


class Manifest(BaseModel):
    format: int = FORMAT
    created_at: datetime
    database: str  # "sqlite" or "postgresql"
    database_file: str
    schema_revision: list[str]
    counts: dict[str, int]
    audit_head: str  # POSITION:HASH, as `securemail audit anchor` prints it
    keysets: Keysets
    keys_included: bool
    objects: list[StoredObjectEntry]

    @property
    def object_bytes(self) -> int:
        return sum(entry.size for entry in self.objects)


def configured_key_ids(settings: Settings) -> Keysets:
    keys, portal = encryption_keys(settings), portal_keys(settings)
    return Keysets(
        aead=key_ids(keys.aead_keyset),
        objects=key_ids(keys.object_keyset),
        portal=[int(key_id) for key_id in portal.ids],
    )


def _keys_json(settings: Settings) -> str:
    keys, portal = encryption_keys(settings), portal_keys(settings)
    return json.dumps(
        {
            "encryption_keyset": format_keyset(keys.aead_keyset),
            "object_keyset": format_keyset(keys.object_keyset),
            "portal_keyset": format_keyset(portal.keyset),
        }
    )


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


async def back_up(
    settings: Settings,
    directory: Path,
    *,
    include_keys: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> Manifest:
    """Copies the running deployment into ``directory`` (new, or empty)."""
    if include_keys and settings.environment == "production":
        raise BackupRefused(
            "--include-keys is for development only: in production the keysets are kept "
            "apart from backups (see README, Backup and restore)"
        )
    if directory.exists() and any(directory.iterdir()):
        raise BackupRefused(f"{directory} is not empty: back up into a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    keysets = configured_key_ids(settings)
    engine = make_engine(settings.migration_database_url, connections=1)
    try:
        facts = await backup_database.back_up(engine, settings.migration_database_url, directory)
    finally:
        await engine.dispose()
    progress(f"database copied ({sum(facts.counts.values())} rows)")
    bucket = RawBucket(settings)
    entries: list[ObjectEntry] = []
    for key in await bucket.keys():
        entries.append(await copy_out(bucket, key, directory))
        if len(entries) % 1000 == 0:
            progress(f"{len(entries)} objects copied")
    progress(f"{len(entries)} objects copied")
    if include_keys:
        _write_private(directory / KEYS, _keys_json(settings))
    manifest = Manifest(
        created_at=datetime.now(UTC),
        **asdict(facts),
        keysets=keysets,
        keys_included=include_keys,
        objects=[StoredObjectEntry(key=e.key, size=e.size, sha256=e.sha256) for e in entries],
    )
    (directory / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    return manifest


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    if not path.is_file():
        raise BackupRefused(f"no {MANIFEST} in {directory}: not a backup made by securemail backup")
    try:
        manifest = Manifest.model_validate_json(path.read_text())
    except ValidationError as error:
        raise BackupRefused(f"{path} is not a manifest this release reads: {error}") from None
    if manifest.format != FORMAT:
        raise BackupRefused(f"{path} has format {manifest.format}; this release reads {FORMAT}")
    return manifest


def install_development_keys(settings: Settings, directory: Path) -> list[str]:
    """In development, a backup made with ``--include-keys`` gives a new deployment its
    keysets: written where development keeps them (mode 600), for each keyset that is
    neither configured nor already there. The keysets written, by kind."""
    path = directory / KEYS
    if settings.environment == "production" or not path.is_file():
        return []
    carried = json.loads(path.read_text())
    written: list[str] = []
    for kind, name in KEYSET_FIELDS.items():
        configured = getattr(settings, name).get_secret_value()
        target = dev_keyset_file(settings, kind)
        if configured or target.exists() or name not in carried:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_private(target, str(carried[name]))
        written.append(kind)
    return written


def missing_keys(manifest: Manifest, settings: Settings) -> list[str]:
    """Key ids the backup needs that this deployment's keysets lack, by keyset."""
    have = configured_key_ids(settings)
    problems = []
    for kind, name in KEYSET_FIELDS.items():
        lacking = sorted(set(getattr(manifest.keysets, kind)) - set(getattr(have, kind)))
        if lacking:
            variable = f"SECURE_EMAIL_{name.upper()}"
            problems.append(
                f"{variable} lacks key id(s) {', '.join(map(str, lacking))} "
                f"(in development: {dev_keyset_file(settings, kind)})"
            )
    return problems


async def data_held(settings: Settings) -> list[str]:
    """What this deployment already holds, if anything (rows by table, objects)."""
    engine = make_engine(settings.migration_database_url, connections=1)
    try:
        async with engine.connect() as connection:
            rows = await backup_database.data_rows(connection)
    finally:
        await engine.dispose()
    held = [f"{count} row(s) in {table}" for table, count in rows.items() if count]
    objects = len(await RawBucket(settings).keys())
    if objects:
        held.append(f"{objects} object(s) in bucket {settings.s3_bucket}")
    return held


async def restore(
    settings: Settings,
    directory: Path,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> Manifest:
    """Restores ``directory`` into this deployment, which must be empty."""
    manifest = read_manifest(directory)
    kind = backup_database.kind_of(settings.migration_database_url)
    if manifest.database != kind:
        raise BackupRefused(
            f"this backup is of a {manifest.database} database and the deployment's is "
            f"{kind}: restore into a database of the same kind"
        )
    installed = install_development_keys(settings, directory)
    if installed:
        progress(f"development keysets installed from {KEYS}: {', '.join(installed)}")
    lacking = missing_keys(manifest, settings)
    if lacking:
        raise BackupRefused(
            "the keys this backup was sealed with are not configured: " + "; ".join(lacking)
        )
    held = await data_held(settings)
    if held:
        raise BackupRefused(
            "this deployment is not empty (" + ", ".join(held) + "). Restore only into an "
            "empty one: a new database (PostgreSQL: createdb; SQLite: a new file) and a new "
            "bucket, named by SECURE_EMAIL_DATABASE_URL and SECURE_EMAIL_S3_BUCKET; "
            "nothing else needs to run first"
        )
    problems = []
    for entry in manifest.objects:
        problem = await problem_with(directory, _entry(entry))
        if problem is not None:
            problems.append(problem)
    if problems:
        raise RestoreFailed(problems)
    progress(f"{len(manifest.objects)} objects checked against the manifest")
    await backup_database.restore(
        settings.migration_database_url, settings.database_url, directory, manifest.database
    )
    engine = make_engine(settings.migration_database_url, connections=1)
    try:
        counts = await backup_database.counts_of(engine)
    finally:
        await engine.dispose()
    differing = [
        f"table {table}: {counts.get(table, 0)} row(s) restored, {count} in the manifest"
        for table, count in manifest.counts.items()
        if counts.get(table, 0) != count
    ]
    if differing:
        raise RestoreFailed(differing)
    progress(f"database restored ({sum(counts.values())} rows)")
    bucket = RawBucket(settings)
    await bucket.store.ensure_bucket()
    for entry in manifest.objects:
        problem = await copy_in(bucket, _entry(entry), directory)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise RestoreFailed(problems)
    progress(f"{len(manifest.objects)} objects restored")
    return manifest


def _entry(entry: StoredObjectEntry) -> ObjectEntry:
    return ObjectEntry(entry.key, entry.size, entry.sha256)
