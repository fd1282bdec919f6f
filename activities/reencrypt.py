"""The activities of re-encryption (``workflows.reencrypt``): one page of one step each.

Each page is its own transaction (fields) or a run of in-place rewrites (objects), and
skips what is under the primary key already, so a page retried after a crash, or a pass
started again after its workflow was terminated, redoes nothing that was done.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.key_rotation import ReencryptPage, ReencryptStep
from infra import reencryption
from infra.crypto.keys import EncryptionKeys
from infra.objects.encrypted import EncryptedObjectStore


class PageToReencrypt(BaseModel):
    kind: str
    table: str
    after_id: str
    limit: int

    @classmethod
    def next_of(cls, step: ReencryptStep, limit: int) -> PageToReencrypt:
        """The page after the last one the step has done."""
        return cls(kind=step.kind, table=step.table, after_id=step.after_id, limit=limit)


class StepToCount(BaseModel):
    kind: str
    table: str


class ReencryptActivities:
    def __init__(
        self, engine: AsyncEngine, keys: EncryptionKeys, store: EncryptedObjectStore
    ) -> None:
        self._engine = engine
        self._keys = keys
        self._store = store

    @activity.defn
    async def count_to_reencrypt(self, step: StepToCount) -> int:
        """How many rows the step goes through, for the progress shown."""
        return await reencryption.count_rows(self._engine, step.table)

    @activity.defn
    async def reencrypt_page(self, page: PageToReencrypt) -> ReencryptPage:
        """One page; a value or object that does not open (altered, or sealed under a key
        the keyset lacks) stops the pass, naming the table and row, rather than being
        retried for ever."""
        try:
            if page.kind == "fields":
                return await reencryption.reencrypt_fields_page(
                    self._engine, self._keys, page.table, page.after_id, page.limit
                )
            return await reencryption.reencrypt_objects_page(
                self._engine, self._store, self._keys, page.table, page.after_id, page.limit
            )
        except reencryption.NotReencrypted as error:
            raise ApplicationError(str(error), non_retryable=True) from None
