"""One sync of a practice's patients from Open Dental, started by its Schedule every
``sync_minutes`` or by "Sync now".

``GET /patients/Simple`` is read a page at a time from ``Offset`` 0, in steps of the
page Open Dental returns (100 on the cloud API, up to 1,000 on a Local API), until a
short page, asking only for patients changed since the ``serverDateTime`` the previous
sync received. Each page is fetched and written by one activity, so the history holds
counts and PatNums, never a name or an address. Running it twice changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.open_dental import OpenDentalActivities
    from domain.open_dental import (
        CLOUD_PAGE_SIZE,
        KEYS_REFUSED_ERROR,
        REQUEST_REFUSED_ERROR,
        SYNC_WORKFLOW,
        FamiliesToLink,
        OpenDentalSync,
        PageToSync,
        SyncFinished,
        SyncSummary,
    )

# Open Dental busy (429) or failing (5xx): back off from a second to a few minutes,
# for about half an hour, before this sync gives up (the next one starts afresh).
OPEN_DENTAL_RETRIES = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=12,
    non_retryable_error_types=[KEYS_REFUSED_ERROR, REQUEST_REFUSED_ERROR],
)
DATABASE_RETRIES = RetryPolicy(maximum_interval=timedelta(seconds=30))
PAGE_TIMEOUT = timedelta(minutes=2)
STEP_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=SYNC_WORKFLOW)
class OpenDentalSyncWorkflow:
    @workflow.run
    async def run(self, sync: OpenDentalSync) -> SyncSummary:
        start = await workflow.execute_activity_method(
            OpenDentalActivities.begin_sync,
            sync,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=DATABASE_RETRIES,
        )
        summary = SyncSummary()
        if not start.ready:
            return summary
        offset, page_size = 0, 0
        server_date_time: str | None = None
        unlinked: list[tuple[int, int]] = []
        while True:
            try:
                page = await workflow.execute_activity_method(
                    OpenDentalActivities.sync_page,
                    PageToSync(
                        practice_id=sync.practice_id,
                        date_t_stamp=start.date_t_stamp,
                        offset=offset,
                    ),
                    start_to_close_timeout=PAGE_TIMEOUT,
                    retry_policy=OPEN_DENTAL_RETRIES,
                )
            except ActivityError as error:
                cause = error.cause
                if isinstance(cause, ApplicationError) and cause.type == KEYS_REFUSED_ERROR:
                    summary.keys_refused = True
                    return summary
                raise
            summary.read += page.read
            summary.added += page.added
            summary.changed += page.changed
            summary.unchanged += page.unchanged
            summary.without_email += page.without_email
            unlinked.extend(page.unlinked)
            # The earliest clock of the sync: what changed while it paged is read again.
            if page.server_date_time and (
                server_date_time is None or page.server_date_time < server_date_time
            ):
                server_date_time = page.server_date_time
            page_size = max(page_size, page.read)
            if page.read < max(page_size, CLOUD_PAGE_SIZE):
                break
            offset += page.read
        if unlinked:
            await workflow.execute_activity_method(
                OpenDentalActivities.link_families,
                FamiliesToLink(practice_id=sync.practice_id, unlinked=unlinked),
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=DATABASE_RETRIES,
            )
        await workflow.execute_activity_method(
            OpenDentalActivities.finish_sync,
            SyncFinished(
                practice_id=sync.practice_id,
                server_date_time=server_date_time,
                summary=summary.words(),
            ),
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=DATABASE_RETRIES,
        )
        return summary
