"""Histories recorded by earlier workflow code replay under the current code: processes running when a worker is
upgraded carry on instead of failing on nondeterminism.

`histories/follow_up-35cbec9.json` was recorded at commit 35cbec9 (before a step took its new state only once its
write was in, `STATE_AFTER_WRITE`): the follow_up process of test_workflows.py through a comment, a reassignment,
both escalation levels, a completion, a rejected and an approved approval, and the last step.
`histories/discount-40c54ce.json` was recorded at commit 40c54ce, the first with approval steps: the discount process of
test_approvals.py through comments on a task and on an approval, an approval handed to someone else, a rejection, the
resubmission, the second round's approval, and the last step.
`histories/follow_up-32a2195.json` was recorded at commit 32a2195, the last whose runs asked `workflow.patched` for every
behaviour added while runs were running (migratable, an alert's mail through the outbox, the state after the write): the
follow_up process through both escalation levels, a refused and a repeated completion, a rejected and an approved
approval, and the last step. Runs started since take those behaviours from their input (`ProcessInput.features`).
"""
from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from runtime.worker import workflow_runner
from runtime.workflows import ProcessWorkflow
from tests.runtime.wallclock import WallClockWorkflow

TEST_SERVER = str(Path(sys.executable).parent / "temporal-test-server")

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_a_recorded_history_replays_under_the_current_code(path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[ProcessWorkflow], workflow_runner=workflow_runner(ProcessWorkflow, guard=True))
    asyncio.run(replayer.replay_workflow(history))  # raises on any nondeterminism, and on a restricted call in the workflow code


def test_the_guard_refuses_workflow_code_that_reads_the_wall_clock_which_a_worker_runs_unguarded():
    """Workers import their workflow modules once (runtime.worker.workflow_runner); the tests' guard re-imports them under
    the sandbox's restrictions, so a non-deterministic call in workflow code fails there instead of in production."""
    async def run(guard: bool) -> str:
        async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=TEST_SERVER) as env:
            queue = f"q-{uuid.uuid4()}"
            async with Worker(env.client, task_queue=queue, workflows=[WallClockWorkflow], workflow_failure_exception_types=[Exception],
                              workflow_runner=workflow_runner(WallClockWorkflow, guard=guard)):
                return await env.client.execute_workflow(WallClockWorkflow.run, id=f"clock-{guard}", task_queue=queue)

    with pytest.raises(WorkflowFailureError) as refused:
        asyncio.run(run(guard=True))
    assert "datetime.datetime.now" in str(refused.value.cause)
    assert asyncio.run(run(guard=False))  # passed through: nothing stops it, so only the guarded tests would
