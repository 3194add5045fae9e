"""The Tailor worker: the interpreter workflow and its activities on one task queue."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from temporalio.client import Client
from temporalio.worker import Worker

from engine.compiler import CompiledModel
from .activities import Activities, MailSettings
from .workflows import ProcessWorkflow


def make_worker(client: Client, engine: sa.Engine, compiled: CompiledModel, task_queue: str, mail: MailSettings,
                pool: ThreadPoolExecutor) -> Worker:
    acts = Activities(engine, compiled, mail)
    return Worker(client, task_queue=task_queue, workflows=[ProcessWorkflow], activities=acts.all(), activity_executor=pool,
                  max_concurrent_activities=pool._max_workers)
