"""Semantic checks on the merged model: references, types, expressions, time.

`check_model` yields every problem it can find; references to definitions whose
documents were too broken to build are not reported again.
"""
from __future__ import annotations

import datetime as _dt
import zoneinfo
from functools import lru_cache
from typing import Iterator
from urllib.parse import urlsplit

from . import fieldtypes, recurrence, reporting
from .errors import Loc, Problem
from .expressions import ANY, Scope, check as check_template
from .fieldtypes import COMMON_OPTIONS, is_valid_regex
from .recurrence import RecurrenceError
from .model import (
    CreateAction, Entity, Field, Form, FormTrigger, Model, ParallelStep, Party, Process, RecordTrigger, ScheduleTrigger,
    Source, StartAction, Step, TaskStep, Template, UpdateAction, Webhook,
)

RESERVED_ENTITIES = frozenset({"user", "users", "group", "groups", "task", "tasks", "alert", "alerts", "project", "projects",
                               "contact", "contact_history", "audit", "audit_log", "submission", "submissions", "process",
                               "processes", "record_field", "idempotency_key", "alembic_version"})
RESERVED_FIELDS = frozenset({"id", "data", "title", "created_at", "updated_at", "created_by", "updated_by", "row_version", "deleted_at",
                             "record_fields"})
SYSTEM_ATTRS = frozenset({"id", "title", "created_at", "updated_at", "created_by", "updated_by"})
NOW = frozenset({"today", "now"})


OPTIONS = ("min", "max", "min_length", "max_length", "pattern", "entity", "currency", "placeholder", "choices")


@lru_cache(maxsize=None)
def _not_applicable(ftype: fieldtypes.FieldType) -> tuple[str, ...]:
    """Options a field of this type must not be given, in the order problems name them."""
    return tuple(sorted(set(OPTIONS) - ftype.options - COMMON_OPTIONS))


class Checker:
    def __init__(self, model: Model, broken: set[tuple[str, str]]):
        self.m = model
        self.broken = broken
        self._record_scopes: dict[str, frozenset[str]] = {}

    def exists(self, kind: str, name: str | None, table) -> bool:
        return name is None or name in table or (kind, name) in self.broken

    def unknown(self, loc: Loc, kind: str, name: str, table, context: str = "") -> Problem:
        known = ", ".join(sorted(set(table) | {n for k, n in self.broken if k == kind})) or "none defined"
        return Problem(loc, f"reference.{kind}", f"unknown {kind} '{name}'{context} (known: {known})")

    def record_scope(self, entity: str | None) -> frozenset[str] | None:
        e = self.m.entities.get(entity) if entity else None
        if e is None:
            return ANY
        if e.name not in self._record_scopes:  # asked for by every process, form and trigger on the entity
            self._record_scopes[e.name] = frozenset(f.name for f in e.all_fields()) | SYSTEM_ATTRS
        return self._record_scopes[e.name]

    def template(self, t: Template | None, scope: Scope, *, expression: bool = False) -> list[Problem]:
        return check_template(t, scope, expression=expression) if t is not None else []

    # -- fields --------------------------------------------------------------
    def fields(self, fields: tuple[Field, ...], where: str, *, reserved: bool) -> Iterator[Problem]:
        for f in fields:
            yield from self.field(f, where, reserved=reserved)

    def field(self, f: Field, where: str, *, reserved: bool) -> Iterator[Problem]:
        ftype = fieldtypes.get(f.type)
        if reserved and f.name in RESERVED_FIELDS:
            yield Problem(f.loc, "field.reserved", f"'{f.name}' is a reserved field name in {where} (reserved: {', '.join(sorted(RESERVED_FIELDS))})")
        for opt in _not_applicable(ftype):
            if (f.choices if opt == "choices" else getattr(f, opt) not in (None, "")):
                yield Problem(f.loc, "field.option", f"field '{f.name}' in {where}: '{opt}' does not apply to type {f.type}")
        if f.type == "reference":
            if not f.entity:
                yield Problem(f.loc, "field.entity", f"field '{f.name}' in {where}: a reference needs 'entity:' (one of: {', '.join(sorted(self.m.entities))})")
            elif not self.exists("entity", f.entity, self.m.entities):
                yield self.unknown(f.loc, "entity", f.entity, self.m.entities, f" in field '{f.name}'")
        if f.type in ("choice", "multichoice") and not f.choices:
            yield Problem(f.loc, "field.choices", f"field '{f.name}' in {where}: a {f.type} needs 'choices:'")
        if f.choices and len(f.choices) != len({c.value for c in f.choices}):
            yield Problem(f.loc, "field.choices", f"field '{f.name}' in {where}: choices repeat a value")
        if f.min is not None and f.max is not None and f.min > f.max:
            yield Problem(f.loc, "field.range", f"field '{f.name}' in {where}: min {f.min} is greater than max {f.max}")
        if f.min_length is not None and f.max_length is not None and f.min_length > f.max_length:
            yield Problem(f.loc, "field.range", f"field '{f.name}' in {where}: min_length is greater than max_length")
        if f.pattern and (err := is_valid_regex(f.pattern)):
            yield Problem(f.loc, "field.pattern", f"field '{f.name}' in {where}: invalid pattern: {err}")
        if f.default is not None and (err := ftype.check_default(f, f.default)):
            yield Problem(f.loc, "field.default", f"field '{f.name}' in {where}: {err}")

    # -- entities ------------------------------------------------------------
    def entity(self, e: Entity) -> Iterator[Problem]:
        where = f"entity '{e.name}'"
        if e.name in RESERVED_ENTITIES:
            yield Problem(e.loc, "entity.reserved", f"'{e.name}' is reserved for the platform's own tables; choose another entity name")
        yield from self.fields(e.fields, where, reserved=True)
        seen = {f.name: f for f in e.fields}
        for g in e.groups:
            yield from self.fields(g.fields, f"{where} group '{g.name}'", reserved=True)
            for f in g.fields:
                if f.name in seen:
                    yield Problem(f.loc, "field.duplicate", f"field '{f.name}' of group '{g.name}' is already a field of {where} ({seen[f.name].loc})")
                seen.setdefault(f.name, f)
        names = {f.name for f in e.all_fields()}
        for f in e.all_fields():
            if f.renamed_from and f.renamed_from in names:
                yield Problem(f.loc, "field.renamed", f"field '{f.name}' is renamed from '{f.renamed_from}', but '{f.renamed_from}' still exists")
        scope = Scope({"record": self.record_scope(e.name)}, f"{where}")
        yield from self.template(e.title, Scope(scope.names, f"{where} title"))
        for g in e.groups:
            yield from self.template(g.when, Scope({**scope.names, "today": ANY}, f"{where} group '{g.name}'"), expression=True)
        for link in e.links:
            yield from self.template(link.url, Scope(scope.names, f"{where} link '{link.name}'"))
        yield from self.pages(e, where)
        for t in e.record_fields.types:
            if t in ("reference", "choice", "multichoice", "group"):
                yield Problem(e.loc, "entity.record-fields", f"{where}: single-record fields cannot be of type {t} (they have no place to define its options)")

    def pages(self, e: Entity, where: str) -> Iterator[Problem]:
        """Every field the entity's `pages:` names exists; stages is a choice field; sections list each field once."""
        p = e.pages
        if p.loc is None:
            return
        fields = {f.name: f for f in e.all_fields()}
        system = {"title", "created_at", "updated_at"}
        for option, names in (("columns", p.columns), ("filters", p.filters), ("search", p.search)):
            for i, name in enumerate(names):
                if name not in fields and name not in system:
                    yield Problem(p.loc_of(f"{option}/{i}"), "entity.pages", f"{where} pages.{option} names '{name}', which is not a field of the entity "
                                  f"(fields: {', '.join(fields)})")
        if p.stages is not None and (p.stages not in fields or fields[p.stages].type != "choice"):
            found = f"a {fields[p.stages].type} field" if p.stages in fields else "not a field of the entity"
            yield Problem(p.loc_of("stages"), "entity.pages", f"{where} pages.stages must name a choice field; '{p.stages}' is {found}")
        seen: set[str] = set()
        own = {f.name for f in e.fields}
        for s in p.sections:
            for name in s.fields:
                if name not in own:
                    yield Problem(s.loc, "entity.pages", f"section '{s.title}' of {where} lists '{name}', which is not a field for all "
                                  f"{e.plural.lower()} (group fields have sections of their own)")
                elif name in seen:
                    yield Problem(s.loc, "entity.pages", f"field '{name}' appears twice in the sections of {where}")
                seen.add(name)
        if p.sections:
            for name in sorted(own - seen):
                yield Problem(p.loc, "entity.pages", f"field '{name}' of {where} is in no section of pages.sections")

    # -- forms ---------------------------------------------------------------
    def form(self, form: Form) -> Iterator[Problem]:
        where = f"form '{form.name}'"
        yield from self.fields(form.fields, where, reserved=False)
        if form.entity and not self.exists("entity", form.entity, self.m.entities):
            yield self.unknown(form.entity_loc or form.loc, "entity", form.entity, self.m.entities)
        if form.contact and not form.entity:
            yield Problem(form.loc, "form.contact", f"{where} is a contact form but names no 'entity:' to record it against")
        fields = {f.name: f for f in form.fields}
        placed: dict[str, Loc] = {}
        for s in form.layout:
            for name in s.fields:
                if name not in fields:
                    yield Problem(s.loc, "form.layout", f"section '{s.title}' of {where} lists '{name}', which is not a field of the form")
                elif name in placed:
                    yield Problem(s.loc, "form.layout", f"field '{name}' appears twice in the layout of {where}")
                placed[name] = s.loc
        if form.layout_given:
            for name, f in fields.items():
                if name not in placed:
                    yield Problem(f.loc, "form.layout", f"field '{name}' of {where} is in no section of its layout")
        yield from self.actions(form)

    def actions(self, form: Form) -> Iterator[Problem]:
        entity = self.m.entities.get(form.entity) if form.entity else None
        created: dict[str, str] = {}
        scope = Scope({"form": frozenset(f.name for f in form.fields), "record": self.record_scope(form.entity),
                       "user": frozenset({"id", "name", "email"}), "today": ANY, "now": ANY}, f"form '{form.name}' on_submit")
        for action in form.actions:
            if isinstance(action, CreateAction):
                target = self.m.entities.get(action.entity)
                if target is None:
                    if not self.exists("entity", action.entity, self.m.entities):
                        yield self.unknown(action.loc, "entity", action.entity, self.m.entities, " in 'create'")
                    continue
                yield from self.mapping(form, dict((f.name, f) for f in target.all_fields()), action.set, f"entity '{target.name}'", created, scope)
                given = {k for k, _ in action.set}
                for f in target.fields:
                    if f.required and f.default is None and f.name not in given:
                        yield Problem(action.loc, "action.required", f"creating a {target.name} needs '{f.name}' (required, no default); add it to 'set'")
                if action.alias in created:
                    yield Problem(action.loc, "action.alias", f"two create actions are both named '{action.alias}'; give one an 'as:'")
                created[action.alias] = action.entity
            elif isinstance(action, UpdateAction):
                if entity is None:
                    if not form.entity:
                        yield Problem(action.loc, "action.update", f"form '{form.name}' updates its record but names no 'entity:'")
                    continue
                yield from self.mapping(form, dict((f.name, f) for f in entity.all_fields()), action.set, f"entity '{entity.name}'", created, scope)
            elif isinstance(action, StartAction):
                proc = self.m.processes.get(action.process)
                if proc is None:
                    if not self.exists("process", action.process, self.m.processes):
                        yield self.unknown(action.loc, "process", action.process, self.m.processes, " in 'start'")
                    continue
                inputs = {f.name: f for f in proc.inputs}
                given = dict(action.inputs)
                if proc.entity:
                    inputs["record"] = Field("record", "reference", proc.loc, "Record", entity=proc.entity)
                    if "record" not in given and proc.entity != form.entity:
                        yield Problem(action.loc, "action.record", f"process '{proc.name}' runs on a {proc.entity}, but form '{form.name}' "
                                                                   f"is recorded against {form.entity or 'nothing'}; pass 'record:' in 'with'")
                yield from self.mapping(form, inputs, action.inputs, f"process '{proc.name}' inputs", created, scope)
                for f in proc.inputs:
                    if f.required and f.default is None and f.name not in given:
                        yield Problem(action.loc, "action.required", f"starting process '{proc.name}' needs input '{f.name}'")

    def mapping(self, form: Form, targets: dict[str, Field], pairs, what: str, created: dict[str, str], scope: Scope) -> Iterator[Problem]:
        form_fields = {f.name: f for f in form.fields}
        for name, src in pairs:
            target = targets.get(name)
            if target is None:
                yield Problem(src.loc, "mapping.target", f"{what} has no field '{name}' (known: {', '.join(sorted(targets))})")
                continue
            yield from self.source(form, form_fields, target, src, created, scope)

    def source(self, form: Form, form_fields: dict[str, Field], target: Field, src: Source, created, scope: Scope) -> Iterator[Problem]:
        ttype = fieldtypes.get(target.type)
        if src.kind == "field":
            f = form_fields.get(src.value)
            if f is None:
                yield Problem(src.loc, "mapping.source", f"form '{form.name}' has no field '{src.value}' (known: {', '.join(sorted(form_fields))}); "
                                                         f"write a template with {{{{ }}}} for text")
            elif not ttype.can_take(f, target):
                yield Problem(src.loc, "mapping.type", f"type mismatch: form field '{f.name}' is {self._describe(f)} but '{target.name}' is {self._describe(target)}")
        elif src.kind == "record":
            if not form.entity:
                yield Problem(src.loc, "mapping.source", f"'record' used, but form '{form.name}' names no 'entity:'")
            elif not (target.type == "reference" and target.entity == form.entity):
                yield Problem(src.loc, "mapping.type", f"type mismatch: 'record' is a {form.entity} but '{target.name}' is {self._describe(target)}")
        elif src.kind == "created":
            if src.value not in created:
                yield Problem(src.loc, "mapping.source", f"'created.{src.value}' names no earlier create action (earlier: {', '.join(created) or 'none'})")
            elif not (target.type == "reference" and target.entity == created[src.value]):
                yield Problem(src.loc, "mapping.type", f"type mismatch: 'created.{src.value}' is a {created[src.value]} but '{target.name}' is {self._describe(target)}")
        elif src.kind == "template":
            if target.type not in ("string", "text"):
                yield Problem(src.loc, "mapping.type", f"type mismatch: a template gives text but '{target.name}' is {self._describe(target)}")
            yield from self.template(Template(src.value, src.loc), scope)
        elif src.kind == "literal":
            if err := ttype.check_default(target, src.value):
                yield Problem(src.loc, "mapping.type", f"type mismatch for '{target.name}': {err.replace('default ', '')}")

    @staticmethod
    def _describe(f: Field) -> str:
        if f.type == "reference":
            return f"a reference to {f.entity}"
        if f.type in ("choice", "multichoice"):
            return f"a {f.type} of {', '.join(str(c.value) for c in f.choices)}"
        return f"a {f.type}"

    # -- processes -----------------------------------------------------------
    def process(self, p: Process) -> Iterator[Problem]:
        where = f"process '{p.name}'"
        yield from self.fields(p.inputs, f"{where} inputs", reserved=False)
        for f in p.inputs:
            if f.name == "record":
                yield Problem(f.loc, "field.reserved", f"'record' is reserved in {where} inputs: it is the record the process runs on")
        if p.entity and not self.exists("entity", p.entity, self.m.entities):
            yield self.unknown(p.entity_loc or p.loc, "entity", p.entity, self.m.entities)
        if p.calendar and not self.exists("calendar", p.calendar, self.m.calendars):
            yield self.unknown(p.calendar_loc or p.loc, "calendar", p.calendar, self.m.calendars)
        ids: dict[str, Loc] = {}
        for step in _walk(p.steps):
            if step.id in ids:
                yield Problem(step.loc, "step.duplicate", f"step id '{step.id}' is used twice in {where} (first at {ids[step.id]})")
            ids.setdefault(step.id, step.loc)
        steps_scope = {sid: self.step_attrs(step) for sid, step in ((s.id, s) for s in _walk(p.steps))}
        scope = Scope({"record": self.record_scope(p.entity), "inputs": frozenset(f.name for f in p.inputs), "process": frozenset({"label", "name", "id"}),
                       "project": frozenset({"title", "manager"}) if p.project else frozenset(), "steps": steps_scope,
                       "today": ANY, "now": ANY}, where)
        if p.project:
            yield from self.template(p.project.title, Scope(scope.names, f"{where} project title"))
            if p.project.manager:
                yield from self.party(p, p.project.manager, earlier=set(), what="project manager", allow={"owner", "role", "group", "user"})
        yield from self.steps(p, p.steps, set(), scope)
        for t in p.triggers:
            yield from self.trigger(p, t)

    def step_attrs(self, step: Step) -> dict:
        """What a template may read of an earlier step: steps.ID.outcome, .completed_by, .data.FIELD."""
        form = self.m.forms.get(step.form) if isinstance(step, TaskStep) and step.form else None
        data = frozenset(f.name for f in form.fields) if form else frozenset()
        return {"outcome": ANY, "completed_by": ANY, "completed_at": ANY, "data": data}

    def steps(self, p: Process, steps: tuple[Step, ...], earlier: set[str], scope: Scope) -> Iterator[Problem]:
        """Check steps in order; `earlier` holds the ids completed before each step starts."""
        for step in steps:
            yield from self.template(step.when, Scope(scope.names, f"step '{step.id}' when"), expression=True)
            if isinstance(step, ParallelStep):
                after = set(earlier)
                for _, branch in step.branches:
                    yield from self.steps(p, branch, set(earlier), scope)
                    after |= {s.id for s in _walk(branch)}
                earlier |= after | {step.id}
                continue
            yield from self.task(p, step, earlier, scope)
            earlier.add(step.id)

    def task(self, p: Process, t: TaskStep, earlier: set[str], scope: Scope) -> Iterator[Problem]:
        what = f"step '{t.id}'"
        yield from self.template(t.title, Scope(scope.names, f"{what} title"))
        yield from self.template(t.description, Scope(scope.names, f"{what} description"))
        if t.assign:
            yield from self.party(p, t.assign, earlier, f"{what} assignee", allow={"owner", "project_manager", "role", "group", "user", "completer", "manager"})
        if t.form and not self.exists("form", t.form, self.m.forms):
            yield self.unknown(t.form_loc or t.loc, "form", t.form, self.m.forms, f" in {what}")
        if t.approval:
            yield from self.party(p, t.approval, earlier, f"{what} approver", allow={"owner", "project_manager", "role", "group", "user", "completer", "manager"})
        if t.due and t.due.start != "start" and t.due.start not in earlier:
            yield Problem(t.due.loc, "step.due-from", f"{what} is due from step '{t.due.start}', which does not finish before it "
                                                      f"(earlier steps: {', '.join(sorted(earlier)) or 'none'})")
        if t.due and t.due.duration:
            yield from self.business(p, t.due.duration, t.due.loc)
        if (t.reminders or t.escalate) and not t.due:
            yield Problem(t.loc, "step.no-due", f"{what} has reminders or escalations but no 'due:'")
        last = -1
        esc_scope = Scope({**scope.names, "task": frozenset({"title", "due", "due_at", "assignee", "assignee_id", "id"})}, f"{what} escalation")
        for e in t.escalate:
            offset = _seconds(e.after_due)
            if offset <= last:
                yield Problem(e.loc, "escalation.order", f"escalation levels of {what} must be in time order, each later than the one before")
            last = offset
            for party in e.alert:
                yield from self.party(p, party, earlier, f"{what} escalation", allow=None)
            if e.reassign:
                yield from self.party(p, e.reassign, earlier, f"{what} reassignment", allow={"owner", "project_manager", "role", "group", "user", "manager", "completer"})
            if e.after_due:
                yield from self.business(p, e.after_due, e.loc)
            yield from self.template(e.message, esc_scope)
        for r in t.reminders:
            yield from self.business(p, r, t.loc)

    def business(self, p: Process, d, loc: Loc) -> Iterator[Problem]:
        if d is not None and d.unit != "seconds" and p.calendar is None and "default" not in self.m.calendars:
            yield Problem(loc, "duration.calendar", f"'{d.text}' counts business time, but process '{p.name}' names no 'calendar:' "
                                                    f"(and no calendar is named 'default')")

    def party(self, p: Process, party: Party, earlier: set[str], what: str, allow: set[str] | None) -> Iterator[Problem]:
        if allow is not None and party.kind not in allow:
            yield Problem(party.loc, "party.kind", f"'{party}' cannot be the {what} (possible: {', '.join(sorted(allow))})")
            return
        if party.kind == "role" and not self.exists("role", party.name, self.m.roles):
            yield self.unknown(party.loc, "role", party.name, self.m.roles, f" in {what}")
        elif party.kind == "group" and not self.exists("group", party.name, self.m.groups):
            yield self.unknown(party.loc, "group", party.name, self.m.groups, f" in {what}")
        elif party.kind == "completer" and party.name not in earlier:
            yield Problem(party.loc, "reference.step", f"'{party}' in {what}: step '{party.name}' does not finish before this one "
                                                        f"(earlier steps: {', '.join(sorted(earlier)) or 'none'})")
        elif party.kind == "project_manager" and p.project is None:
            yield Problem(party.loc, "party.project", f"'project_manager' in {what}, but process '{p.name}' has no 'project:'")
        elif party.kind == "owner":
            e = self.m.entities.get(p.entity) if p.entity else None
            if not p.entity:
                yield Problem(party.loc, "party.owner", f"'owner' in {what}, but process '{p.name}' names no 'entity:' whose owner it would be")
            elif e is not None and not any(f.name == "owner" and f.type == "user" for f in e.fields):
                yield Problem(party.loc, "party.owner", f"'owner' in {what}: entity '{e.name}' has no 'owner' field of type user")

    def trigger(self, p: Process, t) -> Iterator[Problem]:
        if isinstance(t, FormTrigger):
            form = self.m.forms.get(t.form)
            if form is None:
                if not self.exists("form", t.form, self.m.forms):
                    yield self.unknown(t.loc, "form", t.form, self.m.forms, " in trigger")
            elif p.entity and form.entity != p.entity:
                yield Problem(t.loc, "trigger.entity", f"process '{p.name}' runs on a {p.entity}, but form '{form.name}' is recorded against "
                                                       f"{form.entity or 'nothing'}; start it from the form's on_submit with 'record:' instead")
            elif form is not None:
                for f in p.inputs:
                    if f.required and f.default is None and f.name not in {x.name for x in form.fields}:
                        yield Problem(t.loc, "trigger.inputs", f"form '{form.name}' has no field '{f.name}' for required input '{f.name}' of process '{p.name}'")
        elif isinstance(t, RecordTrigger):
            if not self.exists("entity", t.entity, self.m.entities):
                yield self.unknown(t.loc, "entity", t.entity, self.m.entities, " in trigger")
            elif p.entity and t.entity != p.entity:
                yield Problem(t.loc, "trigger.entity", f"process '{p.name}' runs on a {p.entity}; a trigger on {t.entity} records cannot start it")
            rec = self.record_scope(t.entity)
            yield from self.template(t.when, Scope({"record": rec, "before": rec, "changed": ANY, "today": ANY, "now": ANY}, "trigger"), expression=True)
        elif isinstance(t, ScheduleTrigger):
            try:
                recurrence.parse(t.rrule, t.starts, self.timezone(p))
            except RecurrenceError as exc:
                where = t.starts_loc if exc.field == "starts" and t.starts_loc else t.loc
                yield Problem(where, f"trigger.{'starts' if exc.field == 'starts' else 'rrule'}", str(exc))
            if t.for_each:
                if not self.exists("entity", t.for_each, self.m.entities):
                    yield self.unknown(t.loc, "entity", t.for_each, self.m.entities, " in 'for_each'")
                elif p.entity and t.for_each != p.entity:
                    yield Problem(t.loc, "trigger.entity", f"process '{p.name}' runs on a {p.entity}; 'for_each: {t.for_each}' cannot start it")
            elif p.entity:
                yield Problem(t.loc, "trigger.entity", f"process '{p.name}' runs on a {p.entity}; a schedule needs 'for_each: {p.entity}'")
            yield from self.template(t.when, Scope({"record": self.record_scope(t.for_each), "today": ANY, "now": ANY}, "schedule"), expression=True)

    def timezone(self, p: Process) -> str:
        """The time zone the process's schedules run in: its calendar's, as the compiler picks it."""
        cal = self.m.calendars.get(p.calendar) if p.calendar else self.m.calendars.get("default")
        try:
            return zoneinfo.ZoneInfo(cal.timezone).key if cal else "UTC"
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return "UTC"  # an unknown zone is reported on the calendar itself

    # -- people and time -----------------------------------------------------
    def group(self, g) -> Iterator[Problem]:
        for role, loc in g.roles:
            if not self.exists("role", role, self.m.roles):
                yield self.unknown(loc, "role", role, self.m.roles, f" in group '{g.name}'")
        if g.calendar and not self.exists("calendar", g.calendar, self.m.calendars):
            yield self.unknown(g.calendar_loc or g.loc, "calendar", g.calendar, self.m.calendars, f" in group '{g.name}'")

    def calendar(self, c) -> Iterator[Problem]:
        try:
            zoneinfo.ZoneInfo(c.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            yield Problem(c.timezone_loc or c.loc, "calendar.timezone", f"calendar '{c.name}': unknown time zone '{c.timezone}' (expected an IANA name like 'Europe/London')")
        if not c.working_hours:
            yield Problem(c.loc, "calendar.hours", f"calendar '{c.name}' has no working hours at all")
        if c.country:
            import holidays

            try:
                holidays.country_holidays(c.country, subdiv=c.subdivision, years=2026)
            except NotImplementedError:
                yield Problem(c.holidays_loc or c.loc, "calendar.country", f"calendar '{c.name}': no public holidays are known for country '{c.country}'")
            except (ValueError, KeyError) as exc:
                yield Problem(c.holidays_loc or c.loc, "calendar.subdivision", f"calendar '{c.name}': {exc}")
        for d in c.dates:
            try:
                _dt.date.fromisoformat(d)
            except ValueError:
                yield Problem(c.holidays_loc or c.loc, "calendar.date", f"calendar '{c.name}': '{d}' is not a real date")


def _walk(steps: tuple[Step, ...]) -> Iterator[Step]:
    for s in steps:
        yield s
        if isinstance(s, ParallelStep):
            for _, branch in s.branches:
                yield from _walk(branch)


def _seconds(d) -> int:
    if d is None:
        return 0
    return {"seconds": 1, "business_hours": 3600, "business_days": 86400}[d.unit] * d.amount


SESSION_SECRET_ENV = "TAILOR_SECRET_KEY"


def check_webhooks(model: Model) -> Iterator[Problem]:
    """Receivers declared by packs: a web address without credentials, a name no other pack uses, a secret of its own."""
    seen: dict[str, Webhook] = {}
    for w in model.webhooks:
        where = f"webhook '{w.name}'"
        url = urlsplit(w.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            yield Problem(w.url_loc, "webhook.url", f"{where}: expected an http:// or https:// address with a host, found {w.url!r}")
        elif url.username or url.password:
            yield Problem(w.url_loc, "webhook.url", f"{where}: the address carries a user name or password; secrets never go in "
                                                    f"definitions (sign with secret_env instead)")
        if w.secret_env == SESSION_SECRET_ENV:
            yield Problem(w.secret_loc, "webhook.secret", f"{where}: {SESSION_SECRET_ENV} is the key that signs sessions; "
                                                          f"give the receiver a secret of its own")
        if (first := seen.get(w.name)) is not None:
            hint = "" if first.pack == w.pack else f" (a pack adds receivers of its own; it cannot change those of pack '{first.pack}')"
            yield Problem(w.loc, "webhook.duplicate", f"{where} is already declared at {first.loc}{hint}")
            continue
        seen[w.name] = w


def check_model(model: Model, broken: set[tuple[str, str]] = frozenset()) -> list[Problem]:
    """Every semantic problem of a merged model."""
    c = Checker(model, set(broken))
    out: list[Problem] = []
    for e in model.entities.values():
        out.extend(c.entity(e))
    for f in model.forms.values():
        out.extend(c.form(f))
    for p in model.processes.values():
        out.extend(c.process(p))
    for g in model.groups.values():
        out.extend(c.group(g))
    for cal in model.calendars.values():
        out.extend(c.calendar(cal))
    out.extend(check_webhooks(model))
    out.extend(reporting.check_reports(model, c.broken))
    return out
