"""The bare baselines of the runtime benchmark: the least a temporalio workflow can do for one task.

`BareWorkflow` runs one regular activity that inserts the task row, then waits for one update whose
handler runs one activity that marks the row done: the idiomatic way. `BareLocalWorkflow` does the
same with local activities, as Tailor's interpreter does its database writes. Kept in their own module
because the workflow sandbox re-imports a workflow's module, which it cannot do for a script run as
`__main__`.
"""
from __future__ import annotations

import datetime as dt

from temporalio import workflow
from temporalio.common import RetryPolicy

# The same timeouts and retry policy as Tailor's interpreter (runtime/workflows.py).
ACTIVITY_TIMEOUT = dt.timedelta(seconds=30)
RETRY = RetryPolicy(initial_interval=dt.timedelta(seconds=1), maximum_interval=dt.timedelta(seconds=30))


@workflow.defn(name="BareTask")
class BareWorkflow:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, key: str) -> None:
        await workflow.execute_activity("bare.create_row", key, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY)
        await workflow.wait_condition(lambda: self.done)
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update
    async def complete(self, user_id: int) -> dict:
        await workflow.execute_activity("bare.complete_row", [workflow.info().workflow_id, user_id],
                                        start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY)
        self.done = True
        return {"status": "done"}


@workflow.defn(name="BareLocalTask")
class BareLocalWorkflow:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, key: str) -> None:
        await workflow.execute_local_activity("bare.create_row", key, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY)
        await workflow.wait_condition(lambda: self.done)
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update
    async def complete(self, user_id: int) -> dict:
        await workflow.execute_local_activity("bare.complete_row", [workflow.info().workflow_id, user_id],
                                              start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY)
        self.done = True
        return {"status": "done"}


@workflow.defn(name="BareAlert")
class BareAlertWorkflow:
    """Sleeps until its deadline, then one local activity writes the alert row: the least any system on Temporal must
    do to raise an alert at a deadline (bench/lateness_bench.py)."""

    @workflow.run
    async def run(self, arg: dict) -> None:
        due = dt.datetime.fromisoformat(arg["due_at"])
        wait = (due - workflow.now()).total_seconds()
        if wait > 0:
            await workflow.sleep(wait)
        await workflow.execute_local_activity("bare.raise_alert", arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY)


@workflow.defn(name="BareWait")
class BareWaitWorkflow:
    """One local activity writes the task row, then a timer waits for the deadline (hours away): an open process at its
    barest (bench/scale_bench.py)."""

    @workflow.run
    async def run(self, key: str) -> None:
        await workflow.execute_local_activity("bare.create_row", key, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY)
        await workflow.sleep(dt.timedelta(hours=2))
