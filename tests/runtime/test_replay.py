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
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from runtime.worker import workflow_runner
from runtime.workflows import ProcessWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_a_recorded_history_replays_under_the_current_code(path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[ProcessWorkflow], workflow_runner=workflow_runner())
    asyncio.run(replayer.replay_workflow(history))  # raises on any nondeterminism
