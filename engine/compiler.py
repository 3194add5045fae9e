"""compile: a checked `Model` in, everything the runtime needs out.

Pure and deterministic: the same definitions give byte-identical output.
Per entity: a SQLAlchemy table (core columns plus one JSON column holding the
variable fields) and JSON Schemas; per form: a JSON Schema, its layout and its UI
schemas for third-party renderers; per process: a serializable spec whose content
hash is its version.
"""
from __future__ import annotations

import functools

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

from . import collector, fieldtypes, reporting, uischema
from .labels import translate
from .model import (
    ApprovalStep, Calendar, CreateAction, Duration, Entity, Escalation, Field, Form, FormTrigger, ManualTrigger, Model, ParallelStep, Party,
    Process, RecordTrigger, ScheduleTrigger, Source, StartAction, Step, TaskStep, UpdateAction, walk,
)

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SPEC_FORMAT = 1

JsonType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite only autoincrements INTEGER PRIMARY KEY


def canonical_json(value: Any) -> str:
    """The one JSON spelling used for hashing and for files: sorted keys, fixed separators."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def pretty_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2) + "\n"


def is_column(f: Field) -> bool:
    """References and fields marked `column: true` get their own column; the rest live in `data`."""
    return f.column or f.type == "reference"


def data_expression(table: sa.Table, f: Field) -> sa.ColumnElement:
    """The SQL expression for a variable field inside `data`; indexes and filters share it."""
    element = table.c.data[f.name]
    if f.type in ("integer", "user", "reference"):
        return element.as_integer()
    if f.type == "decimal":
        return element.as_float()
    if f.type == "boolean":
        return element.as_boolean()
    return element.as_string()


# -- entities ------------------------------------------------------------------


def cyclic_references(model: Model) -> frozenset[tuple[str, str]]:
    """(entity, field) of every reference inside a cycle of references between entities (company -> person -> company).

    Their foreign keys are added once every table of the cycle exists (`use_alter`): no order of CREATE TABLEs
    could hold them, and SQLAlchemy, which sorts tables by their foreign keys, leaves those it cannot sort aside.
    A record referring to its own entity is no cycle: its table can name itself.
    """
    edges = {name: {f.entity for f in e.all_fields() if f.type == "reference" and f.entity in model.entities}
             for name, e in model.entities.items()}
    return frozenset((name, f.name) for name, e in model.entities.items() for f in e.all_fields()
                     if f.type == "reference" and f.entity != name and _reaches(edges, f.entity, name))


def _reaches(edges: Mapping[str, set[str]], start: str, goal: str) -> bool:
    """Whether references lead from entity `start` to entity `goal`."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def entity_table(e: Entity, metadata: sa.MetaData, cyclic: frozenset[tuple[str, str]] = frozenset()) -> sa.Table:
    cols: list[Any] = [
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(500), nullable=False, server_default=""),
        sa.Column("data", JsonType, nullable=False),
        sa.Column("record_fields", JsonType, nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.BigInteger),
        sa.Column("updated_by", sa.BigInteger),
    ]
    for f in e.all_fields():
        if not is_column(f):
            continue
        ftype = fieldtypes.get(f.type)
        args: list[Any] = []
        if f.type == "reference" and (e.name, f.name) in cyclic:  # added after the tables: see cyclic_references
            args = [sa.ForeignKey(f"{f.entity}.id", ondelete="RESTRICT", use_alter=True, name=f"fk_{e.name}_{f.name}")]
        elif f.type == "reference":
            args = [sa.ForeignKey(f"{f.entity}.id", ondelete="RESTRICT")]
        cols.append(sa.Column(f.name, ftype.sql_type(f), *args, nullable=True, unique=f.unique and f.scope == "all" or None,
                              index=(f.indexed or f.type == "reference") and not f.unique or None, comment=f.label))
    # AUTOINCREMENT: SQLite would otherwise give a deleted highest id to the next record, and with it the
    # deleted record's contact history and audit trail.
    table = sa.Table(e.name, metadata, *cols, comment=e.label, sqlite_autoincrement=True)
    # The search box and the global search look in titles: scanning this narrow index (it holds each title and its
    # id) is a fraction of scanning the table with its data, and a prefix or exact title is a seek.
    sa.Index(f"ix_{e.name}_title", table.c.title)
    # reports count the records created in a period (the pipeline funnel, counts by a field): a range of this index
    sa.Index(f"ix_{e.name}_created_at", table.c.created_at)
    for f in e.all_fields():
        if is_column(f) or not (f.indexed or f.unique):
            continue
        sa.Index(f"ix_{e.name}_{f.name}", data_expression(table, f), unique=f.unique, info={"field": f.name})
    return table


Groups = tuple[tuple[str, str], ...]  # the model's groups as (name, label), by name: the options of a `group` field


def group_options(model: Model) -> Groups:
    return tuple((name, model.groups[name].label) for name in sorted(model.groups))


def _field_schemas(fields: tuple[Field, ...], groups: Groups) -> dict[str, dict]:
    out = {}
    for f in fields:
        schema = fieldtypes.get(f.type).json_schema(f)
        if f.type == "group":
            schema.update(fieldtypes.labelled(list(groups)))
        if f.scope != "all":
            schema["x-tailor-scope"] = f.scope
        out[f.name] = schema
    return out


def entity_schema(e: Entity, groups: Groups) -> dict:
    """Schema of a record's `data`: every field (group fields optional here), nothing else."""
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"tailor:entity/{e.name}",
        "title": e.label,
        "description": e.description or f"{e.label} records",
        "type": "object",
        "properties": _field_schemas(e.all_fields(), groups),
        "required": sorted(f.name for f in e.fields if f.required),
        "additionalProperties": False,
        "x-tailor-entity": {"name": e.name, "plural": e.plural, "customer": e.customer,
                            "groups": [{"name": g.name, "label": g.label, "when": g.when.source} for g in e.groups],
                            "links": [{"name": link.name, "label": link.label, "url": link.url.source} for link in e.links],
                            "title": e.title.source if e.title else None,
                            "record_fields": {"allowed": e.record_fields.allowed, "types": list(e.record_fields.types), "max": e.record_fields.max}},
    }


def group_schema(e: Entity, group_name: str, groups: Groups) -> dict:
    """What a record in the group must also satisfy: its group fields and their requirements."""
    g = next(g for g in e.groups if g.name == group_name)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"tailor:entity/{e.name}/group/{g.name}",
        "title": f"{e.label}: {g.label}",
        "description": g.description or f"Fields for {g.label.lower()} (when {g.when.source})",
        "type": "object",
        "properties": _field_schemas(g.fields, groups),
        "required": sorted(f.name for f in g.fields if f.required),
        "x-tailor-when": g.when.source,
    }


# -- forms ---------------------------------------------------------------------


def form_schema(form: Form, groups: Groups) -> dict:
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"tailor:form/{form.name}",
        "title": form.label,
        "description": form.description,
        "type": "object",
        "properties": _field_schemas(form.fields, groups),
        "required": sorted(f.name for f in form.fields if f.required),
        "additionalProperties": False,
    }


def _widget(f: Field) -> dict:
    out = {"name": f.name, "label": f.label, "type": f.type, "widget": fieldtypes.get(f.type).widget, "required": f.required}
    for key in ("help", "placeholder", "entity", "currency", "default", "min", "max", "max_length"):
        value = getattr(f, key)
        if value not in (None, ""):
            out[key] = value
    if f.choices:
        out["choices"] = [{"value": c.value, "label": c.label} for c in f.choices]
    return out


def form_layout(form: Form) -> dict:
    fields = {f.name: f for f in form.fields}
    return {
        "form": form.name, "label": form.label, "description": form.description, "entity": form.entity,
        "contact": form.contact, "portal": form.portal,
        "sections": [{"title": s.title, "columns": s.columns, "help": s.help, "fields": [_widget(fields[n]) for n in s.fields]}
                     for s in form.layout],
        "on_submit": [_action(a) for a in form.actions],
    }


def _source(s: Source) -> dict:
    return {"kind": s.kind, "value": s.value}


def _action(a) -> dict:
    # 'when' and 'match' only when given, so the layouts of forms without them stay as they were
    when = {"when": a.when.source} if a.when else {}
    if isinstance(a, CreateAction):
        match = {"match": a.match} if a.match else {}
        return {"action": "create", "entity": a.entity, "as": a.alias, **match, "set": {k: _source(v) for k, v in a.set}, **when}
    if isinstance(a, UpdateAction):
        return {"action": "update", "update": a.target, "set": {k: _source(v) for k, v in a.set}, **when}
    assert isinstance(a, StartAction)
    return {"action": "start", "process": a.process, "with": {k: _source(v) for k, v in a.inputs}, **when}


# -- processes -----------------------------------------------------------------


def _duration(d: Duration | None) -> dict | None:
    return d.to_json() if d else None


def _party(p: Party | None) -> dict | None:
    return {"kind": p.kind, "name": p.name} if p else None


def _escalation(level: int, e: Escalation) -> dict:
    return {"level": level, "after_due": _duration(e.after_due), "alert": [_party(p) for p in e.alert],
            "reassign": _party(e.reassign), "message": e.message.source if e.message else None}


def _timing(s: TaskStep | ApprovalStep) -> dict:
    return {"due": {"duration": s.due.duration.to_json(), "from": s.due.start} if s.due else None,
            "reminders": [r.to_json() for r in s.reminders], "escalate": [_escalation(i + 1, e) for i, e in enumerate(s.escalate)]}


def _step(s: Step, form_schemas: Mapping[str, dict], forms: Mapping[str, Form], tasks: Mapping[str, TaskStep]) -> dict:
    if isinstance(s, ParallelStep):
        return {"kind": "parallel", "id": s.id, "when": s.when.source if s.when else None,
                "branches": [{"name": n, "steps": [_step(x, form_schemas, forms, tasks) for x in b]} for n, b in s.branches]}
    if isinstance(s, ApprovalStep):
        approved = tasks[s.approve]
        form = forms.get(approved.form) if approved.form else None
        show = [path for path, _ in s.show] if s.show is not None else [f"{s.approve}.{f.name}" for f in (form.fields if form else ())]
        return {"kind": "approval", "id": s.id, "approve": s.approve, "title": s.title.source,
                "description": s.description.source if s.description else None, "when": s.when.source if s.when else None,
                "approvers": [_party(p) for p in s.approvers], "decide": s.decide, "show": show, "fallback": _party(s.fallback),
                **_timing(s)}
    assert isinstance(s, TaskStep)
    return {
        "kind": "task", "id": s.id, "title": s.title.source, "description": s.description.source if s.description else None,
        "when": s.when.source if s.when else None, "assign": _party(s.assign), "strategy": s.strategy,
        # "approval" (a task step's own approver, before approval steps) stays in the spec, always null now, so the
        # specs (and versions) of processes without approvals stay as they were; running instances of older specs use it
        "form": s.form, "approval": None,
        # the step's form schema travels with the spec so a workflow update validator can check submissions;
        # the compiled form's own (read-only) dict, not a copy per step: a form serves many steps
        "form_schema": form_schemas[s.form] if s.form else None, **_timing(s),
        # only when given, so the specs (and versions) of steps without one stay as they were
        **({"fallback": _party(s.fallback)} if s.fallback else {}),
    }


def _trigger(t) -> dict:
    if isinstance(t, FormTrigger):
        return {"kind": "form", "form": t.form}
    if isinstance(t, RecordTrigger):
        return {"kind": "record", "entity": t.entity, "on": list(t.on), "when": t.when.source if t.when else None}
    if isinstance(t, ScheduleTrigger):
        # 'starts' only when given, so specs (and their versions) of rules without one stay as they were
        return {"kind": "schedule", "rrule": t.rrule, "for_each": t.for_each, "when": t.when.source if t.when else None,
                **({"starts": t.starts} if t.starts else {})}
    assert isinstance(t, ManualTrigger)
    return {"kind": "manual"}


ALWAYS = {"name": "always", "timezone": "UTC", "working_hours": [{"weekday": d, "start": 0, "end": 1440} for d in range(7)],
          "holidays": {"country": None, "subdivision": None, "dates": []}}


def calendar_spec(c: Calendar | None) -> dict:
    if c is None:
        return ALWAYS
    return {"name": c.name, "timezone": c.timezone,
            "working_hours": [{"weekday": p.weekday, "start": p.start_minute, "end": p.end_minute} for p in c.working_hours],
            "holidays": {"country": c.country, "subdivision": c.subdivision, "dates": list(c.dates)}}


def process_spec(p: Process, model: Model, form_schemas: Mapping[str, dict]) -> dict:
    """The immutable, self-contained spec one interpreter workflow runs; `hash` is its version.

    `form_schemas` are the model's compiled form schemas (see `form_schema`), by form name.
    """
    cal = model.calendars.get(p.calendar) if p.calendar else model.calendars.get("default")
    tasks = {s.id: s for s in walk(p.steps) if isinstance(s, TaskStep)}
    spec = {
        "format": SPEC_FORMAT, "name": p.name, "label": p.label, "description": p.description, "pack": p.pack,
        "entity": p.entity, "calendar": calendar_spec(cal),
        "inputs": {"type": "object", "properties": _field_schemas(p.inputs, group_options(model)),
                   "required": sorted(f.name for f in p.inputs if f.required)},
        "triggers": [_trigger(t) for t in p.triggers] or [{"kind": "manual"}],
        "project": {"title": p.project.title.source, "manager": _party(p.project.manager)} if p.project else None,
        "steps": [_step(s, form_schemas, model.forms, tasks) for s in p.steps],
        **({"fallback": _party(p.fallback)} if p.fallback else {}),
    }
    digest = hashlib.sha256(canonical_json(spec).encode()).hexdigest()
    return {**spec, "hash": digest, "version": digest[:12]}


# -- the whole model -------------------------------------------------------------


@dataclass(frozen=True)
class DdlStatement:
    """One statement of the compiled DDL and what it is made for: an entity's table, or one of its fields."""

    entity: str
    field: str | None
    sql: str


@dataclass(frozen=True)
class CompiledModel:
    model: Model
    metadata: sa.MetaData
    entity_schemas: Mapping[str, dict]
    group_schemas: Mapping[tuple[str, str], dict]
    form_schemas: Mapping[str, dict]
    form_layouts: Mapping[str, dict]
    process_specs: Mapping[str, dict]
    #: per form, its UI schema for each renderer dialect (engine.uischema): form_ui_schemas[name]["rjsf" | "jsonforms"]
    form_ui_schemas: Mapping[str, Mapping[str, dict]]

    @functools.cached_property
    def form_triggers(self) -> Mapping[str, tuple[str, ...]]:
        """form -> the processes a submission of it starts through their form triggers (worked out once: every
        submission asks)."""
        out: dict[str, list[str]] = {}
        for name, spec in self.process_specs.items():
            for form in dict.fromkeys(t["form"] for t in spec["triggers"] if t["kind"] == "form"):
                out.setdefault(form, []).append(name)
        return MappingProxyType({form: tuple(names) for form, names in out.items()})

    def ddl(self, dialect: str) -> str:
        """CREATE statements for the entity tables in a dialect ('sqlite' or 'postgresql'), in an order that runs.

        The foreign keys of a reference cycle come last, as ALTER TABLE ... ADD CONSTRAINT, on PostgreSQL; SQLite
        cannot add a constraint to a table, but takes a foreign key to a table created later inline.
        """
        return "\n\n".join(s.sql for s in self.ddl_statements(dialect)) + "\n"

    def ddl_statements(self, dialect: str) -> list[DdlStatement]:
        """The statements of `ddl`, each with the entity (and field) it is made for."""
        d = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}[dialect]
        out = []
        for table in self.metadata.sorted_tables:
            out.append(DdlStatement(table.name, None, str(CreateTable(table).compile(dialect=d)).strip() + ";"))
            for index in sorted(table.indexes, key=lambda i: i.name):
                sql = str(CreateIndex(index).compile(dialect=d, compile_kwargs={"literal_binds": True})).strip() + ";"
                field = index.info.get("field") or next((c.name for c in index.columns if c.name != "title"), None)
                out.append(DdlStatement(table.name, field, sql))
        if d.supports_alter:
            for fk in self.deferred_foreign_keys():
                # isolate_from_table=False: the constraint stays part of its table, for SQLite's CREATE TABLE
                sql = str(AddConstraint(fk, isolate_from_table=False).compile(dialect=d)).strip() + ";"
                out.append(DdlStatement(fk.table.name, fk.columns[0].name, sql))
        return out

    def deferred_foreign_keys(self) -> list[sa.ForeignKeyConstraint]:
        """The foreign keys of reference cycles (`cyclic_references`), by name: added once their tables exist."""
        return sorted((fk for t in self.metadata.tables.values() for fk in t.foreign_key_constraints if fk.use_alter),
                      key=lambda fk: fk.name)

    def manifest(self) -> dict:
        return {
            "packs": [{"name": p.name, "version": p.version} for p in self.model.packs],
            "entities": sorted(self.entity_schemas), "forms": sorted(self.form_schemas), "form_ui_dialects": list(uischema.dialects()),
            "processes": {n: s["version"] for n, s in sorted(self.process_specs.items())},
            **({"webhooks": [{"name": w.name, "pack": w.pack, "url": w.url, "events": list(w.events), "secret_env": w.secret_env}
                             for w in self.model.webhooks]} if self.model.webhooks else {}),
            **({"locales": sorted(self.model.translations)} if self.model.translations else {}),
        }


def compile_model(model: Model) -> CompiledModel:
    """Compile a checked model. Pure: no I/O, same input gives the same output."""
    with collector.paused():  # tables and specs are big, long-lived values: see collector
        return _compile_model(model)


def _compile_model(model: Model) -> CompiledModel:
    metadata = sa.MetaData()
    groups = group_options(model)
    entities = sorted(model.entities.values(), key=lambda e: e.name)
    cyclic = cyclic_references(model)
    for e in entities:
        entity_table(e, metadata, cyclic)
    form_schemas = MappingProxyType({n: form_schema(f, groups) for n, f in sorted(model.forms.items())})
    return CompiledModel(
        model=model,
        metadata=metadata,
        entity_schemas=MappingProxyType({e.name: entity_schema(e, groups) for e in entities}),
        group_schemas=MappingProxyType({(e.name, g.name): group_schema(e, g.name, groups) for e in entities for g in e.groups}),
        form_schemas=form_schemas,
        form_layouts=MappingProxyType({n: form_layout(f) for n, f in sorted(model.forms.items())}),
        process_specs=MappingProxyType({n: process_spec(p, model, form_schemas) for n, p in sorted(model.processes.items())}),
        form_ui_schemas=MappingProxyType({n: MappingProxyType(uischema.ui_schemas(f)) for n, f in sorted(model.forms.items())}),
    )


# -- in a language -----------------------------------------------------------------


def _same_tables(metadata: sa.MetaData) -> sa.MetaData:
    """`metadata`'s tables (the same objects) under an `info` of its own: what is kept there per compiled model (the
    record store's entities with their labels, runtime.records) must not be shared between languages."""
    view = sa.MetaData.__new__(sa.MetaData)
    view.__dict__.update(metadata.__dict__)
    view.__dict__["info"] = {}
    return view


def localized(compiled: CompiledModel, locale: str | None) -> CompiledModel:
    """`compiled` as read in `locale`: its model, entity and form schemas and layouts translated; its tables and
    process specs (and so their versions) the same objects. `compiled` itself when the packs ship no such language."""
    model = translate(compiled.model, locale)
    if model is compiled.model:
        return compiled
    groups = group_options(model)
    entities = sorted(model.entities.values(), key=lambda e: e.name)
    forms = sorted(model.forms.items())
    return replace(
        compiled, model=model, metadata=_same_tables(compiled.metadata),
        entity_schemas=MappingProxyType({e.name: entity_schema(e, groups) for e in entities}),
        group_schemas=MappingProxyType({(e.name, g.name): group_schema(e, g.name, groups) for e in entities for g in e.groups}),
        form_schemas=MappingProxyType({n: form_schema(f, groups) for n, f in forms}),
        form_layouts=MappingProxyType({n: form_layout(f) for n, f in forms}),
        form_ui_schemas=MappingProxyType({n: MappingProxyType(uischema.ui_schemas(f)) for n, f in forms}),
    )


def outputs(c: CompiledModel) -> dict[str, str]:
    """Every output file's relative path and text."""
    files = {f"entities/{n}.schema.json": pretty_json(s) for n, s in c.entity_schemas.items()}
    files.update({f"entities/{e}.{g}.schema.json": pretty_json(s) for (e, g), s in c.group_schemas.items()})
    files.update({f"forms/{n}.schema.json": pretty_json(s) for n, s in c.form_schemas.items()})
    files.update({f"forms/{n}.layout.json": pretty_json(s) for n, s in c.form_layouts.items()})
    files.update({f"forms/{n}.ui.{d}.json": pretty_json(s) for n, uis in c.form_ui_schemas.items() for d, s in uis.items()})
    files.update({f"processes/{n}.json": pretty_json(s) for n, s in c.process_specs.items()})
    files.update({f"reports/{n}.json": pretty_json(reporting.report_spec(c.model, r)) for n, r in sorted(c.model.reports.items())})
    files.update({f"dashboards/{n}.json": pretty_json(reporting.dashboard_spec(d)) for n, d in sorted(c.model.dashboards.items())})
    for locale in sorted(c.model.translations):  # what people read, in each language the packs translate into
        lc = localized(c, locale)
        files.update({f"locales/{locale}/entities/{n}.schema.json": pretty_json(s) for n, s in lc.entity_schemas.items()})
        files.update({f"locales/{locale}/forms/{n}.schema.json": pretty_json(s) for n, s in lc.form_schemas.items()})
        files.update({f"locales/{locale}/forms/{n}.layout.json": pretty_json(s) for n, s in lc.form_layouts.items()})
        files.update({f"locales/{locale}/forms/{n}.ui.{d}.json": pretty_json(s) for n, uis in lc.form_ui_schemas.items() for d, s in uis.items()})
    files["ddl/sqlite.sql"] = c.ddl("sqlite")
    files["ddl/postgresql.sql"] = c.ddl("postgresql")
    files["manifest.json"] = pretty_json(c.manifest())
    return dict(sorted(files.items()))


def write(c: CompiledModel, out: Path) -> list[Path]:
    """Write the compiled model under `out` (the I/O edge of the compiler)."""
    written = []
    for rel, text in outputs(c).items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
