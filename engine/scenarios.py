"""Scenario tests: the YAML files in a pack's `tests/` folder, read into typed, located values.

A scenario says who exists (users, groups, records), then does what people do (submit a form, complete, approve,
reject or reassign a task, let time pass) and says what must be true after (open tasks with their holders and due
times, alerts, reminders, record values, contact history, processes). `admin.packtool.runner` runs them on
Temporal's time-skipping test server; this module only reads and checks them (no database, no clock), so every
problem — a misspelt form, a step no process has, an unknown user — is reported at its line before anything runs.
The format is the published `engine/schemas/scenario.schema.json`.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Union

from . import durations
from .errors import Loc, Problem
from .kinds import check_shape
from .model import CreateAction, Duration, Model, ParallelStep, Step
from .packs import TESTS
from .source import Document, read_file

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MOMENT = re.compile(r"^(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2})?)$")


@dataclass(frozen=True)
class ScenarioUser:
    username: str
    name: str
    email: str
    roles: tuple[str, ...]
    time_zone: str | None
    loc: Loc


@dataclass(frozen=True)
class ScenarioGroup:
    name: str
    members: tuple[str, ...]
    managers: tuple[str, ...]
    loc: Loc


@dataclass(frozen=True)
class FixtureRecord:
    entity: str
    key: str
    values: Mapping[str, Any]
    loc: Loc
    locs: Mapping[str, Loc]  # where each value is written


@dataclass(frozen=True)
class Submit:
    form: str
    by: str
    on: str | None
    values: Mapping[str, Any]
    creates: tuple[tuple[str, str], ...]  # (the create action's alias, the key the scenario names its record by)
    refused: str | None
    loc: Loc
    locs: Mapping[str, Loc]


@dataclass(frozen=True)
class Act:
    """An action on a step's open task: complete, approve, reject, reassign or comment."""

    verb: str
    step: str
    by: str
    values: Mapping[str, Any]
    comment: str
    to: str | None
    record: str | None
    process: str | None
    refused: str | None
    loc: Loc
    locs: Mapping[str, Loc]


@dataclass(frozen=True)
class Start:
    process: str
    on: str | None
    by: str
    loc: Loc


@dataclass(frozen=True)
class Advance:
    duration: Duration | None  # by this much (business time counts on the scenario's calendar)
    to: dt.datetime | None  # or to this local time (naive: on the scenario's calendar)
    loc: Loc


@dataclass(frozen=True)
class ExpectedTask:
    step: str
    loc: Loc
    process: str | None = None
    record: str | None = None
    title: str | None = None
    assignee: str | None = None
    assignee_given: bool = False  # `assignee: null` expects nobody; no `assignee:` checks nothing
    group: str | None = None
    group_given: bool = False  # likewise: `group: null` expects no group
    due: dt.datetime | None = None  # naive local time on the scenario's calendar
    status: str | None = None


@dataclass(frozen=True)
class ExpectedAlert:
    step: str
    level: int
    to: tuple[str, ...]
    message: str | None
    loc: Loc


@dataclass(frozen=True)
class ExpectedReminder:
    step: str
    to: tuple[str, ...]
    loc: Loc


@dataclass(frozen=True)
class ExpectedRecord:
    key: str
    values: tuple[tuple[str, Any, Loc], ...]
    loc: Loc


@dataclass(frozen=True)
class ExpectedHistory:
    key: str
    entries: tuple[tuple[str, Loc], ...]
    loc: Loc


@dataclass(frozen=True)
class ExpectedProcess:
    process: str
    record: str | None
    status: str
    loc: Loc


@dataclass(frozen=True)
class Expect:
    loc: Loc
    tasks: tuple[ExpectedTask, ...] | None = None
    alerts: tuple[ExpectedAlert, ...] | None = None
    reminders: tuple[ExpectedReminder, ...] | None = None
    records: tuple[ExpectedRecord, ...] = ()
    history: tuple[ExpectedHistory, ...] = ()
    processes: tuple[ExpectedProcess, ...] | None = None


Action = Union[Submit, Act, Start, Advance, Expect]


@dataclass(frozen=True)
class Scenario:
    file: str
    title: str
    description: str
    calendar: str | None
    start: dt.datetime  # naive local time on the scenario's calendar
    start_loc: Loc
    users: tuple[ScenarioUser, ...]
    groups: tuple[ScenarioGroup, ...]
    records: tuple[FixtureRecord, ...]
    steps: tuple[Action, ...]


def scenario_files(pack: Path) -> list[Path]:
    """The scenario files of a pack folder: `tests/**/*.yaml`, in a stable order."""
    folder = pack / TESTS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def moment(text: str) -> tuple[dt.datetime | None, str | None]:
    """A local time as written ('Fri 2030-03-01 15:00'): (naive datetime, None), or (None, what is wrong)."""
    m = _MOMENT.match(text.strip()) if isinstance(text, str) else None
    if not m:
        return None, f"expected a local time like 'Fri 2030-03-01 15:00', found '{text}'"
    try:
        value = dt.datetime.fromisoformat(f"{m.group(2)}T{m.group(3)}")
    except ValueError as exc:
        return None, f"'{text}' is not a date and time: {exc}"
    day = WEEKDAYS[value.weekday()]
    if m.group(1) and m.group(1) != day:
        return None, f"{m.group(2)} is a {_DAY_NAMES[day]}, not a {_DAY_NAMES[m.group(1)]}"
    return value, None


_DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")))


def written(value: dt.datetime) -> str:
    """A local time as a scenario writes it: 'Fri 2030-03-01 15:00'."""
    return f"{WEEKDAYS[value.weekday()]} {value:%Y-%m-%d %H:%M}"


# -- reading ------------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, doc: Document):
        self.doc = doc
        self.problems: list[Problem] = []

    def loc(self, ptr: str) -> Loc:
        return self.doc.loc(ptr)

    def locs(self, ptr: str, values: Mapping[str, Any]) -> dict[str, Loc]:
        """Where each key of a mapping is written."""
        return {k: self.doc.key_loc(f"{ptr}/{k}") for k in values}

    def moment(self, text: str, ptr: str) -> dt.datetime | None:
        value, problem = moment(text)
        if problem:
            self.problems.append(Problem(self.loc(ptr), "scenario.time", problem, ptr))
        return value

    def scenario(self) -> Scenario:
        d = self.doc.data
        given = d.get("given") or {}
        users = tuple(ScenarioUser(u["username"], u.get("name") or u["username"].capitalize(), u.get("email") or f"{u['username']}@example.com",
                                   tuple(u["roles"]), u.get("time_zone"), self.loc(f"/given/users/{i}"))
                      for i, u in enumerate(given.get("users") or ()))
        groups = tuple(ScenarioGroup(name, tuple(g.get("members") or ()), tuple(g.get("managers") or ()), self.doc.key_loc(f"/given/groups/{name}"))
                       for name, g in (given.get("groups") or {}).items())
        records = tuple(FixtureRecord(entity, row["key"], {k: v for k, v in row.items() if k != "key"}, self.loc(f"/given/records/{entity}/{i}"),
                                      self.locs(f"/given/records/{entity}/{i}", row))
                        for entity, rows in (given.get("records") or {}).items() for i, row in enumerate(rows))
        start = self.moment(d["start"], "/start")
        steps = tuple(self.step(s, f"/steps/{i}") for i, s in enumerate(d["steps"]))
        return Scenario(self.doc.file, d["scenario"], d.get("description", ""), d.get("calendar"), start or dt.datetime(2000, 1, 1),
                        self.loc("/start"), users, groups, records, steps)

    def step(self, s: dict, ptr: str) -> Action:
        loc = self.loc(ptr)
        if "submit" in s:
            return Submit(s["submit"], s["by"], s.get("on"), s.get("values") or {}, tuple((s.get("creates") or {}).items()), s.get("refused"),
                          loc, self.locs(f"{ptr}/values", s.get("values") or {}))
        for verb in ("complete", "approve", "reject", "reassign", "comment"):
            if verb in s:
                comment = s["text"] if verb == "comment" else s.get("comment") or ""  # `comment: STEP` names the step
                return Act(verb, s[verb], s["by"], s.get("values") or {}, comment, s.get("to"), s.get("record"), s.get("process"),
                           s.get("refused"), loc, self.locs(f"{ptr}/values", s.get("values") or {}))
        if "start" in s:
            return Start(s["start"], s.get("on"), s["by"], loc)
        if "advance" in s:
            value = s["advance"]
            if isinstance(value, dict):
                return Advance(None, self.moment(value["to"], f"{ptr}/advance/to"), loc)
            try:
                return Advance(durations.parse_duration(value), None, loc)
            except durations.DurationError as exc:
                self.problems.append(Problem(self.loc(f"{ptr}/advance"), "scenario.duration", str(exc), f"{ptr}/advance"))
                return Advance(None, None, loc)
        return self.expect(s["expect"], f"{ptr}/expect")

    def expect(self, e: dict, ptr: str) -> Expect:
        def tasks() -> Iterator[ExpectedTask]:
            for i, t in enumerate(e["tasks"]):
                p = f"{ptr}/tasks/{i}"
                yield ExpectedTask(t["step"], self.loc(p), t.get("process"), t.get("record"), t.get("title"), t.get("assignee"), "assignee" in t,
                                   t.get("group"), "group" in t, self.moment(t["due"], f"{p}/due") if "due" in t else None, t.get("status"))

        alerts = tuple(ExpectedAlert(a["step"], a["level"], tuple(a["to"]), a.get("message"), self.loc(f"{ptr}/alerts/{i}"))
                       for i, a in enumerate(e.get("alerts") or ()))
        reminders = tuple(ExpectedReminder(r["step"], tuple(r["to"]), self.loc(f"{ptr}/reminders/{i}")) for i, r in enumerate(e.get("reminders") or ()))
        records = tuple(ExpectedRecord(key, tuple((name, value, self.doc.key_loc(f"{ptr}/records/{key}/{name}")) for name, value in values.items()),
                                       self.doc.key_loc(f"{ptr}/records/{key}"))
                        for key, values in (e.get("records") or {}).items())
        history = tuple(ExpectedHistory(key, tuple((text, self.loc(f"{ptr}/history/{key}/{i}")) for i, text in enumerate(entries)),
                                        self.doc.key_loc(f"{ptr}/history/{key}"))
                        for key, entries in (e.get("history") or {}).items())
        processes = tuple(ExpectedProcess(p["process"], p.get("record"), p["status"], self.loc(f"{ptr}/processes/{i}"))
                          for i, p in enumerate(e.get("processes") or ()))
        return Expect(self.loc(ptr), tuple(tasks()) if "tasks" in e else None, alerts if "alerts" in e else None,
                      reminders if "reminders" in e else None, records, history, processes if "processes" in e else None)


def read_scenario(path: Path, display: str | None = None) -> tuple[Scenario | None, list[Problem]]:
    """One scenario file, typed; or every problem with its shape, each at its line."""
    name = display or str(path)
    docs, problems = read_file(path, name)
    if problems:
        return None, problems
    if len(docs) != 1 or docs[0].data is None:
        return None, [Problem(Loc(name, 1, 1), "scenario.documents", f"a scenario file holds one scenario, found {len(docs)} documents")]
    doc = docs[0]
    if not isinstance(doc.data, dict):
        return None, [Problem(doc.loc(""), "scenario.shape", "expected a mapping with scenario:, start: and steps:")]
    problems = check_shape(doc, "scenario")
    if problems:
        return None, problems
    reader = _Reader(doc)
    scenario = reader.scenario()
    return (None if reader.problems else scenario), reader.problems


# -- checking against the definitions ---------------------------------------------------------------
def check_packs(folders: Iterable[str | Path], model: Model) -> list[Problem]:
    """Every problem of the scenario files of pack folders: their shape, and the names they use."""
    from .packs import display_path

    problems: list[Problem] = []
    for folder in folders:
        for path in scenario_files(Path(folder)):
            scenario, found = read_scenario(path, display_path(path))
            problems += found if scenario is None else check_scenario(scenario, model)
    return problems


def _step_ids(steps: tuple[Step, ...]) -> Iterator[str]:
    for s in steps:
        if isinstance(s, ParallelStep):
            for _, branch in s.branches:
                yield from _step_ids(branch)
        else:
            yield s.id


def check_scenario(scenario: Scenario, model: Model) -> list[Problem]:
    """Every name a scenario uses, checked against the definitions and the scenario's own people and records."""
    return sorted(_Checker(scenario, model).problems(), key=lambda p: (p.loc.line, p.loc.column))


class _Checker:
    def __init__(self, scenario: Scenario, model: Model):
        self.s, self.model = scenario, model
        self.users = {u.username for u in scenario.users}
        self.keys: dict[str, str] = {}  # record key -> entity
        self.steps = {name: set(_step_ids(p.steps)) for name, p in model.processes.items()}

    def problems(self) -> Iterator[Problem]:
        s, model = self.s, self.model
        if s.calendar and s.calendar not in model.calendars:
            yield Problem(s.start_loc, "scenario.calendar", f"no calendar '{s.calendar}' (known: {', '.join(sorted(model.calendars)) or 'none'})")
        seen: set[str] = set()
        for u in s.users:
            if u.username in seen:
                yield Problem(u.loc, "scenario.user", f"user '{u.username}' is given twice")
            seen.add(u.username)
            for r in u.roles:
                if r not in model.roles:
                    yield Problem(u.loc, "scenario.role", f"{u.username}: no role '{r}' (known: {', '.join(sorted(model.roles))})")
        for g in s.groups:
            if g.name not in model.groups:
                yield Problem(g.loc, "scenario.group", f"no group '{g.name}' (known: {', '.join(sorted(model.groups)) or 'none'})")
            yield from (self.user(name, g.loc) for name in (*g.members, *g.managers) if name not in self.users)
        for r in s.records:
            yield from self.record(r)
        for step in s.steps:
            yield from self.step(step)

    def user(self, name: str | None, loc: Loc) -> Problem:
        return Problem(loc, "scenario.user", f"no user '{name}' in given: users (known: {', '.join(sorted(self.users)) or 'none'})")

    def known(self, key: str | None, loc: Loc) -> Iterator[Problem]:
        if key is not None and key not in self.keys:
            yield Problem(loc, "scenario.record", f"no record '{key}' yet (known: {', '.join(sorted(self.keys)) or 'none'}): "
                                                  f"give it in given: records or name it with a submission's creates:")

    def record(self, r: FixtureRecord) -> Iterator[Problem]:
        entity = self.model.entities.get(r.entity)
        if entity is None:
            yield Problem(r.loc, "scenario.entity", f"no entity '{r.entity}' (known: {', '.join(sorted(self.model.entities))})")
            return
        if r.key in self.keys:
            yield Problem(r.loc, "scenario.record", f"record key '{r.key}' is used twice")
        fields = {f.name: f for f in entity.all_fields()}
        for name, value in r.values.items():
            f = fields.get(name)
            if f is None:
                yield Problem(r.locs[name], "scenario.field", f"{r.entity} has no field '{name}' (known: {', '.join(sorted(fields))})")
            elif f.type == "user" and value is not None and value not in self.users:
                yield self.user(value, r.locs[name])
            elif f.type == "reference" and value is not None:
                yield from self.known(value, r.locs[name])
        self.keys[r.key] = r.entity

    def step(self, step: Action) -> Iterator[Problem]:
        model = self.model
        if isinstance(step, Submit):
            form = model.forms.get(step.form)
            if step.by not in self.users:
                yield self.user(step.by, step.loc)
            if form is None:
                yield Problem(step.loc, "scenario.form", f"no form '{step.form}' (known: {', '.join(sorted(model.forms))})")
                return
            if form.entity and step.on is None:
                yield Problem(step.loc, "scenario.on", f"form '{step.form}' is recorded on {_a(form.entity)}: say which with on: KEY")
            yield from self.known(step.on, step.loc)
            if step.on in self.keys and form.entity and self.keys[step.on] != form.entity:
                yield Problem(step.loc, "scenario.on", f"form '{step.form}' is recorded on {_a(form.entity)}; '{step.on}' is {_a(self.keys[step.on])}")
            yield from self.values(step.values, step.locs, {f.name: f for f in form.fields}, f"form '{step.form}'")
            creates = {a.alias: a.entity for a in form.actions if isinstance(a, CreateAction)}
            for alias, key in step.creates:
                if alias not in creates:
                    yield Problem(step.loc, "scenario.creates", f"form '{step.form}' creates no '{alias}' (its create actions: "
                                                                f"{', '.join(sorted(creates)) or 'none'})")
                    continue
                if key in self.keys:
                    yield Problem(step.loc, "scenario.record", f"record key '{key}' is used twice")
                self.keys[key] = creates[alias]
        elif isinstance(step, Act):
            for name in (step.by, step.to):
                if name is not None and name not in self.users:
                    yield self.user(name, step.loc)
            yield from self.task_step(step.step, step.process, step.loc)
            yield from self.known(step.record, step.loc)
            if step.values:
                forms = {p.form for name, p in self._task_specs(step.step, step.process) if p.form}
                for form_name in forms:
                    form = model.forms.get(form_name)
                    if form:
                        yield from self.values(step.values, step.locs, {f.name: f for f in form.fields}, f"form '{form_name}'")
        elif isinstance(step, Start):
            if step.by not in self.users:
                yield self.user(step.by, step.loc)
            process = model.processes.get(step.process)
            if process is None:
                yield Problem(step.loc, "scenario.process", f"no process '{step.process}' (known: {', '.join(sorted(model.processes))})")
            elif process.entity and step.on is None:
                yield Problem(step.loc, "scenario.on", f"process '{step.process}' runs on {_a(process.entity)}: say which with on: KEY")
            elif process.entity and step.on in self.keys and self.keys[step.on] != process.entity:
                yield Problem(step.loc, "scenario.on", f"process '{step.process}' runs on {_a(process.entity)}; '{step.on}' is "
                                                       f"{_a(self.keys[step.on])}")
            yield from self.known(step.on, step.loc)
        elif isinstance(step, Expect):
            yield from self.expect(step)

    def _task_specs(self, step_id: str, process: str | None):
        for name, p in self.model.processes.items():
            if process and name != process:
                continue
            for s in _walk(p.steps):
                if s.id == step_id and not isinstance(s, ParallelStep):
                    yield name, s

    def task_step(self, step_id: str, process: str | None, loc: Loc) -> Iterator[Problem]:
        if process is not None and process not in self.model.processes:
            yield Problem(loc, "scenario.process", f"no process '{process}' (known: {', '.join(sorted(self.model.processes))})")
            return
        if not any(True for _ in self._task_specs(step_id, process)):
            where = f"process '{process}'" if process else "any process"
            yield Problem(loc, "scenario.step", f"no step '{step_id}' in {where}")

    def values(self, values: Mapping[str, Any], locs: Mapping[str, Loc], fields: Mapping[str, Any], what: str) -> Iterator[Problem]:
        for name, value in values.items():
            f = fields.get(name)
            if f is None:
                yield Problem(locs[name], "scenario.field", f"{what} has no field '{name}' (known: {', '.join(sorted(fields))})")
            elif f.type == "user" and value is not None and value not in self.users:
                yield self.user(value, locs[name])
            elif f.type == "reference" and value is not None:
                yield from self.known(value, locs[name])

    def expect(self, e: Expect) -> Iterator[Problem]:
        for t in e.tasks or ():
            yield from self.task_step(t.step, t.process, t.loc)
            yield from self.known(t.record, t.loc)
            if t.assignee is not None and t.assignee not in self.users:
                yield self.user(t.assignee, t.loc)
            if t.group is not None and t.group not in self.model.groups:
                yield Problem(t.loc, "scenario.group", f"no group '{t.group}' (known: {', '.join(sorted(self.model.groups)) or 'none'})")
        for a in (*(e.alerts or ()), *(e.reminders or ())):
            yield from self.task_step(a.step, None, a.loc)
            yield from (self.user(name, a.loc) for name in a.to if name not in self.users)
        for r in e.records:
            yield from self.known(r.key, r.loc)
            entity = self.model.entities.get(self.keys.get(r.key, ""))
            if entity is not None:
                fields = {f.name for f in entity.all_fields()}
                yield from (Problem(loc, "scenario.field", f"{entity.name} has no field '{name}' (known: {', '.join(sorted(fields))})")
                            for name, _, loc in r.values if name not in fields)
        for h in e.history:
            yield from self.known(h.key, h.loc)
        for p in e.processes or ():
            if p.process not in self.model.processes:
                yield Problem(p.loc, "scenario.process", f"no process '{p.process}' (known: {', '.join(sorted(self.model.processes))})")
            yield from self.known(p.record, p.loc)


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _walk(steps: tuple[Step, ...]) -> Iterator[Step]:
    for s in steps:
        yield s
        if isinstance(s, ParallelStep):
            for _, branch in s.branches:
                yield from _walk(branch)
