"""Re-encryption of every encrypted field and stored object under the primary keys.

``securemail keys reencrypt`` starts it (after ``keys rotate`` is deployed everywhere);
the workflow goes through each step of ``infra.reencryption.steps()`` a page at a time,
keeping where it is in its own state, and continues as new when its history grows, with
that state. A worker killed mid-page has the page retried; a workflow terminated and
started again goes through from the start, finding what was done under the primary key
already and leaving it. The ``progress`` query answers what the CLI shows.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.reencrypt import PageToReencrypt, ReencryptActivities, StepToCount
    from domain.key_rotation import ReencryptProgress

# Pages per run before continuing as new: each page is a few events of history.
PAGES_PER_RUN = 500
_PAGE_TIMEOUT = timedelta(minutes=10)
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name="Reencrypt")
class ReencryptWorkflow:
    def __init__(self) -> None:
        self._progress: ReencryptProgress | None = None

    @workflow.query
    def progress(self) -> ReencryptProgress | None:
        return self._progress

    @workflow.run
    async def run(self, progress: ReencryptProgress) -> ReencryptProgress:
        self._progress = progress
        pages = 0
        for step in progress.steps:
            if step.total is None:
                step.total = await workflow.execute_activity_method(
                    ReencryptActivities.count_to_reencrypt,
                    StepToCount(kind=step.kind, table=step.table),
                    start_to_close_timeout=_PAGE_TIMEOUT,
                    retry_policy=_RETRY,
                )
            while not step.done:
                if pages >= PAGES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                    workflow.continue_as_new(progress)
                page = await workflow.execute_activity_method(
                    ReencryptActivities.reencrypt_page,
                    PageToReencrypt.next_of(step, progress.batch),
                    start_to_close_timeout=_PAGE_TIMEOUT,
                    retry_policy=_RETRY,
                )
                pages += 1
                step.after_id = page.last_id
                step.seen += page.seen
                step.rewritten += page.rewritten
                step.current += page.current
                step.missing += page.missing
                step.done = page.done
        return progress
