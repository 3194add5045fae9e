"""Moving running process instances to a new version of their process (a pack's `migrate:`, engine/instancemigration.py).

Three parts, one per place they run:
- pure (the workflow imports it through the sandbox's passthrough): `refusal` says why an instance cannot move (in
  words), `carry` maps its step states onto the new spec (done steps stay done, the open task keeps its row, assignee
  and due; new steps before where the instance stands are skipped, as they are behind it);
- the database: `move_rows`, the `tailor.move_instance` write: the instance's version and its task rows' step ids;
- the shell: `move_running` sends the `migrate` update to each running instance of a version, after the release switch
  (`tailor pack upgrade --apply`, or activating the console's draft), and counts who moved and who was refused, and why.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.compiler import canonical_json

from .schema import OPEN_STATUSES

OPEN = OPEN_STATUSES  # tasks someone still has to act on
MOVED = "AlreadyMoved"  # the refusal of an instance already on the new version: a retry, not a failure
VERSION = "VersionMismatch"
BUSY = "Conflict"


@dataclass
class Move:
    """The `migrate` update's argument: move an instance running `from_version` to `spec` (with its hash), steps mapped."""

    from_version: str
    spec: dict
    steps: dict[str, str] = field(default_factory=dict)  # old step id -> new step id, as the pack writes it
    label: str = ""  # the new version as people know it: 'crm 1.1.0'


def _walk(steps: list[dict]) -> Iterator[dict]:
    for s in steps:
        yield s
        for branch in s.get("branches", ()):
            yield from _walk(branch["steps"])


def full_map(old: dict, new: dict, steps: Mapping[str, str]) -> dict[str, str]:
    """{old step id: new step id}: what the migration writes, and every step both versions have that it does not remap."""
    new_ids = {s["id"] for s in _walk(new["steps"])}
    mapping = {o: n for o, n in steps.items() if n in new_ids}
    taken = set(mapping.values())
    for s in _walk(old["steps"]):
        if s["id"] not in mapping and s["id"] in new_ids and s["id"] not in taken:
            mapping[s["id"]] = s["id"]
            taken.add(s["id"])
    return mapping


def spec_intact(spec: dict) -> bool:
    """Whether a spec's hash is the hash of its content (as engine.compiler.process_spec made it)."""
    body = {k: v for k, v in spec.items() if k not in ("hash", "version")}
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    return spec.get("hash") == digest and spec.get("version") == digest[:12]


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def refusal(old: dict, states: Mapping[str, Any], move: Move) -> tuple[str, str] | None:
    """(kind, why in words) an instance running `old` with these step states cannot move as `move` says; None if it can."""
    if old["version"] == move.spec.get("version"):
        return MOVED, f"it runs {move.label or 'the new version'} already"
    if old["version"] != move.from_version:
        return VERSION, f"it runs version {old['version']}, not {move.from_version} that this migration moves"
    if not spec_intact(move.spec):
        return "Invalid", "the new version's content does not match its hash"
    if move.spec["name"] != old["name"]:
        return "Invalid", f"the new version is of process '{move.spec['name']}', not '{old['name']}'"
    mapping = full_map(old, move.spec, move.steps)
    olds = {s["id"]: s for s in _walk(old["steps"])}
    news = {s["id"]: s for s in _walk(move.spec["steps"])}
    for sid, st in states.items():
        if sid in olds and olds[sid].get("kind") == "approval" and st.status == "rejected":
            return BUSY, (f"'{olds[sid]['approve']}' was sent back for revision: it can move once it is resubmitted and "
                          f"'{sid}' decided")
    for sid, st in states.items():
        if st.status not in OPEN or sid not in olds:
            continue
        kind = olds[sid].get("kind", "task")
        if sid not in mapping:
            return "Unmapped", f"step '{sid}' is open and the new version has no step '{sid}': the migration does not map it"
        target = news[mapping[sid]]
        if target.get("kind", "task") != kind:
            return "Unmapped", f"open step '{sid}' is {_a(kind)} step, but '{target['id']}' it maps to is {_a(target.get('kind', 'task'))} step"
        if st.task_id is None:
            return BUSY, f"the task of step '{sid}' is being created: try again in a moment"
        if kind == "approval" and mapping.get(olds[sid]["approve"]) != target["approve"]:
            return "Unmapped", f"open approval '{sid}' approves '{olds[sid]['approve']}', which does not map to '{target['approve']}'"
    return None


def _carried(steps: list[dict], states: Mapping[str, Any]) -> bool:
    return any(states[s["id"]].status != "pending" or _carried([x for b in s.get("branches", ()) for x in b["steps"]], states)
               for s in steps)


def _skip_behind(steps: list[dict], states: dict[str, Any], make) -> None:
    """Steps of the new version before the last step an instance has reached (in each sequence) are behind it: skipped."""
    reached = [i for i, s in enumerate(steps) if _carried([s], states)]
    for i, s in enumerate(steps):
        if reached and i < reached[-1] and not _carried([s], states):
            for x in _walk([s]):
                states[x["id"]] = make(status="skipped", outcome="skipped")
        for branch in s.get("branches", ()):
            _skip_behind(branch["steps"], states, make)


def carry(old: dict, new: dict, steps: Mapping[str, str], states: Mapping[str, Any], ctx_steps: Mapping[str, dict],
          make) -> tuple[dict[str, Any], dict[str, dict]]:
    """The new spec's step states (made with `make(**fields)`) and published step results, carried over by the map."""
    mapping = full_map(old, new, steps)
    out = {s["id"]: make() for s in _walk(new["steps"])}
    published: dict[str, dict] = {}
    for sid, st in states.items():
        if sid in mapping and st.status != "pending":
            out[mapping[sid]] = make(**{**vars(st), "approvals": [dict(e) for e in st.approvals],
                                        "alerts_raised": list(st.alerts_raised), "data": dict(st.data)})
            if sid in ctx_steps:
                published[mapping[sid]] = ctx_steps[sid]
    _skip_behind(new["steps"], out, make)
    return out, published


# -- the database ---------------------------------------------------------------------------------------
def renames(old: dict, new: dict, steps: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """({old step id: new id} of steps whose id changes, [old step ids the new version drops])."""
    mapping = full_map(old, new, steps)
    return ({o: n for o, n in mapping.items() if o != n},
            [s["id"] for s in _walk(old["steps"]) if s["id"] not in mapping])


def move_rows(conn: sa.Connection, req: dict) -> bool:
    """The instance's row on its new version, its tasks' rows under their new step ids; once (False when done before).

    A task's key (workflow id + step) is how a write finds its row: rows of renamed steps take their new step's key, rows
    of dropped steps step aside (so a new step of the same name gets a row of its own)."""
    from .schema import process_instances, tasks

    wid = req["workflow_id"]
    row = conn.execute(sa.select(process_instances.c.version).where(process_instances.c.workflow_id == wid)).first()
    if row is None or row.version == req["version"]:
        return False
    moving = {**req["renames"], **{d: None for d in req["dropped"]}}
    found = conn.execute(sa.select(tasks.c.id, tasks.c.key, tasks.c.step_id)
                         .where(tasks.c.workflow_id == wid, tasks.c.step_id.in_(list(moving)))).all() if moving else []
    aside = f"@{req['from_version']}"
    for t in found:  # first every moving row aside, so a swap of two steps' names meets no key still taken
        conn.execute(tasks.update().where(tasks.c.id == t.id).values(key=t.key + aside))
    for t in found:
        new = moving[t.step_id]
        if new is None:
            continue
        prefix = f"{wid}:{t.step_id}"
        key = f"{wid}:{new}{t.key[len(prefix):]}" if t.key.startswith(prefix) else t.key + aside
        conn.execute(tasks.update().where(tasks.c.id == t.id).values(key=key, step_id=new))
    conn.execute(process_instances.update().where(process_instances.c.workflow_id == wid).values(version=req["version"]))
    return True


# -- sending the moves ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What sending one version's moves did: how many moved (now or by an earlier try) and who was refused, and why."""

    moved: int = 0
    already: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (workflow id, why)


def running_on(conn: sa.Connection, process: str, version: str) -> list[str]:
    """The workflow ids of the running instances of one version of a process."""
    from .schema import process_instances

    q = sa.select(process_instances.c.workflow_id).where(process_instances.c.process == process, process_instances.c.version == version,
                                                          process_instances.c.status == "running")
    return list(conn.execute(q.order_by(process_instances.c.workflow_id)).scalars())


UPDATE = "migrate"  # the interpreter's update that moves an instance (runtime.workflows.ProcessWorkflow.migrate)


async def move_running(client, workflow_ids: Iterable[str], move: Move, *, concurrency: int = 8) -> Outcome:
    """Send `move` to each instance (its update id is made of the versions: a retry is the same request)."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError

    out = Outcome()
    turn = asyncio.Semaphore(concurrency)

    async def one(wid: str) -> None:
        async with turn:
            try:
                await client.get_workflow_handle(wid).execute_update(
                    UPDATE, move, id=f"migrate:{move.from_version}:{move.spec['version']}")
                out.moved += 1
            except WorkflowUpdateFailedError as exc:
                cause = exc.cause
                if isinstance(cause, ApplicationError) and cause.type == MOVED:
                    out.already += 1
                else:
                    out.refused.append((wid, getattr(cause, "message", None) or str(cause)))
            except RPCError as exc:  # finished meanwhile, or the server away
                out.refused.append((wid, str(exc)))

    await asyncio.gather(*(one(w) for w in workflow_ids))
    out.refused.sort()
    return out


# -- the plan of a release switch ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    """The running instances of one version of a process, and what a release switch does with them."""

    process: str
    label: str
    version: str  # the version they run
    count: int
    on: str  # that version as people know it: 'crm 1.0.0', 'an earlier version (3f2a…)'
    to: str  # what new starts run: 'crm 1.1.0'
    same: bool  # the new release runs this very version
    move: Move | None = None  # they move (None: they stay)
    refused: tuple[tuple[str, int], ...] = ()  # (why, how many) of them will not move, as their open steps stand now

    def line(self) -> str:
        """'callback (Call-back request): 3 running on crm 1.0.0 will move to crm 1.1.0 (steps: call → call_customer)'."""
        head = f"{self.process} ({self.label}): {self.count} running on {self.on}"
        if self.same:
            return f"{head}, which the new release runs too"
        if self.move is None:
            return f"{head} stay on it; new ones start on {self.to}"
        steps = ", ".join(f"{o} → {n}" for o, n in self.move.steps.items()) or "each keeps its id"
        text = f"{head} will move to {self.to} (steps: {steps})"
        for why, n in self.refused:
            text += f"; {n} of them will not: {why}"
        return text


def _pack_label(compiled, process: str) -> str:
    p = compiled.model.processes.get(process)
    pack = next((k for k in compiled.model.packs if p is not None and k.name == p.pack), None)
    return f"{pack.name} {pack.version}" if pack else process


def plan_moves(conn: sa.Connection, old, new) -> list[Planned]:
    """What switching from the compiled release `old` to `new` does with every running process instance (a read)."""
    from engine.instancemigration import ANY, applies, step_map

    from .schema import process_instances, tasks

    q = (sa.select(process_instances.c.process, process_instances.c.version, sa.func.count()).where(process_instances.c.status == "running")
         .group_by(process_instances.c.process, process_instances.c.version).order_by(process_instances.c.process, process_instances.c.version))
    out: list[Planned] = []
    for process, version, count in conn.execute(q).all():
        old_spec, new_spec = old.process_specs.get(process), new.process_specs.get(process)
        definition = new.model.processes.get(process)
        label = definition.label if definition else (old.model.processes[process].label if process in old.model.processes else process)
        current = old_spec is not None and old_spec["version"] == version
        on = _pack_label(old, process) if current else f"an earlier version ({version})"
        to = _pack_label(new, process) if new_spec else "nothing (the new release has no such process)"
        if new_spec is not None and new_spec["version"] == version:
            out.append(Planned(process, label, version, count, on, to, True))
            continue
        m = definition.migrate if definition else None
        old_pack = _pack_label(old, process).rpartition(" ")[2]
        if m is None or new_spec is None or not (m.from_ == ANY if not current else applies(m, old_pack)):
            out.append(Planned(process, label, version, count, on, to, False))
            continue
        move = Move(version, new_spec, step_map(m), to)
        refused: dict[str, int] = {}
        if current:  # as their open steps stand now (the workflow checks again when it is asked)
            wids = sa.select(process_instances.c.workflow_id).where(process_instances.c.process == process,
                                                                   process_instances.c.version == version,
                                                                   process_instances.c.status == "running")
            open_steps: dict[str, dict] = {}
            for wid, step_id, task_id in conn.execute(sa.select(tasks.c.workflow_id, tasks.c.step_id, tasks.c.id)
                                                      .where(tasks.c.workflow_id.in_(wids), tasks.c.status.in_(OPEN))):
                open_steps.setdefault(wid, {})[step_id] = _Open(task_id)
            for states in open_steps.values():
                why = refusal(old_spec, states, move)
                if why:
                    refused[why[1]] = refused.get(why[1], 0) + 1
        out.append(Planned(process, label, version, count, on, to, False, move, tuple(sorted(refused.items()))))
    return out


@dataclass
class _Open:
    """An open step as the task rows show it (what `refusal` reads of a step's state)."""

    task_id: int
    status: str = "open"
    approvals: list = field(default_factory=list)


async def send(client, engine: sa.Engine, planned: list[Planned]) -> list[tuple[Planned, Outcome]]:
    """Move the running instances the plan moves (those still on their version: a retry finds the moved ones moved)."""
    done = []
    for p in planned:
        if p.move is None:
            continue
        with engine.connect() as conn:
            wids = running_on(conn, p.process, p.version)
        done.append((p, await move_running(client, wids, p.move)))
    return done


def report(p: Planned, o: Outcome) -> list[str]:
    """What sending the moves of `p` did, in words."""
    lines = [f"{p.process} ({p.label}): {o.moved} moved to {p.to}" + (f", {o.already} had moved already" if o.already else "")
             + (f", {len(o.refused)} stay on {p.on}" if o.refused else "")]
    lines += [f"  {wid} stays: {why}" for wid, why in o.refused]
    return lines
