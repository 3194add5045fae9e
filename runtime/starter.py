"""Starting processes: deterministic workflow ids, so a retried request never starts a second one."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Iterable

import sqlalchemy as sa
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from engine.compiler import CompiledModel
from . import db, outbox, records
from .outbox import workflow_id
from .workflows import ProcessWorkflow, process_input

PROCESS_KEY = SearchAttributeKey.for_keyword("TailorProcess")
CUSTOMER_KEY = SearchAttributeKey.for_keyword("TailorCustomer")
VERSION_KEY = SearchAttributeKey.for_keyword("TailorVersion")
SEARCH_ATTRIBUTES = {"TailorProcess": "Keyword", "TailorCustomer": "Keyword", "TailorVersion": "Keyword"}
UNREACHABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)

log = logging.getLogger(__name__)


async def start_process(client: Client, spec: dict, *, key: str, task_queue: str, entity: str | None = None,
                        record_id: int | None = None, record: dict | None = None, inputs: dict | None = None,
                        started_by: int | None = None, search_attributes: bool = True, announce: Sequence[str] = (),
                        started_at: dt.datetime | None = None) -> WorkflowHandle:
    """Start (or find, if `key` already started it) the process instance for `key`, as of `started_at` (default: now)."""
    wid = workflow_id(spec["name"], key)
    attrs = None
    if search_attributes:
        pairs = [SearchAttributePair(PROCESS_KEY, spec["name"]), SearchAttributePair(VERSION_KEY, spec["version"])]
        if entity and record_id:
            pairs.append(SearchAttributePair(CUSTOMER_KEY, f"{entity}:{record_id}"))
        attrs = TypedSearchAttributes(pairs)
    arg = process_input(spec=spec, entity=entity, record_id=record_id, record=record or {}, inputs=inputs or {}, started_by=started_by,
                       started_at=(started_at or dt.datetime.now(dt.timezone.utc)).isoformat(), announce=announce)
    try:
        return await client.start_workflow(ProcessWorkflow.run, arg, id=wid, task_queue=task_queue,
                                           id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                                           id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                                           search_attributes=attrs or TypedSearchAttributes.empty)
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle(wid)  # it ran already for this key: never a second one


async def start_enqueued(client: Client, engine: sa.Engine, compiled: CompiledModel, task_queue: str, workflow_ids: Iterable[str],
                         *, announce: Sequence[str] = (), now: dt.datetime | None = None) -> list[str]:
    """Start the outbox rows a request just committed (those still pending), as of `now` (default: the clock's); returns
    the workflow ids started.

    Never raises: the change is committed, and whatever did not start here stays in the outbox for the drainer.
    """
    ids = list(workflow_ids)
    if not ids:
        return []
    try:
        rows = await asyncio.to_thread(_read, engine, lambda conn: outbox.pending(conn, ids))
        return await start_rows(client, engine, compiled, task_queue, rows, announce=announce, now=now)
    except Exception:  # the database or Temporal failing now must not fail a request whose change is saved
        log.warning("could not start %s now; the worker's drainer will", ", ".join(ids), exc_info=True)
        return []


async def start_rows(client: Client, engine: sa.Engine, compiled: CompiledModel, task_queue: str, rows: list[sa.Row], *,
                     announce: Sequence[str] = (), now: dt.datetime | None = None) -> list[str]:
    """Start outbox rows (as of `now`, default: the clock's), their record's data read as it is now, and write each outcome
    back to its row."""
    if not rows:
        return []
    data = await asyncio.to_thread(_read, engine, lambda conn: {r.id: _record_data(conn, compiled, r) for r in rows})
    started: list[str] = []
    failed: list[tuple[sa.Row, str]] = []
    abandoned: list[tuple[sa.Row, str]] = []
    for row in rows:
        spec = compiled.process_specs.get(row.process)
        found = data[row.id]
        if isinstance(found, records.RecordNotFound):
            abandoned.append((row, f"not started: {found}"))
        elif isinstance(found, Exception):
            failed.append((row, f"{type(found).__name__}: {found}"))
        elif spec is None:  # definitions deployed without it; a worker that has it may come back
            failed.append((row, f"the process '{row.process}' is not in the loaded definitions"))
        else:
            try:
                await start_process(client, spec, key=row.key, task_queue=task_queue, entity=row.entity, record_id=row.record_id,
                                    record=found, inputs=dict(row.inputs or {}), started_by=row.started_by, announce=announce,
                                    started_at=now)
            except Exception as exc:  # Temporal unreachable or refusing: the row stays pending for the next attempt
                failed.append((row, f"{type(exc).__name__}: {exc}"))
                if isinstance(exc, RPCError) and exc.status in UNREACHABLE:
                    break  # the rest wait for the next pass instead of each waiting out the client's retries
            else:
                started.append(row.workflow_id)
    await asyncio.to_thread(_write_outcomes, engine, now or outbox.utcnow(), started, failed, abandoned)
    return started


def _read(engine: sa.Engine, query):
    with engine.connect() as conn:
        return query(conn)


def _record_data(conn: sa.Connection, compiled: CompiledModel, row: sa.Row) -> dict | Exception:
    """The data of the row's record (empty when it has none), or why it cannot be read."""
    if not (row.entity and row.record_id):
        return {}
    try:
        return dict(records.get_record(conn, compiled, row.entity, row.record_id).data)
    except (records.RecordNotFound, records.UnknownEntity) as exc:
        return exc


def _write_outcomes(engine: sa.Engine, now: dt.datetime, started: list[str], failed: list[tuple[sa.Row, str]],
                    abandoned: list[tuple[sa.Row, str]]) -> None:
    with db.writing(engine) as conn:
        outbox.mark_started(conn, started, now)
        for row, error in failed:
            outbox.mark_failed(conn, row, error, now)
        for row, reason in abandoned:
            outbox.mark_abandoned(conn, row, reason)
    for row, error in failed:
        log.warning("starting %s failed (attempt %d): %s", row.workflow_id, row.attempts + 1, error)
    for row, reason in abandoned:
        log.warning("%s %s", row.workflow_id, reason)
