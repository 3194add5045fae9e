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
from .expressions import ANY, Opaque, Scope, check as check_template
from .fieldtypes import COMMON_OPTIONS, is_valid_regex
from .instancemigration import check_migration
from .recurrence import RecurrenceError
from .model import (
    ApprovalStep, CreateAction, Entity, Field, Form, FormTrigger, Model, ParallelStep, Party, Process, RecordTrigger, ScheduleTrigger,
    Source, StartAction, Step, TaskStep, Template, UpdateAction, Webhook, walk,
)

RESERVED_ENTITIES = frozenset({"user", "users", "group", "groups", "task", "tasks", "alert", "alerts", "project", "projects",
                               "contact", "contact_history", "audit", "audit_log", "submission", "submissions", "process",
                               "processes", "record_field", "idempotency_key", "alembic_version"})
RESERVED_FIELDS = frozenset({"id", "data", "title", "created_at", "updated_at", "created_by", "updated_by", "row_version", "deleted_at",
                             "record_fields"})
SYSTEM_ATTRS = frozenset({"id", "title", "created_at", "updated_at", "created_by", "updated_by"})
SYSTEM_USERS = {"created_by": Opaque("a user's id"), "updated_by": Opaque("a user's id")}
NOW = frozenset({"today", "now"})


def field_specs(fields: tuple[Field, ...]) -> dict:
    """What a template may read of values of these fields: anything of a plain value, nothing of a reference or a
    user, which hold an id (templates do not follow references: `record.company.name` is refused, not left to fail)."""
    return {f.name: Opaque(f"the id of {_article(f.entity)} {f.entity} record") if f.type == "reference"
            else Opaque("a user's id") if f.type == "user" else ANY for f in fields}


def _article(word: str | None) -> str:
    return "an" if (word or "x")[0] in "aeiou" else "a"


# who may be handed a new task (a step's assignee or fallback); the parties below name nobody when a task is new
HOLDERS = frozenset({"owner", "project_manager", "role", "group", "user", "completer"})
# who may approve or be handed a task that already has a holder (an approval's approvers and fallback, an escalation's
# reassignment): a manager too (the requester's, the assignee's)
DECIDERS = HOLDERS | {"manager"}
NOBODY_YET = {
    "assignee": "a new task has no assignee yet, so it would name nobody",
    "manager": "a new task has no assignee or group yet whose manager it would be; assign it to the group (group:NAME): "
               "its managers take what none of its members may",
}

OPTIONS = ("min", "max", "min_length", "max_length", "pattern", "entity", "currency", "placeholder", "choices")


@lru_cache(maxsize=None)
def _not_applicable(ftype: fieldtypes.FieldType) -> tuple[str, ...]:
    """Options a field of this type must not be given, in the order problems name them."""
    return tuple(sorted(set(OPTIONS) - ftype.options - COMMON_OPTIONS))


class Checker:
    def __init__(self, model: Model, broken: set[tuple[str, str]]):
        self.m = model
        self.broken = broken
        self._record_scopes: dict[str, dict] = {}

    def exists(self, kind: str, name: str | None, table) -> bool:
        return name is None or name in table or (kind, name) in self.broken

    def unknown(self, loc: Loc, kind: str, name: str, table, context: str = "") -> Problem:
        known = ", ".join(sorted(set(table) | {n for k, n in self.broken if k == kind})) or "none defined"
        return Problem(loc, f"reference.{kind}", f"unknown {kind} '{name}'{context} (known: {known})")

    def record_scope(self, entity: str | None) -> dict | None:
        e = self.m.entities.get(entity) if entity else None
        if e is None:
            return ANY
        if e.name not in self._record_scopes:  # asked for by every process, form and trigger on the entity
            self._record_scopes[e.name] = {**dict.fromkeys(SYSTEM_ATTRS), **SYSTEM_USERS, **field_specs(e.all_fields())}
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
        yield from identifiers(e)
        for t in e.record_fields.types:
            if t in ("reference", "choice", "multichoice", "group"):
                yield Problem(e.record_fields.loc or e.loc, "entity.record-fields", f"{where}: single-record fields cannot be of type {t} (they have no place to define its options)")

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
            by_name = {f.name: f for f in e.fields}
            for name in sorted(own - seen):
                # a field an overlay added is reported where the overlay adds it: that is what needs placing
                at = by_name[name].loc if by_name[name].pack != e.pack else p.loc
                hint = " (place it with the overlay's add_to_sections)" if by_name[name].pack != e.pack else ""
                yield Problem(at, "entity.pages", f"field '{name}' of {where} is in no section of pages.sections{hint}")

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
        scope = Scope({"form": field_specs(form.fields), "record": self.record_scope(form.entity),
                       "user": frozenset({"id", "name", "email"}), "today": ANY, "now": ANY}, f"form '{form.name}' on_submit")
        for action in form.actions:
            yield from self.template(action.when, Scope(scope.names, f"form '{form.name}' on_submit when"), expression=True)
            if isinstance(action, CreateAction):
                target = self.m.entities.get(action.entity)
                if target is None:
                    if not self.exists("entity", action.entity, self.m.entities):
                        yield self.unknown(action.loc, "entity", action.entity, self.m.entities, " in 'create'")
                    continue
                yield from self.mapping(form, dict((f.name, f) for f in target.all_fields()), action.set, f"entity '{target.name}'", created, scope)
                yield from self.match(target, action)
                given = {k for k, _ in action.set}
                for f in target.fields:
                    if f.required and f.default is None and f.name not in given:
                        yield Problem(action.loc, "action.required", f"creating a {target.name} needs '{f.name}' (required, no default); add it to 'set'")
                if action.alias in created:
                    yield Problem(action.loc, "action.alias", f"two create actions are both named '{action.alias}'; give one an 'as:'")
                created[action.alias] = action.entity
            elif isinstance(action, UpdateAction) and action.target != "record":
                problem, name = self.update_target(form, action, created)
                if problem is not None:
                    yield problem
                elif (other := self.m.entities.get(name)) is not None:
                    yield from self.mapping(form, dict((f.name, f) for f in other.all_fields()), action.set, f"entity '{other.name}'", created, scope)
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

    def match(self, target: Entity, action: CreateAction) -> Iterator[Problem]:
        """Find or create: `match` names a unique field of the entity for all its records, and `set` gives it a value."""
        if action.match is None:
            return
        loc = action.match_loc or action.loc
        f = target.field(action.match)
        unique = sorted(x.name for x in target.fields if x.unique)
        if f is None or not f.unique:
            group = next((g.name for g in target.groups if any(x.name == action.match for x in g.fields)), None)
            found = "not unique" if f else f"a field of group '{group}' only" if group else f"not a field of {target.name}"
            yield Problem(loc, "action.match", f"'match: {action.match}' must name a unique field of {target.name}, to find the one record with "
                                               f"that value; '{action.match}' is {found} (unique fields: {', '.join(unique) or 'none'})")
        elif action.match not in {k for k, _ in action.set}:
            yield Problem(loc, "action.match", f"'match: {action.match}' finds the {target.name} by the value 'set' gives "
                                               f"'{action.match}', but 'set' gives it none")

    def update_target(self, form: Form, action: UpdateAction, created: dict[str, str]) -> tuple[Problem | None, str | None]:
        """The entity `update: NAME` changes: a reference field of the form, or an earlier create action's `as` (not both)."""
        loc = action.target_loc or action.loc
        name = action.target
        f = form.field(name)
        if f is not None and name in created:
            return Problem(loc, "action.update", f"'update: {name}' is ambiguous: form '{form.name}' has a field '{name}' and an "
                                                 f"earlier create action is named '{name}'; rename one (the action's 'as:')"), None
        if name in created:
            return None, created[name]
        if f is not None and f.type == "reference":
            return None, f.entity
        if f is not None:
            return Problem(loc, "action.update", f"'update: {name}' names form field '{name}', which is {self._describe(f)}; "
                                                 f"only a reference field points at a record to update"), None
        refs = sorted(x.name for x in form.fields if x.type == "reference")
        return Problem(loc, "action.update", f"'update: {name}' names no reference field of form '{form.name}' and no earlier create "
                                             f"action (possible: {', '.join(['record', *refs, *created])})"), None

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
            else:
                yield from currencies(f, target, src.loc)
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
        for step in walk(p.steps):
            if step.id in ids:
                yield Problem(step.loc, "step.duplicate", f"step id '{step.id}' is used twice in {where} (first at {ids[step.id]})")
            ids.setdefault(step.id, step.loc)
        steps_scope = {sid: self.step_attrs(step) for sid, step in ((s.id, s) for s in walk(p.steps))}
        scope = Scope({"record": self.record_scope(p.entity), "inputs": field_specs(p.inputs), "process": frozenset({"label", "name", "id"}),
                       "project": frozenset({"title", "manager"}) if p.project else frozenset(), "steps": steps_scope,
                       "today": ANY, "now": ANY}, where)
        if p.project:
            yield from self.template(p.project.title, Scope(scope.names, f"{where} project title"))
            if p.project.manager:
                yield from self.party(p, p.project.manager, earlier=set(), what="project manager", allow={"owner", "role", "group", "user"})
        if p.fallback:
            if p.fallback.kind == "completer":
                yield Problem(p.fallback.loc, "party.never", f"'{p.fallback}' cannot be the fallback of {where}: it stands in for every "
                                                             f"step, and the steps up to '{p.fallback.name}' have no completer of it yet; "
                                                             f"give the steps after it a 'fallback:' of their own")
            else:
                yield from self.party(p, p.fallback, set(), f"{where} fallback", allow=HOLDERS)
        yield from self.steps(p, p.steps, set(), scope)
        for t in p.triggers:
            yield from self.trigger(p, t)

    def step_attrs(self, step: Step) -> dict:
        """What a template may read of an earlier step: steps.ID.outcome, .completed_by, .data.FIELD."""
        form = self.m.forms.get(step.form) if isinstance(step, TaskStep) and step.form else None
        data = field_specs(form.fields) if form else frozenset()
        return {"outcome": ANY, "completed_by": ANY, "completed_at": ANY, "data": data}

    def steps(self, p: Process, steps: tuple[Step, ...], earlier: set[str], scope: Scope,
              path: dict[str, Step] | None = None) -> Iterator[Problem]:
        """Check steps in order; `earlier` holds the ids completed before each step starts, `path` the steps
        before it on its own line of work (those of a parallel branch are on it only inside that branch)."""
        path = {} if path is None else path
        for step in steps:
            yield from self.template(step.when, Scope(scope.names, f"step '{step.id}' when"), expression=True)
            if isinstance(step, ParallelStep):
                after = set(earlier)
                for _, branch in step.branches:
                    yield from self.steps(p, branch, set(earlier), scope, dict(path))
                    after |= {s.id for s in walk(branch)}
                earlier |= after | {step.id}
                continue
            if isinstance(step, ApprovalStep):
                yield from self.approval(p, step, earlier, path, scope)
            else:
                yield from self.task(p, step, earlier, scope)
            earlier.add(step.id)
            path[step.id] = step

    def task(self, p: Process, t: TaskStep, earlier: set[str], scope: Scope) -> Iterator[Problem]:
        what = f"step '{t.id}'"
        yield from self.template(t.title, Scope(scope.names, f"{what} title"))
        yield from self.template(t.description, Scope(scope.names, f"{what} description"))
        if t.assign:
            yield from self.party(p, t.assign, earlier, f"{what} assignee", allow=HOLDERS)
        if t.fallback:
            yield from self.party(p, t.fallback, earlier, f"{what} fallback", allow=HOLDERS)
        if t.form and not self.exists("form", t.form, self.m.forms):
            yield self.unknown(t.form_loc or t.loc, "form", t.form, self.m.forms, f" in {what}")
        yield from self.timing(p, t, earlier, scope)

    def approval(self, p: Process, a: ApprovalStep, earlier: set[str], path: dict[str, Step], scope: Scope) -> Iterator[Problem]:
        """An approval step: it approves an earlier task step on its own path; its approvers are parties who can hold a
        task; what it shows are fields of the record or of the approved step's form."""
        what = f"step '{a.id}'"
        yield from self.template(a.title, Scope(scope.names, f"{what} title"))
        yield from self.template(a.description, Scope(scope.names, f"{what} description"))
        steps = {s.id: s for s in walk(p.steps)}
        target = steps.get(a.approve)
        approved = target if isinstance(target, TaskStep) and a.approve in path else None
        if target is None:
            tasks = ", ".join(s.id for s in walk(p.steps) if isinstance(s, TaskStep)) or "none"
            yield Problem(a.approve_loc, "reference.step", f"{what} approves '{a.approve}', which is not a step of process '{p.name}' "
                                                           f"(its task steps: {tasks})")
        elif isinstance(target, ParallelStep):
            yield Problem(a.approve_loc, "approval.kind", f"{what} approves '{a.approve}', which is a parallel block; "
                                                          f"name the task step whose work is approved")
        elif isinstance(target, ApprovalStep):
            yield Problem(a.approve_loc, "approval.kind", f"{what} approves '{a.approve}', which is itself an approval step; "
                                                          f"name the task step whose work is approved ('{target.approve}')")
        elif approved is None:
            before = ", ".join(sid for sid, s in path.items() if isinstance(s, TaskStep)) or "none"
            if a.approve in earlier:
                yield Problem(a.approve_loc, "approval.path", f"{what} approves '{a.approve}', which runs in a parallel branch this step "
                                                              f"is not part of; approve it inside that branch (task steps before this one "
                                                              f"on its path: {before})")
            else:
                yield Problem(a.approve_loc, "approval.order", f"{what} approves '{a.approve}', which does not finish before it "
                                                               f"(task steps before this one on its path: {before})")
        for party in a.approvers:
            yield from self.party(p, party, earlier, f"{what} approvers", allow=DECIDERS)
        if a.fallback:
            yield from self.party(p, a.fallback, earlier, f"{what} fallback", allow=DECIDERS)
        if a.show is not None:
            yield from self.show(p, a, approved)
        yield from self.timing(p, a, earlier, scope)

    def show(self, p: Process, a: ApprovalStep, approved: TaskStep | None) -> Iterator[Problem]:
        """Each `show:` path names a field of the record's entity (record.FIELD) or of the approved step's form."""
        what = f"step '{a.id}'"
        entity = self.m.entities.get(p.entity) if p.entity else None
        form = self.m.forms.get(approved.form) if approved is not None and approved.form else None
        for path, loc in a.show:
            head, _, name = path.partition(".")
            if head == "record":
                if not p.entity:
                    yield Problem(loc, "approval.show", f"{what} shows '{path}', but process '{p.name}' names no 'entity:' whose record it would be")
                elif entity is not None and all(f.name != name for f in entity.all_fields()):
                    yield Problem(loc, "approval.show", f"{what} shows '{path}', which is not a field of entity '{entity.name}' "
                                                        f"(fields: {', '.join(f.name for f in entity.all_fields())})")
            elif head == a.approve:
                if approved is None:
                    continue  # the approve: reference is already reported
                if not approved.form:
                    yield Problem(loc, "approval.show", f"{what} shows '{path}', but step '{a.approve}' has no form whose data it would be")
                elif form is not None and form.field(name) is None:
                    yield Problem(loc, "approval.show", f"{what} shows '{path}', which is not a field of form '{form.name}' "
                                                        f"(fields: {', '.join(f.name for f in form.fields)})")
            else:
                yield Problem(loc, "approval.show", f"{what} shows '{path}': expected record.FIELD or {a.approve}.FIELD "
                                                    f"(a field of the approved step's form)")

    def timing(self, p: Process, t: TaskStep | ApprovalStep, earlier: set[str], scope: Scope) -> Iterator[Problem]:
        """A step's due time, reminders and escalation ladder."""
        what = f"step '{t.id}'"
        if t.due and t.due.start != "start" and t.due.start not in earlier:
            yield Problem(t.due.loc, "step.due-from", f"{what} is due from step '{t.due.start}', which does not finish before it "
                                                      f"(earlier steps: {', '.join(sorted(earlier)) or 'none'})")
        if t.due and t.due.duration:
            yield from self.business(p, t.due.duration, t.due.loc)
        if (t.reminders or t.escalate) and not t.due:
            yield Problem(t.loc, "step.no-due", f"{what} has reminders or escalations but no 'due:'")
        last = -1
        record = scope.names.get("record")  # messages show the record's values as words; its raw values are record.raw.X
        shown = {**record, "raw": record} if isinstance(record, dict) else record
        esc_scope = Scope({**scope.names, "record": shown, "task": frozenset({"title", "due", "due_at", "assignee", "assignee_id", "id"})},
                          f"{what} escalation")
        for e in t.escalate:
            offset = _seconds(e.after_due)
            if offset <= last:
                yield Problem(e.loc, "escalation.order", f"escalation levels of {what} must be in time order, each later than the one before")
            last = offset
            for party in e.alert:
                yield from self.party(p, party, earlier, f"{what} escalation", allow=None)
            if e.reassign:
                yield from self.party(p, e.reassign, earlier, f"{what} reassignment", allow=DECIDERS)
            if e.after_due:
                yield from self.business(p, e.after_due, e.loc)
            yield from self.template(e.message, esc_scope)
        for r in t.reminders:
            yield from self.business(p, r, t.loc)

    def business(self, p: Process, d, loc: Loc) -> Iterator[Problem]:
        if d is not None and d.unit != "seconds" and p.calendar is None and "default" not in self.m.calendars:
            yield Problem(loc, "duration.calendar", f"'{d.text}' counts business time, but process '{p.name}' names no 'calendar:' "
                                                    f"(and no calendar is named 'default')")

    def party(self, p: Process, party: Party, earlier: set[str], what: str, allow: frozenset[str] | set[str] | None) -> Iterator[Problem]:
        if allow is HOLDERS and party.kind in NOBODY_YET:
            yield Problem(party.loc, "party.never", f"'{party}' cannot be the {what}: {NOBODY_YET[party.kind]}")
            return
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
        if g.managers not in ("take_turns", "skip"):  # the schema says so of a group's own file; an overlay's 'set' is free-form
            yield Problem(g.managers_loc or g.loc, "group.managers", f"group '{g.name}': 'managers' is take_turns or skip, "
                                                                     f"found '{g.managers}'")

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


def currencies(source: Field, target: Field, loc: Loc) -> Iterator[Problem]:
    """Money goes only into money of the same currency: nothing converts an amount between currencies."""
    if source.type == target.type == "money" and source.currency and target.currency and source.currency != target.currency:
        yield Problem(loc, "mapping.currency", f"currency mismatch: form field '{source.name}' is an amount in {source.currency} but "
                                               f"'{target.name}' is an amount in {target.currency}; amounts are not converted between "
                                               f"currencies (map it into a money field in {source.currency})")


MAX_IDENTIFIER = 63  # PostgreSQL's limit on table, column, index and constraint names (longer ones are refused or cut short)


def identifiers(e: Entity) -> Iterator[Problem]:
    """Names the entity's table is made with fit in PostgreSQL's 63 characters: the table, its title index
    (ix_ENTITY_title), and per field its column, its index (ix_ENTITY_FIELD) and its foreign key (fk_ENTITY_FIELD)."""
    longest = f"ix_{e.name}_title"
    if len(longest) > MAX_IDENTIFIER:
        yield Problem(e.loc, "entity.name-length", f"entity name '{e.name}' is too long for the database: its title index "
                                                   f"'{longest}' has {len(longest)} characters, at most {MAX_IDENTIFIER} fit "
                                                   f"(use at most {MAX_IDENTIFIER - 9} for the entity name)")
        return
    for f in e.all_fields():
        # a field inside `data` is a JSON key, of any length, unless it is indexed
        name = f"ix_{e.name}_{f.name}" if f.indexed or f.unique or f.type == "reference" else f.name if f.column else ""
        if len(name) > MAX_IDENTIFIER:
            what = f"its index '{name}'" if name != f.name else "its column name"
            yield Problem(f.loc, "field.name-length", f"field name '{f.name}' of entity '{e.name}' is too long for the database: "
                                                      f"{what} has {len(name)} characters, at most {MAX_IDENTIFIER} fit "
                                                      f"(use at most {MAX_IDENTIFIER - len(name) + len(f.name)} for the field name)")


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
        out.extend(check_migration(p))
    for g in model.groups.values():
        out.extend(c.group(g))
    for cal in model.calendars.values():
        out.extend(c.calendar(cal))
    out.extend(check_webhooks(model))
    out.extend(reporting.check_reports(model, c.broken))
    return out
