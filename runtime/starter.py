"""Starting processes: deterministic workflow ids, so a retried request never starts a second one."""
from __future__ import annotations

import datetime as dt
import re

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from .workflows import ProcessInput, ProcessWorkflow

PROCESS_KEY = SearchAttributeKey.for_keyword("TailorProcess")
CUSTOMER_KEY = SearchAttributeKey.for_keyword("TailorCustomer")
VERSION_KEY = SearchAttributeKey.for_keyword("TailorVersion")
SEARCH_ATTRIBUTES = {"TailorProcess": "Keyword", "TailorCustomer": "Keyword", "TailorVersion": "Keyword"}


def workflow_id(process: str, key: str) -> str:
    """`process/key`, where key names what started it (a submission id, a record change, a schedule run)."""
    return f"{process}/{re.sub(r'[^A-Za-z0-9_.:-]', '-', key)}"


async def start_process(client: Client, spec: dict, *, key: str, task_queue: str, entity: str | None = None,
                        record_id: int | None = None, record: dict | None = None, inputs: dict | None = None,
                        started_by: int | None = None, search_attributes: bool = True, announce: bool = False) -> WorkflowHandle:
    """Start (or find, if `key` already started it) the process instance for `key`."""
    wid = workflow_id(spec["name"], key)
    attrs = None
    if search_attributes:
        pairs = [SearchAttributePair(PROCESS_KEY, spec["name"]), SearchAttributePair(VERSION_KEY, spec["version"])]
        if entity and record_id:
            pairs.append(SearchAttributePair(CUSTOMER_KEY, f"{entity}:{record_id}"))
        attrs = TypedSearchAttributes(pairs)
    arg = ProcessInput(spec=spec, entity=entity, record_id=record_id, record=record or {}, inputs=inputs or {}, started_by=started_by,
                       started_at=dt.datetime.now(dt.timezone.utc).isoformat(), announce=announce)
    try:
        return await client.start_workflow(ProcessWorkflow.run, arg, id=wid, task_queue=task_queue,
                                           id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                                           id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                                           search_attributes=attrs or TypedSearchAttributes.empty)
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle(wid)  # it ran already for this key: never a second one
