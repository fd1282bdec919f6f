"""Key rotation for operators (``securemail keys``): a new primary key in each keyset,
re-encryption under it, and keysets without the keys nothing uses any more.

Keysets are secrets of the environment, never of the database: these commands read them
from the settings and write the keysets they make to files of mode 600 (or print them),
for the operator to put in the same variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import tink
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from domain.key_rotation import REENCRYPT_WORKFLOW_ID, ReencryptProgress
from infra import reencryption
from infra.crypto.keys import Kind, add_key, encryption_keys, format_keyset, portal_keys
from infra.crypto.rotation import KeyInUse, primary_id, rotated_keyset, without_key
from infra.db.engine import make_engine
from infra.objects.encrypted import EncryptedObjectStore, secure_object_store
from infra.settings import Settings
from infra.temporal.client import connect
from infra.temporal.codec import KEY_ID
from workflows.reencrypt import ReencryptWorkflow

KeysetName = Literal["encryption", "objects", "portal"]
KEYSET_NAMES: tuple[KeysetName, ...] = ("encryption", "objects", "portal")
# Each keyset: its kind (infra.crypto.keys), its variable, and what it protects.
KEYSETS: dict[KeysetName, tuple[Kind, str, str]] = {
    "encryption": (
        "aead",
        "SECURE_EMAIL_ENCRYPTION_KEYSET",
        "database fields and Temporal payloads",
    ),
    "objects": ("objects", "SECURE_EMAIL_OBJECT_KEYSET", "stored files"),
    "portal": ("portal", "SECURE_EMAIL_PORTAL_KEYSET", "notice links and passcodes"),
}


def current_keyset(settings: Settings, name: KeysetName) -> tink.KeysetHandle:
    if name == "encryption":
        return encryption_keys(settings).aead_keyset
    if name == "objects":
        return encryption_keys(settings).object_keyset
    return portal_keys(settings).keyset


@dataclass(frozen=True)
class NewKeyset:
    name: KeysetName
    variable: str
    key_id: int
    text: str


def rotate(settings: Settings, names: list[KeysetName], *, promote: bool = True) -> list[NewKeyset]:
    """Each keyset named with a new key, its old keys kept: primary at once, or (not
    ``promote``) only added, for deployments that restart one process at a time."""
    made = []
    for name in names:
        kind, variable, _ = KEYSETS[name]
        current = current_keyset(settings, name)
        if promote:
            handle, key_id = rotated_keyset(current, kind)
        else:
            handle, key_id = add_key(current, kind)
        made.append(NewKeyset(name, variable, key_id, format_keyset(handle)))
    return made


def write_secret(path: Path, text: str) -> None:
    """``text`` into ``path``, readable by its owner only, from the moment it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")


# Re-encryption --------------------------------------------------------------------------


async def start_reencrypt(
    client: Client, task_queue: str, batch: int
) -> WorkflowHandle[ReencryptWorkflow, ReencryptProgress]:
    """The re-encryption workflow: the running one if there is one, else a new pass."""
    return await client.start_workflow(
        ReencryptWorkflow.run,
        ReencryptProgress(steps=reencryption.steps(), batch=batch),
        id=REENCRYPT_WORKFLOW_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def progress_line(progress: ReencryptProgress) -> str:
    """One line per step that has begun: rows gone through of the total, and what was
    rewritten, already current, or missing (objects deleted with their messages)."""
    parts = []
    for step in progress.steps:
        if step.total is None:
            continue
        state = "done" if step.done else f"{step.seen}/{step.total}"
        parts.append(
            f"{step.kind} {step.table}: {state}, {step.rewritten} rewritten, "
            f"{step.current} already current"
            + (f", {step.missing} missing" if step.missing else "")
        )
    return "; ".join(parts) or "starting"


# Retiring ---------------------------------------------------------------------------------


@dataclass
class KeyUsage:
    """What still needs a key: values per table, objects, workflows, unexpired links."""

    fields: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    workflows: int = 0
    links: int = 0

    @property
    def in_use(self) -> bool:
        return bool(self.fields) or bool(self.objects or self.workflows or self.links)

    def describe(self) -> str:
        parts = [f"{count} value(s) in {table}" for table, count in sorted(self.fields.items())]
        if self.objects:
            parts.append(f"{self.objects} stored object(s)")
        if self.workflows:
            parts.append(f"{self.workflows} workflow history(ies) in Temporal")
        if self.links:
            parts.append(f"{self.links} unexpired secure email(s) whose link it issued")
        return ", ".join(parts)


def history_names_key(history: History, key_id: int) -> bool:
    """Whether a workflow history holds a payload the encryption key ``key_id`` sealed:
    the codec puts the key id in each payload's metadata, a map entry whose bytes are
    the same wherever it is in the history."""
    name, value = KEY_ID.encode(), str(key_id).encode()
    entry = b"\n" + bytes([len(name)]) + name + b"\x12" + bytes([len(value)]) + value
    return entry in history.SerializeToString()


async def workflows_under(client: Client, key_id: int) -> int:
    """How many workflows Temporal still keeps (running, or closed within the
    namespace's retention) whose history holds a payload sealed with ``key_id``."""
    found = 0
    async for execution in client.list_workflows(""):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        if history_names_key(History(events=history.events), key_id):
            found += 1
    return found


async def key_usage(
    settings: Settings,
    name: KeysetName,
    key_id: int,
    *,
    client: Client | None = None,
    store: EncryptedObjectStore | None = None,
) -> KeyUsage:
    """What still needs key ``key_id`` of keyset ``name``. For the encryption keyset,
    Temporal's histories are searched too: ``client``, or one connected from settings."""
    usage = KeyUsage()
    engine = make_engine(settings.database_url, connections=1)
    try:
        if name == "encryption":
            for table, per_key in (await reencryption.field_key_counts(engine)).items():
                if per_key.get(key_id):
                    usage.fields[table] = per_key[key_id]
            usage.workflows = await workflows_under(client or await connect(settings), key_id)
        elif name == "objects":
            keys = encryption_keys(settings)
            counts = await reencryption.object_key_counts(
                engine, store or secure_object_store(settings), keys
            )
            usage.objects = counts.get(key_id, 0)
        else:
            usage.links = await reencryption.unexpired_links_under(
                engine, portal_keys(settings), str(key_id)
            )
    finally:
        await engine.dispose()
    return usage


def retire(settings: Settings, name: KeysetName, key_id: int, usage: KeyUsage) -> str:
    """The keyset without ``key_id``, as its variable holds it; refuses while anything
    still uses the key (``usage``) or while it is the primary key."""
    handle = current_keyset(settings, name)
    if primary_id(handle) == key_id:
        raise KeyInUse(f"key {key_id} is the primary key of {name}: rotate first")
    if usage.in_use:
        raise KeyInUse(f"key {key_id} of {name} is still used by {usage.describe()}")
    return format_keyset(without_key(handle, key_id))
