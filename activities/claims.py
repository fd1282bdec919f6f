"""Who claims a row of the database's for an activity (a notice to mail, an office
request to carry out): its workflow run and activity id. A retry of that same activity
(after a crash before its answer was recorded) is the same claimant and may claim again;
any other run, a copy started from a history included, is not."""

from __future__ import annotations

from temporalio import activity


def this_activity() -> str:
    info = activity.info()
    return f"{info.workflow_run_id}/{info.activity_id}"
