"""The Tailor worker: the interpreter workflow and its activities on one task queue."""
from __future__ import annotations

import importlib.util
import os
import py_compile
import sys
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.compiler import CompiledModel
from .activities import Activities
from .deliveries import DeliveryActivities, ReportDeliveryWorkflow
from .mail import MailSettings
from .settings import Settings
from .recurrence import SweepActivities, SweepWorkflow
from .webhooks import WebhookActivities, WebhookSettings, WebhookWorkflow
from .workflows import ProcessWorkflow

# Deterministic, pure libraries the interpreter uses (templates, calendars, holidays, schemas):
# imported once outside the sandbox instead of re-imported, and restricted, per workflow run.
PASSTHROUGH = ("engine", "jinja2", "markupsafe", "jsonschema", "jsonschema_specifications", "referencing", "rpds", "attrs",
               "holidays", "dateutil", "six", "zoneinfo", "tzdata")
# Workflow-task long polls kept open at once (the SDK's default is 5). Each poll brings one workflow task and is
# re-issued only after that, so when many timers fire in the same second (a burst of deadlines) the woken workflows
# queue at the server behind those few polls: 100 alerts due at once were raised up to 1.8 s late with 5, under
# 0.96 s with 50 (bench/runtime_bench.py). An idle poll is an open request, nothing more.
WORKFLOW_TASK_POLLS = 50
# Workflows kept in memory between their workflow tasks (the SDK's default is 1,000). A cached process resumes from
# where it waits; one evicted is rebuilt by replaying its history in a fresh sandbox when its next task comes (a
# timer, an action), a few ms of CPU. Memory grows with the cache, not with the open processes: see docs/runtime.md,
# "Sizing the workflow cache". TAILOR_WORKFLOW_CACHE sets it (runtime/settings.py).
WORKFLOW_CACHE = Settings.workflow_cache
WORKFLOWS = (ProcessWorkflow, SweepWorkflow, WebhookWorkflow, ReportDeliveryWorkflow)


def regular_activity_slots(pool: ThreadPoolExecutor) -> int:
    """Regular activities (email, webhooks, report deliveries) run on at most half the activity threads.

    Local activities (the database writes a workflow task waits on: a task row, an alert at its deadline) share the
    pool with them, first come first served: when a burst of deadlines schedules as many emails as it raises alerts,
    emails holding every thread would leave the next alerts' writes queued behind them. Half the threads are always
    there for the writes; the emails, retried on their own, wait a little longer."""
    return max(1, pool._max_workers // 2)


def worker_options(pool: ThreadPoolExecutor, cache: int = WORKFLOW_CACHE, workflows: tuple[type, ...] = (), guard: bool = False) -> dict:
    """The tuning every Tailor worker runs with (and the benchmarks' bare workers, so both sides run alike), for the
    worker of these workflow classes (see workflow_runner)."""
    return {"activity_executor": pool, "max_concurrent_activities": regular_activity_slots(pool),
            "max_concurrent_workflow_task_polls": WORKFLOW_TASK_POLLS, "max_cached_workflows": cache,
            "workflow_runner": workflow_runner(*workflows, guard=guard)}


def compile_workflow_modules() -> None:
    """Write the bytecode of the modules a guarded sandbox re-imports for every workflow run, if missing or stale.

    The sandbox runs each workflow in fresh copies of its modules; without a .pyc (editable installs, or
    PYTHONDONTWRITEBYTECODE set, as container images often do) every copy compiles the source again, a few
    ms of CPU per workflow task. py_compile writes the cache whatever that setting says.
    """
    for cls in WORKFLOWS:
        source = sys.modules[cls.__module__].__file__
        cached = importlib.util.cache_from_source(source)
        try:
            if os.path.exists(cached) and os.path.getmtime(cached) >= os.path.getmtime(source):
                continue
            py_compile.compile(source, cfile=cached, doraise=True)
        except (OSError, py_compile.PyCompileError):
            pass  # a read-only install: the sandbox compiles the source as it always did


def workflow_runner(*workflows: type, guard: bool = False) -> SandboxedWorkflowRunner:
    """The sandbox the workflows run in, with PASSTHROUGH imported once per worker, and so the workflows' own modules,
    unless `guard`.

    By default the sandbox imports a workflow's module afresh, under its restrictions, for every run it starts: the
    guard that fails a workflow task at once when workflow code calls something non-deterministic (the clock, random,
    I/O). For Tailor's interpreter that import, its `@workflow.defn` class of updates and queries, was 46% of the
    worker's interpreter time while processes were being started (py-spy, docs/runtime.md "Where a start's time
    goes"). Tailor's workflow code is its own, not a pack's (packs are YAML, run by the interpreter through the pure,
    passed-through `runtime.interpreter` and `engine`): the guard is kept where it pays, in the tests, which replay
    recorded histories and run processes with `guard=True`, and every worker imports its workflow modules once."""
    modules = PASSTHROUGH if guard else (*PASSTHROUGH, *sorted({w.__module__ for w in workflows}))
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules))


def make_worker(client: Client, engine: sa.Engine, compiled: CompiledModel, task_queue: str, mail: MailSettings,
                pool: ThreadPoolExecutor, hooks: WebhookSettings = WebhookSettings(), cache: int = WORKFLOW_CACHE,
                guard: bool = False) -> Worker:
    """The worker of every Tailor workflow; `guard`: run the workflow code under the sandbox's restrictions (tests)."""
    if guard:
        compile_workflow_modules()
    acts = Activities(engine, compiled, mail)
    sweep = SweepActivities(engine, compiled)
    delivery = DeliveryActivities(engine, compiled, mail)
    worker = Worker(client, task_queue=task_queue, workflows=list(WORKFLOWS),
                    activities=[*acts.all(), sweep.list_records, WebhookActivities(hooks).deliver, delivery.deliver],
                    **worker_options(pool, cache, WORKFLOWS, guard))
    worker.tailor_parts = (acts, sweep, delivery)  # what reads the configuration: a new release is handed to them (admin/run.py)
    return worker
