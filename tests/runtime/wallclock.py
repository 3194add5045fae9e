"""A workflow that reads the wall clock, which workflow code must not do (tests/runtime/test_replay.py): in a module of its
own because the guarded sandbox imports a workflow's module afresh for each run."""
import datetime as dt

from temporalio import workflow


@workflow.defn(name="TestWallClock")
class WallClockWorkflow:
    @workflow.run
    async def run(self) -> str:
        return dt.datetime.now().isoformat()  # non-deterministic: a replay would read another time
