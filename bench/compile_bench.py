"""Compile benchmark: how long `load` and `compile_model` take on large packs.

Generates two packs in a temporary folder (1,000 mixed definitions; one entity
of 500 fields), checks they load, then times `engine.loader.load` and
`engine.compiler.compile_model` over several repetitions, next to a bare
baseline on the same files (PyYAML `safe_load_all` plus jsonschema validation of
each document against its kind's schema). Prints a table and rewrites this
benchmark's section of docs/benchmarks.md.

    .venv/bin/python bench/compile_bench.py [--repeat 5] [--budget 45] [--no-write] [--keep DIR] [--profile 25]
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import gc
import io
import json
import os
import pstats
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without `pip install -e .`

import jsonschema  # noqa: E402
import yaml  # noqa: E402
from referencing import Registry, Resource  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # a fair baseline parses as fast as the engine can

from engine.compiler import compile_model  # noqa: E402
from engine.loader import load, load_model  # noqa: E402

GOAL_SECONDS = 1.0
MIN_REPEAT = 3
DOCS = ROOT / "docs" / "benchmarks.md"
from report import code_state, load_average, machine_basics, write_section  # noqa: E402

START, END = "<!-- compile-bench:start -->", "<!-- compile-bench:end -->"
SEED = 20260101  # fixed: every run generates byte-identical packs

# -- generating packs ------------------------------------------------------------

NOUNS = ["account", "site", "asset", "licence", "invoice", "visit", "campaign", "partner", "supplier", "engagement",
         "ticket", "quote", "order", "renewal", "warranty", "inspection", "claim", "lead", "deal", "subscription"]
AREAS = ["sales", "support", "finance", "legal", "operations", "marketing", "delivery", "training", "field_service",
         "procurement", "logistics", "quality", "compliance", "research", "people", "it", "facilities", "partnerships",
         "renewals", "billing", "onboarding", "accounts", "projects", "retention", "security"]
STEP_IDS = ["qualify", "review", "prepare", "approve", "deliver", "install", "train", "check", "sign_off", "close",
            "chase", "invoice", "visit", "call_back", "confirm", "document", "hand_over", "survey", "quote", "follow_up"]
VERBS = ["Qualify", "Review", "Prepare", "Approve", "Deliver", "Check", "Chase", "Confirm", "Document", "Call"]
PERMISSIONS = ["access", "generate_tasks", "approve_tasks", "set_alerts", "manage_own_tasks", "monitor_tasks",
               "project_access", "edit_records", "add_record_fields", "export"]
STATUSES = [
    ["new", "active", "closed"],
    ["prospect", "customer", {"value": "former", "label": "Former customer"}],
    ["draft", "open", "on_hold", "done"],
    ["requested", "approved", "rejected", "cancelled"],
]
# Optional entity fields, by name; forms copy some of them, so their names are the same everywhere.
CATALOGUE: dict[str, Any] = {
    "phone": "phone",
    "email": "email",
    "website": "url",
    "notes": {"type": "text", "help": "Anything the team should know."},
    "headcount": {"type": "integer", "label": "Number of staff", "min": 0, "max": 100000},
    "budget": {"type": "money", "currency": "GBP", "min": 0},
    "score": {"type": "decimal", "min": 0, "max": 10},
    "active": {"type": "boolean", "default": True},
    "start_date": "date",
    "last_contact": {"type": "datetime", "label": "Last contacted"},
    "region": {"type": "choice", "choices": ["north", "south", "east", "west", {"value": "ni", "label": "Northern Ireland"}]},
    "priority": {"type": "choice", "default": "normal", "choices": ["low", "normal", "high", "urgent"]},
    "tags": {"type": "multichoice", "choices": ["vip", "partner", "reseller", "public_sector", "charity"]},
    "reference_code": {"type": "string", "unique": True, "pattern": "^[A-Z]{3}[0-9]{4}$", "placeholder": "ABC1234"},
    "team": "group",
    "postcode": {"type": "string", "max_length": 8},
    "town": "string",
    "country": {"type": "string", "default": "United Kingdom"},
    "renewal_date": {"type": "date", "label": "Renewal due"},
    "account_number": {"type": "string", "column": True, "indexed": True, "max_length": 20},
}
COPYABLE = [n for n in CATALOGUE if n not in ("team",)]


def _value(choice: Any) -> Any:
    return choice["value"] if isinstance(choice, dict) else choice


def _dump(data: Any, schema: str) -> str:
    header = f"# yaml-language-server: $schema={schema}\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


@dataclass
class GeneratedPack:
    """A generated pack: its files (relative path -> YAML text) and how many definitions of each kind."""

    name: str
    files: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def write(self, folder: Path) -> Path:
        root = folder / self.name
        if root.exists():  # only ever replace a pack this script generated (--keep reuses a folder)
            manifest = root / "pack.yaml"
            if not manifest.exists() or "name: bench_" not in manifest.read_text(encoding="utf-8"):
                raise SystemExit(f"{root} exists and is not a generated benchmark pack; choose another --keep folder")
            shutil.rmtree(root)
        for rel, text in self.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return root


def _entity(i: int, names: list[str], r: random.Random) -> dict:
    statuses = STATUSES[i % len(STATUSES)]
    fields: dict[str, Any] = {
        "name": {"type": "string", "required": True, "indexed": True, "max_length": 200},
        "status": {"type": "choice", "required": True, "indexed": True, "default": _value(statuses[0]), "choices": statuses},
        "owner": {"type": "user", "label": "Account manager", "indexed": True},
    }
    if i > 0:  # references point backwards, so every entity can be created from a form on its parent
        fields["parent"] = {"type": "reference", "entity": names[r.randrange(i)], "indexed": True}
    if i > 1 and r.random() < 0.4:
        fields["related_to"] = {"type": "reference", "entity": names[r.randrange(i)]}
    total = r.randint(10, 20)
    for name in r.sample(list(CATALOGUE), max(0, total - len(fields) - 3)):
        fields[name] = CATALOGUE[name]
    second = _value(statuses[1])
    doc: dict[str, Any] = {
        "kind": "entity", "name": names[i],
        "description": "Generated for the compile benchmark.",
        "title": "{{ record.name }}",
        "fields": fields,
        "groups": {
            "details": {
                "label": "Further details",
                "when": f"record.status == '{second}'",
                "fields": {
                    "details_reason": {"type": "text", "label": "Why"},
                    "details_since": "date",
                    "details_level": {"type": "choice", "choices": ["bronze", "silver", "gold"]},
                    "details_checked": {"type": "boolean", "default": False},
                },
            }
        },
    }
    if i % 3 == 0:
        doc["customer"] = True
        doc["record_fields"] = {"allowed": True, "types": ["string", "text", "integer", "date"], "max": 10}
    if "reference_code" in fields:
        doc["links"] = {"erp": {"label": "ERP", "url": "https://erp.example.com/records/{{ record.reference_code }}"}}
    return doc


def _task(r: random.Random, sid: str, prev: str | None, *, project: bool, groups: list[str], roles: list[str],
          task_forms: list[str]) -> dict:
    verb = r.choice(VERBS)
    t: dict[str, Any] = {"id": sid, "title": f"{verb} {{{{ record.name }}}}: {{{{ inputs.summary }}}}"}
    if r.random() < 0.4:
        t["description"] = "Status is {{ record.status }}. Record what was agreed, then complete the task."
    if prev and r.random() < 0.3:
        t["when"] = f"steps.{prev}.outcome == 'done'"
    pick = r.random()
    if pick < 0.45:
        t["assign"] = f"group:{r.choice(groups)}"
        t["strategy"] = r.choice(["round_robin", "least_busy"])
    elif pick < 0.65:
        t["assign"] = "owner"
    elif prev and pick < 0.85:
        t["assign"] = f"completer:{prev}"
    elif project:
        t["assign"] = "project_manager"
    else:
        t["assign"] = f"role:{r.choice(roles)}"
    days = r.randint(1, 10)
    t["due"] = {"in": f"{days} business days", "from": prev} if prev and r.random() < 0.6 else (
        f"{days} business days" if r.random() < 0.8 else "4 business hours")
    if r.random() < 0.6:
        t["form"] = r.choice(task_forms)
    if r.random() < 0.2:
        t["approval"] = {"by": f"role:{r.choice(roles)}"}
    if r.random() < 0.5:
        t["reminders"] = ["4 business hours"]
    if r.random() < 0.3:
        return t
    ladder: list[dict] = [{"at": "due", "alert": ["assignee", "manager"], "message": "{{ task.title }} was due {{ task.due }}."}]
    if r.random() < 0.6:
        ladder.append({"at": "due + 1 business day", "alert": f"role:{r.choice(roles)}", "reassign": "manager",
                       "message": "{{ record.name }}: {{ task.title }} is a business day late and is with {{ task.assignee }}."})
    if r.random() < 0.3:
        ladder.append({"at": "due + 3 business days", "alert": "role:director"})
    t["escalate"] = ladder
    return t


def _process(k: int, name: str, entity: str, target: str, statuses: list, r: random.Random, *, groups: list[str],
             roles: list[str], task_forms: list[str]) -> dict:
    project = r.random() < 0.3
    triggers: list[dict] = [{"manual": True}]
    if r.random() < 0.3:
        v = _value(statuses[-1])
        triggers.append({"record": entity, "on": ["changed"], "when": f"record.status == '{v}' and before.status != '{v}'"})
    if r.random() < 0.15:
        triggers.append({"schedule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9", "for_each": entity})
    ids = r.sample(STEP_IDS, 12)
    kw = dict(project=project, groups=groups, roles=roles, task_forms=task_forms)
    steps: list[dict] = []
    prev = None
    for _ in range(r.randint(1, 2)):
        sid = ids.pop()
        steps.append(_task(r, sid, prev, **kw))
        prev = sid
    branches: dict[str, list] = {}
    last_in_branch = []
    for b in range(2):
        branch, bprev = [], prev
        for _ in range(r.randint(1, 2)):
            sid = ids.pop()
            branch.append(_task(r, sid, bprev, **kw))
            bprev = sid
        branches[f"branch_{b + 1}"] = branch
        last_in_branch.append(bprev)
    steps.append({"id": "side_by_side", "parallel": branches})
    prev = "side_by_side"
    for _ in range(r.randint(1, 2)):
        sid = ids.pop()
        steps.append(_task(r, sid, prev, **kw))
        prev = sid
    doc: dict[str, Any] = {
        "kind": "process", "name": name, "label": f"Generated process {k + 1}",
        "description": "Generated for the compile benchmark: a few tasks, a parallel block and escalation ladders.",
        "entity": entity, "calendar": "office",
        "inputs": {"summary": {"type": "string", "required": len(triggers) == 1},
                   "related": {"type": "reference", "entity": target}},
        "triggers": triggers,
    }
    if project:
        doc["project"] = {"title": "{{ record.name }}: {{ inputs.summary }}", "manager": f"group:{r.choice(groups)}"}
    doc["steps"] = steps
    return doc


def _layout(r: random.Random, names: list[str]) -> list[dict]:
    """Two or three sections that between them place every field once."""
    n = min(len(names), r.randint(2, 3))
    cuts = sorted(r.sample(range(1, len(names)), n - 1))
    parts = [names[a:b] for a, b in zip([0, *cuts], [*cuts, len(names)])]
    return [{"section": f"Part {i + 1}", "columns": r.randint(1, 3), "fields": p} for i, p in enumerate(parts)]


def _contact_form(j: int, name: str, proc: dict, entities: dict[str, dict], r: random.Random) -> dict:
    entity, target = proc["entity"], proc["inputs"]["related"]["entity"]
    tfields = entities[target]["fields"]
    fields: dict[str, Any] = {
        "summary": {"type": "string", "label": "What is it about?", "required": True, "max_length": 150},
        "channel": {"type": "choice", "required": True, "choices": ["phone", "email", "visit", "web", "event"]},
        "details": {"type": "text", "help": "What was said, and what we promised."},
        "person": {"type": "reference", "entity": r.choice(list(entities))},
        "follow_up_on": {"type": "date", "label": "Follow up on"},
    }
    copied = [n for n in COPYABLE if n in tfields][: r.randint(2, 6)]
    for n in copied:
        fields[n] = tfields[n]
    alias = "item"
    set_: dict[str, Any] = {"name": "{{ record.name }}: {{ form.summary }}", "parent": "record"}
    set_.update({n: n for n in copied})
    actions: list[dict] = [{"create": target, "as": alias, "set": set_},
                           {"start": proc["name"], "with": {"summary": "summary", "related": f"created.{alias}"}}]
    if r.random() < 0.3:  # a mapping's text names a form field, so a new status comes from one
        fields["new_status"] = {"type": "choice", "label": "Move the record to", "choices": entities[entity]["fields"]["status"]["choices"]}
        actions.append({"update": "record", "set": {"status": "new_status"}})
    return {"kind": "form", "name": name, "label": f"Contact form {j + 1}",
            "description": "Generated contact form: records the contact, creates a record and starts a process.",
            "entity": entity, "contact": True, "fields": fields, "layout": _layout(r, list(fields)), "on_submit": actions}


def _task_form(name: str, entity: dict, r: random.Random) -> dict:
    fields: dict[str, Any] = {
        "outcome": {"type": "choice", "required": True, "choices": ["done", "not_needed", {"value": "later", "label": "Do it later"}]},
        "completed_on": {"type": "date", "required": True},
        "notes": "text",
        "amount": {"type": "money", "currency": "GBP", "min": 0},
        "approved": {"type": "boolean", "default": False},
    }
    updates = {n: n for n in ("notes",) if n in entity["fields"]}
    if "budget" in entity["fields"]:
        updates["budget"] = "amount"
    if not updates:
        fields["new_status"] = {"type": "choice", "label": "Move the record to", "choices": entity["fields"]["status"]["choices"]}
        updates["status"] = "new_status"
    return {"kind": "form", "name": name, "description": "Generated task form.", "entity": entity["name"], "fields": fields,
            "layout": _layout(r, list(fields)), "on_submit": [{"update": "record", "set": updates}]}


CALENDAR = {
    "kind": "calendar", "name": "office", "label": "Office hours (London)", "timezone": "Europe/London",
    "working_hours": {"mon-thu": "09:00-17:30", "fri": ["09:00-12:30", "13:30-16:00"]},
    "holidays": {"country": "GB", "subdivision": "ENG", "dates": ["2026-12-24", "2026-12-29", "2026-12-30", "2026-12-31"]},
}


def large_pack() -> GeneratedPack:
    """1,000 definitions: 300 entities, 400 forms, 250 processes, 25 roles, 25 groups, plus pack.yaml and a calendar."""
    r = random.Random(SEED)
    pack = GeneratedPack("large")
    pack.files["pack.yaml"] = _dump({"kind": "pack", "name": "bench_large", "version": "1.0.0",
                                     "description": "Generated by bench/compile_bench.py."}, "../engine/schemas/pack.schema.json")
    pack.files["calendars.yaml"] = _dump(CALENDAR, "../engine/schemas/calendar.schema.json")
    roles = ["staff", "director", "admin"] + [f"{a}_manager" for a in AREAS[:22]]
    role_docs = [{"kind": "role", "name": n, "description": f"Generated role {n}.",
                  "permissions": r.sample(PERMISSIONS, r.randint(3, len(PERMISSIONS)))} for n in roles]
    pack.files["roles.yaml"] = "".join(["# Generated roles\n", yaml.safe_dump_all(role_docs, sort_keys=False)])
    groups = [f"{a}_team" for a in AREAS]
    group_docs = []
    for a, g in zip(AREAS, groups):
        d: dict[str, Any] = {"kind": "group", "name": g, "description": f"The {a.replace('_', ' ')} team.",
                             "roles": ["staff"] + ([f"{a}_manager"] if f"{a}_manager" in roles else [])}
        if r.random() < 0.3:
            d["calendar"] = "office"
        group_docs.append(d)
    pack.files["groups.yaml"] = "".join(["# Generated groups\n", yaml.safe_dump_all(group_docs, sort_keys=False)])

    names = [f"{NOUNS[i % len(NOUNS)]}_{i // len(NOUNS) + 1}" for i in range(300)]
    entities = {n: _entity(i, names, r) for i, n in enumerate(names)}
    for n, doc in entities.items():
        pack.files[f"entities/{n}.yaml"] = _dump(doc, "../../engine/schemas/entity.schema.json")

    task_forms = [f"task_form_{j + 1}" for j in range(100)]
    procs = []
    for k in range(250):
        target = names[r.randrange(1, len(names))]
        entity = entities[target]["fields"]["parent"]["entity"]
        name = f"{STEP_IDS[k % len(STEP_IDS)]}_process_{k // len(STEP_IDS) + 1}"
        proc = _process(k, name, entity, target, entities[entity]["fields"]["status"]["choices"], r,
                        groups=groups, roles=roles, task_forms=task_forms)
        procs.append(proc)
        pack.files[f"processes/{name}.yaml"] = _dump(proc, "../../engine/schemas/process.schema.json")
    for j in range(300):
        name = f"contact_form_{j + 1}"
        pack.files[f"forms/contact/{name}.yaml"] = _dump(_contact_form(j, name, procs[j % len(procs)], entities, r),
                                                         "../../../engine/schemas/form.schema.json")
    for name in task_forms:
        pack.files[f"forms/tasks/{name}.yaml"] = _dump(_task_form(name, entities[r.choice(names)], r),
                                                       "../../../engine/schemas/form.schema.json")
    pack.counts = {"entity": 300, "form": 400, "process": 250, "role": len(roles), "group": len(groups), "calendar": 1}
    return pack


WIDE_TYPES: list[tuple[str, Callable[[int], Any]]] = [
    ("string", lambda n: {"type": "string", "max_length": 100 + n % 100}),
    ("text", lambda n: "text"),
    ("integer", lambda n: {"type": "integer", "min": 0, "max": 1000 * (n + 1)}),
    ("decimal", lambda n: {"type": "decimal", "min": 0}),
    ("money", lambda n: {"type": "money", "currency": "GBP", "min": 0}),
    ("boolean", lambda n: {"type": "boolean", "default": n % 2 == 0}),
    ("date", lambda n: "date"),
    ("datetime", lambda n: "datetime"),
    ("email", lambda n: "email"),
    ("phone", lambda n: "phone"),
    ("url", lambda n: "url"),
    ("choice", lambda n: {"type": "choice", "default": "a", "choices": ["a", "b", "c", {"value": "d", "label": "Option D"}]}),
    ("multichoice", lambda n: {"type": "multichoice", "choices": ["x", "y", "z"]}),
    ("indexed", lambda n: {"type": "string", "indexed": True, "max_length": 40}),
]


def wide_pack() -> GeneratedPack:
    """One entity of 500 fields and a form over 60 of them that updates the record."""
    pack = GeneratedPack("wide")
    pack.files["pack.yaml"] = _dump({"kind": "pack", "name": "bench_wide", "version": "1.0.0"}, "../engine/schemas/pack.schema.json")
    fields: dict[str, Any] = {"name": {"type": "string", "required": True, "indexed": True}, "owner": "user"}
    n = 0
    while len(fields) < 500:
        kind, make = WIDE_TYPES[n % len(WIDE_TYPES)]
        fields[f"{kind}_{n + 1:03d}"] = make(n)
        n += 1
    pack.files["entities/wide_record.yaml"] = _dump(
        {"kind": "entity", "name": "wide_record", "description": "One entity with 500 fields.", "title": "{{ record.name }}",
         "fields": fields}, "../../engine/schemas/entity.schema.json")
    chosen = list(fields)[2:62]
    form_fields = {k: fields[k] for k in chosen}
    layout = [{"section": f"Page {i // 10 + 1}", "columns": 2, "fields": chosen[i:i + 10]} for i in range(0, len(chosen), 10)]
    pack.files["forms/wide_intake.yaml"] = _dump(
        {"kind": "form", "name": "wide_intake", "entity": "wide_record", "fields": form_fields, "layout": layout,
         "on_submit": [{"update": "record", "set": {k: k for k in chosen}}]}, "../../engine/schemas/form.schema.json")
    pack.counts = {"entity": 1, "entity field": len(fields), "form": 1, "form field": len(chosen)}
    return pack


# -- the bare baseline -------------------------------------------------------------


def baseline_validators() -> dict[str, jsonschema.Draft202012Validator]:
    """A Draft 2020-12 validator per kind, with a referencing Registry of engine/schemas.

    Each schema is registered under its `$id`, or under its file name when it has none, which is
    where its relative `$ref`s ("common.schema.json#/$defs/...") then resolve.
    """
    files = sorted((ROOT / "engine" / "schemas").glob("*.schema.json"))
    schemas = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in files}
    registry = Registry().with_resources((s.get("$id", name), Resource.from_contents(s)) for name, s in schemas.items())
    return {name.removesuffix(".schema.json"): jsonschema.Draft202012Validator(s, registry=registry)
            for name, s in schemas.items() if name != "common.schema.json"}


def baseline(files: list[Path], validators: dict[str, jsonschema.Draft202012Validator]) -> int:
    """Parse every file with plain PyYAML (the same libyaml safe loader the engine uses) and validate each document."""
    count = 0
    for path in files:
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=BASE_LOADER):
            if doc is None:
                continue
            errors = list(validators[doc["kind"]].iter_errors(doc))
            assert not errors, f"{path}: {errors[0].message}"
            count += 1
    return count


# -- measuring --------------------------------------------------------------------


@dataclass
class Result:
    label: str
    files: int
    documents: int
    first: float = 0.0  # the first load + compile in the process: cold caches (schema validators, ...)
    load: list[float] = field(default_factory=list)
    compile: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    base: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.total) / statistics.median(self.base)

    @property
    def met(self) -> bool:
        return statistics.median(self.total) < GOAL_SECONDS


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()  # don't bill one repetition for the previous one's garbage
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def checked_load(folder: Path):
    """Load like `tailor check` does, refusing to time a pack it would reject."""
    model, problems = load_model([folder])
    if problems:
        shown = "\n".join(str(p) for p in problems[:20])
        raise SystemExit(f"generated pack {folder} does not load ({len(problems)} problems):\n{shown}")
    return model


def run(label: str, folder: Path, repeat: int, budget: float, validators, progress: Progress) -> Result:
    """Time one pack: a checked first run, then up to `repeat` repetitions (at least MIN_REPEAT) within `budget` seconds."""
    files = sorted(p for p in folder.rglob("*.yaml"))
    task = progress.add_task(label, total=1 + repeat)
    t_load, model = _timed(lambda: checked_load(folder))  # the check doubles as the warm-up
    t_comp, _ = _timed(lambda: compile_model(model))
    baseline(files[:20], validators)  # warms the baseline validators' $ref lookups
    res = Result(label, len(files), 0, first=t_load + t_comp)
    progress.advance(task)
    spent = 0.0
    for i in range(repeat):
        per_rep = spent / i if i else 0.0
        if i >= MIN_REPEAT and spent + per_rep > budget:  # bounded: a slow engine gets fewer runs, not a longer wait
            break
        t_load, model = _timed(lambda: load([folder]))
        t_comp, _ = _timed(lambda: compile_model(model))
        t_base, docs = _timed(lambda: baseline(files, validators))
        assert docs == (res.documents or docs)
        res.documents = docs
        res.load.append(t_load)
        res.compile.append(t_comp)
        res.total.append(t_load + t_comp)
        res.base.append(t_base)
        spent += t_load + t_comp + t_base
        progress.advance(task)
    progress.update(task, total=progress.tasks[task].completed)
    return res


def profile(folder: Path, top: int) -> str:
    """The `top` functions by cumulative time for one load + compile of `folder`."""
    prof = cProfile.Profile()
    prof.enable()
    compile_model(load([folder]))
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).sort_stats("cumulative")
    out.write(f"-- top {top} by cumulative time --\n")
    stats.print_stats(top)
    # The overall list is mostly one call chain (load -> read_file -> PyYAML); the engine's own functions say where to look.
    out.write(f"-- top {top} engine functions by cumulative time --\n")
    stats.print_stats(re.escape(f"{os.sep}engine{os.sep}"), top)
    return out.getvalue().replace(str(ROOT) + os.sep, "").replace(sys.prefix + os.sep, "")


# -- reporting --------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    libyaml = "libyaml (CSafeLoader) for the engine and the baseline" if yaml.__with_libyaml__ else "pure Python"
    return {
        **machine_basics(),
        "libraries": ", ".join(f"{d} {metadata.version(d)}" for d in ("PyYAML", "jsonschema", "Jinja2", "SQLAlchemy"))
                     + f" (PyYAML {libyaml})",
        "engine": code_state(('engine',)),
        "load average": load_average(': other work on the machine slows every figure, the ratio least'),
    }


def _s(values: list[float] | float) -> str:
    if isinstance(values, float):
        return f"{values:.3f}"
    return f"{statistics.median(values):.3f} ({min(values):.3f})"


COLUMNS = ["pack", "files / documents", "runs", "load", "compile", "load + compile", "first run", "baseline", "ratio", "goal < 1 s"]


def rows(results: list[Result]) -> list[list[str]]:
    return [[r.label, f"{r.files} / {r.documents}", str(len(r.total)), _s(r.load), _s(r.compile), _s(r.total), _s(r.first), _s(r.base),
             f"{r.ratio:.2f}x", "met" if r.met else "NOT met"] for r in results]


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + ("es" if noun.endswith("s") else "s")
    return f"{n:,} {noun if n == 1 else plural}"


def markdown(results: list[Result], packs: list[GeneratedPack], info: dict[str, str], repeat: int, when: str) -> str:
    lines = [
        START,
        "## Compile benchmark",
        "",
        "How long the definition engine takes to load (read, parse, validate against the JSON Schemas, build, apply "
        "overlays, run the semantic checks: `engine.loader.load`) and compile (`engine.compiler.compile_model`) large "
        "generated packs, next to a bare baseline run in the same process on the same files: PyYAML `safe_load_all` of "
        "every file plus jsonschema Draft 2020-12 validation of each document against its kind's schema.",
        "",
        f"**Goal** (from the issue): load + compile under {GOAL_SECONDS:g} s for each pack. "
        + ("**Met** for every pack." if all(r.met for r in results) else
           "**Not met** for: " + ", ".join(r.label for r in results if not r.met) + "."),
        "",
        "Packs (generated with a fixed seed, so every run times the same files):",
        "",
    ]
    for p in packs:
        lines.append(f"- `{p.name}`: " + ", ".join(_count(v, k) for k, v in p.counts.items()))
    lines += [
        "",
        f"Seconds, median (min) of *runs* repetitions (up to {repeat}, fewer once a pack's runs pass a time budget, "
        f"never fewer than {min(MIN_REPEAT, repeat)}) after one warm-up; *first run* is the warm-up's load + compile, which also "
        "checks the pack loads without problems (the first pack's first run pays for cold caches); "
        "*ratio* is the median load + compile over the median baseline.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    lines += ["", f"Measured {when} on:", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "Run it again with `.venv/bin/python bench/compile_bench.py` (rewrites this section); "
                  "`--profile 25` also prints where the time goes.", END]
    return "\n".join(lines) + "\n"


def write_docs(path: Path, section: str) -> None:
    write_section(path, START, END, section)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed repetitions per pack (default 5)")
    ap.add_argument("--budget", type=float, default=45.0, help="stop repeating a pack once its timed runs took this many "
                                                                 f"seconds, after at least {MIN_REPEAT} (default 45)")
    ap.add_argument("--no-write", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument("--keep", type=Path, help="generate the packs in this folder and keep them (e.g. to run `tailor check`)")
    ap.add_argument("--profile", type=int, metavar="N", default=0, help="also print the top N functions by cumulative time "
                                                                       "for one load + compile of the 1,000-definition pack")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    out = Console()
    if not out.is_terminal:
        out = Console(width=160)  # a piped table keeps its columns whole
    err = Console(stderr=True)
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    started = time.perf_counter()
    packs = [large_pack(), wide_pack()]
    labels = {"large": "1,000 definitions", "wide": "1 entity, 500 fields"}
    validators = baseline_validators()
    with tempfile.TemporaryDirectory(prefix="tailor-bench-") as tmp:
        base = args.keep or Path(tmp)
        folders = [p.write(base) for p in packs]
        results = []
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            for p, folder in zip(packs, folders):
                results.append(run(labels[p.name], folder, args.repeat, args.budget, validators, progress))
        report = profile(folders[0], args.profile) if args.profile else ""

    table = Table(title="Compile benchmark: seconds, median (min) of the timed runs")
    for i, c in enumerate(COLUMNS):
        table.add_column(c, justify="left" if i == 0 else "right")
    for row in rows(results):
        table.add_row(*row)
    out.print(table)
    for r in results:
        out.print(f"goal < {GOAL_SECONDS:g} s for {r.label}: {'met' if r.met else 'NOT met'}")
    if report:
        out.print(report, markup=False, highlight=False)
    out.print(f"benchmark took {time.perf_counter() - started:.0f} s")
    if not args.no_write:
        info = machine()
        write_docs(DOCS, markdown(results, packs, info, args.repeat, when))
        out.print(f"wrote {DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
