"""`tailor pack new`: a client pack to start from, which `tailor check` and `tailor pack test` accept as generated.

The pack extends a base with a version range that accepts the base's later minor versions, has a folder for each
kind of file, a sample overlay (a field added to one of the base's contact forms) and a sample scenario that fills
in that form and expects the first task of the process it starts — assigned as the base assigns it, due when the
engine says it is due (computed here by the interpreter's own calendar, not written by hand).
"""
from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from engine.compiler import CompiledModel
from engine.model import CreateAction, Field, Form, Process, StartAction, TaskStep
from engine.scenarios import written

from . import PackError

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
FOLDERS = ("entities", "forms", "processes", "overlays", "tests", "demo")


def version_range(version: str) -> str:
    """The range a client pack accepts of a base at `version`: its minor and patch releases ('1.2.0' -> '>=1.2,<2')."""
    parts = (version.split("-")[0].split(".") + ["0", "0"])[:3]
    major, minor = int(parts[0]), int(parts[1])
    return f">={major}.{minor},<{major + 1}" if major else f">=0.{minor},<0.{minor + 1}"


def dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


@dataclass(frozen=True)
class Sample:
    """A contact form of the base that starts a process whose first task is due from the start."""

    form: Form
    process: Process
    step: TaskStep


def _first_task(process: Process) -> TaskStep | None:
    step = process.steps[0] if process.steps else None
    return step if isinstance(step, TaskStep) and step.when is None else None


def _fillable(fields: tuple[Field, ...]) -> bool:
    return all(f.type not in ("reference", "user", "file", "multichoice") or not f.required for f in fields)


def sample(compiled: CompiledModel, base: str) -> Sample | None:
    """A contact form of the base that starts a process whose first step is a task due from the start and assigned to a
    group, the record's owner or the person who submits (a group's, in business time, if there is one)."""
    model = compiled.model
    found = []
    for form in sorted(model.forms.values(), key=lambda f: f.name):
        if form.pack != base or not form.entity or not form.contact or not _fillable(form.fields):
            continue
        if not _fillable(tuple(f for f in model.entities[form.entity].fields if f.default is None)):
            continue
        for action in form.actions:
            if not isinstance(action, StartAction) or action.when is not None:
                continue
            process = model.processes[action.process]
            step = _first_task(process)
            if step and step.due and step.due.duration and step.due.start == "start" and (step.assign is None or step.assign.kind in ("group", "owner")):
                found.append(Sample(form, process, step))
    # a group's task in business time shows the most: round robin, the calendar
    found.sort(key=lambda s: (s.step.assign is None or s.step.assign.kind != "group", not s.step.due.duration.unit.startswith("business")))
    return found[0] if found else None


def _value(f: Field, start: dt.datetime):
    """A value a person could type into `f`, as written in YAML."""
    if f.choices:
        return f.choices[0].value
    return {"integer": f.min if f.min is not None else 1, "decimal": 1.5, "money": 1000, "boolean": True, "date": start.date().isoformat(),
            "email": "someone@example.com", "phone": "+44 20 7946 0000", "url": "https://example.com"}.get(f.type, "Example")


def _flow(value) -> str:
    """A value in YAML's flow style, on one line."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10_000).strip().removesuffix("...").strip()


def _start() -> dt.datetime:
    """The sample's start: 10:00 on the first Tuesday of March, three years on (the test server's clock is today's)."""
    day = dt.date(dt.date.today().year + 3, 3, 1)
    while day.weekday() != 1:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(10, 0))


def schema_line(folder: Path, rel: str, schema: str) -> str:
    """The comment that lets an editor check the file against its published schema (a path relative to the file)."""
    target = Path(__file__).resolve().parents[2] / "engine" / "schemas" / f"{schema}.schema.json"
    return f"# yaml-language-server: $schema={os.path.relpath(target, (folder.resolve() / rel).parent)}\n"


def files(name: str, compiled: CompiledModel, base: str, folder: Path) -> dict[str, str]:
    """The new pack's files, by path."""
    from runtime.interpreter import Calendar

    model = compiled.model
    base_pack = next(p for p in model.packs if p.name == base)
    out = {
        "pack.yaml": schema_line(folder, "pack.yaml", "pack") + dump({
            "kind": "pack", "name": name, "version": "0.1.0", "label": name.replace("_", " ").title(),
            "description": f"{name.replace('_', ' ').title()}'s own fields, forms and processes, on top of the {base_pack.label} pack.",
            "extends": {base: version_range(base_pack.version)}}),
        "README.md": _readme(name, base),
        **{f"{folder}/.gitkeep": "" for folder in FOLDERS if folder not in ("overlays", "tests", "demo")},
    }
    found = sample(compiled, base)
    if found is None:
        out[f"demo/{name}.yaml"] = _demo(name, _staff_role(compiled), None)
        return out
    form, process, step = found.form, found.process, found.step
    field_name = f"{name}_reference"
    out[f"overlays/{form.name}.yaml"] = (
        schema_line(folder, f"overlays/{form.name}.yaml", "overlay") +
        f"# A sample overlay: {name} asks for its own reference on the {base} pack's '{form.label}' form.\n"
        f"# Overlays change the base's definitions without copying them; docs/definitions.md lists what they can do.\n"
        + dump({"kind": "overlay", "name": f"{name}_{form.name}", "target": f"form/{form.name}",
                 "add_fields": {field_name: {"type": "string", "label": f"{name.replace('_', ' ').title()} reference",
                                             "help": "Our own reference for this, if we have one."}}}))
    start = _start()
    spec = compiled.process_specs[process.name]
    zone = ZoneInfo(spec["calendar"]["timezone"])
    # the scenario's first step runs a second after the start (the runner lets a second pass after the records are made)
    at = (start.replace(tzinfo=zone) + dt.timedelta(seconds=1)).astimezone(dt.UTC)
    due = Calendar(spec["calendar"]).add(at, {"unit": step.due.duration.unit, "amount": step.due.duration.amount})
    due_local = due.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    role = _staff_role(compiled)
    entity = model.entities[form.entity]
    record = {"key": "customer", **{f.name: _value(f, start) for f in entity.fields if f.required and f.default is None}}
    if entity.field("owner") is not None and entity.field("owner").type == "user":
        record["owner"] = "sam"
    users = [{"username": "sam", "name": "Sam Sample", "roles": [role] if role else []},
             {"username": "max", "name": "Max Manager", "roles": [role] if role else []}]
    given: dict = {"users": users, "records": {form.entity: [record]}}
    task: dict = {"step": step.id}
    if step.assign is not None and step.assign.kind == "group":
        given["groups"] = {step.assign.name: {"members": ["sam"], "managers": ["max"]}}
        task.update(group=step.assign.name, assignee="sam")
    elif step.assign is None or "owner" in record:
        task["assignee"] = "sam"
    task["due"] = written(due_local)
    values = {f.name: _value(f, start) for f in form.fields if f.required}
    values[field_name] = "REF-001"
    creates = {a.alias: a.alias for a in form.actions if isinstance(a, CreateAction)}
    calendar = f"calendar: {spec['calendar']['name']}\n" if process.calendar else ""
    groups = "".join(f"  groups:\n    {g}: {_flow(v)}\n" for g, v in (given.get("groups") or {}).items())
    out[f"tests/{form.name}.yaml"] = (
        schema_line(folder, f"tests/{form.name}.yaml", "scenario")
        + "# A sample scenario test, run by `tailor pack test` (the format: docs/packs.md). Times are local to the calendar.\n"
        + f"scenario: {_flow(f'{form.label} starts {process.label.lower()}, its first task for the right person, due on time')}\n"
        + calendar
        + f"start: {written(start)}\n\n"
        + "given:\n  users:\n" + "".join(f"    - {_flow(u)}\n" for u in users) + groups
        + f"  records:\n    {form.entity}:\n      - {_flow(record)}\n\n"
        + "steps:\n"
        + f"  - submit: {form.name}\n    on: customer\n    by: sam\n    values: {_flow(values)}\n"
        + (f"    creates: {_flow(creates)}\n" if creates else "")
        + f"\n  # '{step.id}' is due {step.due.duration.text} after the start, counted on the process's calendar.\n"
        + f"  - expect:\n      tasks:\n        - {_flow(task)}\n      history:\n        customer: [{_flow(form.label)}]\n")
    demo_record = {**record, "key": f"{name}_customer"}
    out[f"demo/{name}.yaml"] = _demo(name, role, (form, demo_record, given.get("groups")))
    return out


def _staff_role(compiled: CompiledModel) -> str | None:
    """A role whose people get and work on tasks."""
    return next((r.name for r in compiled.model.roles.values() if {"generate_tasks", "manage_own_tasks"} <= set(r.permissions)), None)


def _demo(name: str, role: str | None, found: tuple[Form, dict, dict | None] | None) -> str:
    """A sample demo file: a person to log in as and, with a sample form, a customer with a contact of that form."""
    text = (f"# Demo data of {name}, loaded by `tailor run --demo` after its base's (once per version of the pack; the format:\n"
            "# docs/packs.md). It may name the users and records of the base's demo. Passwords are for a local demo only.\n"
            "users:\n"
            f"  - {_flow({'username': 'sam', 'name': 'Sam Sample', 'password': 'sam', 'roles': [role] if role else []})}\n")
    if found is None:
        return text
    form, record, groups = found
    if groups:
        text += "groups:\n" + "".join(f"  {g}: {_flow({'members': v['members']})}\n" for g, v in groups.items())
    text += f"records:\n  {form.entity}:\n    - {_flow(record)}\n"
    text += f"contacts:\n  - {_flow({'record': record['key'], 'form': form.name, 'summary': form.label, 'by': 'sam', 'days': 1})}\n"
    return text


def _readme(name: str, base: str) -> str:
    return f"""# {name}

A client pack extending the `{base}` pack.

| folder | what goes there |
| --- | --- |
| `entities/` | this client's own entities (`kind: entity`) |
| `forms/` | its contact and task forms (`kind: form`) |
| `processes/` | its processes (`kind: process`) |
| `overlays/` | changes to the `{base}` pack's definitions (`kind: overlay`) |
| `tests/` | scenario tests, run by `tailor pack test` |
| `demo/` | demo data, loaded by `tailor run --demo` after the `{base}` pack's |

    tailor check definitions/{base} {name}     # every problem at its file:line
    tailor pack test {name}                    # the scenarios, on a fake clock
    tailor pack build {name}                   # {name}-VERSION.zip, to install
    tailor pack install {name}-0.1.0.zip       # the plan (add --apply to do it)

See docs/packs.md.
"""


def write(name: str, compiled: CompiledModel, base: str, folder: Path) -> list[Path]:
    """Write the new pack into `folder` (which must not exist or be empty); the files written."""
    if not NAME.match(name):
        raise PackError(f"'{name}' cannot name a pack: use lower_snake_case (a-z, 0-9 and _, starting with a letter)")
    if name == base or name in {p.name for p in compiled.model.packs} or name == "local":
        raise PackError(f"'{name}' is already a pack's name ({', '.join(p.name for p in compiled.model.packs)}, and the installation's "
                        f"own 'local'): choose another")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise PackError(f"{folder} already exists and is not empty: choose another name or --dir")
    written_files = []
    for rel, text in files(name, compiled, base, folder).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written_files.append(path)
    return written_files
