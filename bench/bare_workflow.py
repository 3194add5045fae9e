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
