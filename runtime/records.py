"""The record service: create, read, change and search records of the definitions' entities.

Every caller (web routes, activities, the CLI) goes through these functions; none
writes entity tables directly. Each takes the connection (the caller owns the
transaction), the compiled model and the acting user's id. Creating and changing a
record also enqueues the processes its record triggers start (`runtime.outbox`), in
that same transaction.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

import jsonschema
import sqlalchemy as sa
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter

from engine import expressions, fieldtypes
from engine.compiler import CompiledModel, data_expression, is_column
from engine.errors import TailorError
from engine.model import Entity, Field, Group

from . import outbox
from . import values as V
from .db import aware
from .history import add_history, utcnow, write_audit
from .schema import users
from .triggers import record_key, record_starts

SYSTEM_COLUMNS = ("id", "title", "created_at", "updated_at", "created_by", "updated_by")
RECORD_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RECORD_FIELD_PREFIX = "record_fields."
MAX_PAGE_SIZE = 500


class RecordNotFound(TailorError):
    def __init__(self, entity: str, record_id: int):
        self.entity, self.record_id = entity, record_id
        super().__init__(f"there is no {entity} with id {record_id}")


class UnknownEntity(TailorError):
    def __init__(self, entity: str, known: Iterable[str]):
        self.entity = entity
        super().__init__(f"unknown entity '{entity}' (known: {', '.join(sorted(known))})")


class RecordInvalid(TailorError):
    """The values do not fit the entity; `errors` maps each field to what is wrong with it."""

    def __init__(self, entity: str, errors: Mapping[str, str]):
        self.entity = entity
        self.errors = dict(sorted(errors.items()))
        n = len(self.errors)
        details = "; ".join(f"{k}: {v}" for k, v in self.errors.items())
        super().__init__(f"{n} field{'s' if n != 1 else ''} of the {entity} {'are' if n != 1 else 'is'} invalid: {details}")


class Conflict(TailorError):
    """Someone else changed the record since it was read (optimistic concurrency)."""

    def __init__(self, entity: str, record_id: int, expected: int, actual: int | None):
        self.entity, self.record_id, self.expected, self.actual = entity, record_id, expected, actual
        super().__init__(f"{entity} {record_id} was changed by someone else (you had version {expected}, "
                         f"it is now at version {actual}); reload it and apply your change again")


class BadQuery(TailorError):
    """A search names a field or an operator that does not exist."""


@dataclass(frozen=True)
class Record:
    entity: str
    id: int
    title: str
    data: Mapping[str, Any]  # every field that has a value, column-stored ones included
    record_fields: Mapping[str, Mapping[str, Any]]  # name -> {type, label, value, added_by, added_at}
    row_version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    created_by: int | None
    updated_by: int | None
    changed: tuple[str, ...] = ()  # fields this call changed (create and update results)
    starts: tuple[str, ...] = ()  # workflow ids of the processes this change enqueued (create and update results)

    def context(self, entity: Entity) -> dict[str, Any]:
        """The record as templates and conditions see it: every field (None when empty) and the system attributes."""
        out: dict[str, Any] = {f.name: None for f in entity.all_fields()}
        out.update(self.data)
        out.update(id=self.id, title=self.title, created_at=self.created_at, updated_at=self.updated_at,
                   created_by=self.created_by, updated_by=self.updated_by)
        return out


@dataclass(frozen=True)
class Page:
    items: list[Record]
    total: int  # exact up to COUNT_LIMIT; with `more`, "more than COUNT_LIMIT"
    page: int
    page_size: int
    more: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


COUNT_LIMIT = 10_000


# -- the entity as the store sees it ---------------------------------------------------


@dataclass(frozen=True)
class _Entity:
    e: Entity
    table: sa.Table
    schema: dict
    group_schemas: dict[str, dict]
    fields: dict[str, Field]
    group_of: dict[str, Group]
    validators: dict[str | None, jsonschema.Draft202012Validator]  # the entity's (key None) and each group's
    # statements built once, so SQLAlchemy finds their compiled form at once: the row with id :id, plain and locked, ...
    by_id: sa.Select
    by_id_locked: sa.Select
    exists: sa.Select  # the id alone: whether there is such a record
    insert: sa.Insert  # a new row, returning its id


def _entity(compiled: CompiledModel, name: str) -> _Entity:
    # Built once per compiled model and entity: every request reads a record, and building the validators and
    # statements costs more than the read. Kept in the model's MetaData.info, so it lives exactly as long as the model.
    cache = compiled.metadata.info.setdefault("tailor.records", {})
    ent = cache.get(name)
    if ent is None:
        cache[name] = ent = _build_entity(compiled, name)
    return ent


def _build_entity(compiled: CompiledModel, name: str) -> _Entity:
    e = compiled.model.entities.get(name)
    if e is None:
        raise UnknownEntity(name, compiled.model.entities)
    table = compiled.metadata.tables[name]
    schema = compiled.entity_schemas[name]
    group_schemas = {g.name: compiled.group_schemas[(name, g.name)] for g in e.groups}
    by_id = sa.select(table).where(table.c.id == sa.bindparam("id"))
    return _Entity(e=e, table=table, schema=schema, group_schemas=group_schemas, fields={f.name: f for f in e.all_fields()},
                   group_of={f.name: g for g in e.groups for f in g.fields},
                   validators={None: V.validator(schema), **{g: V.validator(gs) for g, gs in group_schemas.items()}},
                   by_id=by_id, by_id_locked=by_id.with_for_update(),
                   exists=sa.select(table.c.id).where(table.c.id == sa.bindparam("id")), insert=table.insert().returning(table.c.id))


def field_expression(table: sa.Table, f: Field) -> sa.ColumnElement:
    """The SQL expression of a field, spelt exactly like its index so the database uses it.

    SQLite only matches an expression index when the JSON path is a literal, not a bound parameter.
    """
    if is_column(f):
        return table.c[f.name]
    return visitors.replacement_traverse(
        data_expression(table, f), {}, lambda el: el.render_literal_execute() if isinstance(el, BindParameter) else None)


# -- reading ---------------------------------------------------------------------------


def _to_record(ent: _Entity, row: Any, changed: tuple[str, ...] = ()) -> Record:
    stored = row.data or {}
    data = {k: v for k, v in stored.items() if k in ent.fields and not is_column(ent.fields[k])}  # removed fields stay hidden
    for f in ent.fields.values():
        if is_column(f):
            value = V.from_column(f, getattr(row, f.name))
            if value is not None:
                data[f.name] = value
    data = {f: data[f] for f in ent.fields if f in data}  # definition order
    return Record(entity=ent.e.name, id=row.id, title=row.title, data=data, record_fields=dict(row.record_fields or {}),
                  row_version=row.row_version, created_at=aware(row.created_at), updated_at=aware(row.updated_at),
                  created_by=row.created_by, updated_by=row.updated_by, changed=changed)


def _row(conn: sa.Connection, ent: _Entity, record_id: int, *, lock: bool = False) -> Any:
    # locked, PostgreSQL holds the row until commit, so a change is made to the latest version (SQLite locks the file)
    row = conn.execute(ent.by_id_locked if lock else ent.by_id, {"id": record_id}).first()
    if row is None:
        raise RecordNotFound(ent.e.name, record_id)
    return row


def get_record(conn: sa.Connection, compiled: CompiledModel, entity: str, record_id: int) -> Record:
    """One record; RecordNotFound if there is none with that id."""
    ent = _entity(compiled, entity)
    return _to_record(ent, _row(conn, ent, record_id))


def require_record(conn: sa.Connection, compiled: CompiledModel, entity: str, record_id: int) -> None:
    """RecordNotFound unless there is a record with that id (what get_record checks, without reading the record)."""
    ent = _entity(compiled, entity)
    if conn.execute(ent.exists, {"id": record_id}).first() is None:
        raise RecordNotFound(ent.e.name, record_id)


def get_records(conn: sa.Connection, compiled: CompiledModel, entity: str, ids: Iterable[int]) -> dict[int, Record]:
    """Several records by id (missing ids are left out)."""
    ent = _entity(compiled, entity)
    rows = conn.execute(sa.select(ent.table).where(ent.table.c.id.in_(list(ids))))
    return {r.id: _to_record(ent, r) for r in rows}


# -- validation ------------------------------------------------------------------------


def find_unique(conn: sa.Connection, compiled: CompiledModel, entity: str, name: str, value: Any) -> Record | None:
    """The record whose unique field `name` holds `value`, or None (find-or-create form actions ask this)."""
    ent = _entity(compiled, entity)
    f = ent.fields[name]
    if V.is_empty(value):
        return None
    row = conn.execute(sa.select(ent.table).where(field_expression(ent.table, f) == _comparable(f, V.normalize(f.type, value)))
                       .order_by(ent.table.c.id).limit(1)).first()
    return _to_record(ent, row) if row is not None else None


def _label(ent: _Entity, name: str) -> str:
    f = ent.fields.get(name)
    return f.label if f else name


def groups_holding(entity: Entity, record: Mapping[str, Any], today: dt.date) -> set[str]:
    """The groups of `entity` whose condition holds for a record with these values (as templates see it: every field,
    None when empty). The one rule for the store, the edit page and the record page."""
    active = set()
    for g in entity.groups:
        try:
            holds = expressions.evaluate(g.when.source, {"record": record, "today": today})
        except Exception:  # a condition on an empty field (e.g. a date filter on None) does not hold
            holds = False
        if holds:
            active.add(g.name)
    return active


def _active_groups(ent: _Entity, values: Mapping[str, Any], today: dt.date, system: Mapping[str, Any]) -> set[str]:
    record = {f: None for f in ent.fields}
    record.update(values)
    record.update(system)
    return groups_holding(ent.e, record, today)


def _schema_errors(ent: _Entity, group: str | None, values: Mapping[str, Any], errors: dict[str, str]) -> None:
    schema = ent.schema if group is None else ent.group_schemas[group]
    for error in ent.validators[group].iter_errors(values):
        if error.validator == "required":
            for name in error.validator_value:
                if name not in values:
                    errors.setdefault(name, f"{_label(ent, name)} is required")
        elif error.validator == "additionalProperties":
            for name in values:
                if name not in schema["properties"]:
                    errors.setdefault(name, f"'{name}' is not a field of {ent.e.label.lower()}")
        elif error.absolute_path:
            name = str(error.absolute_path[0])
            errors.setdefault(name, f"{_label(ent, name)} {V.message(ent.fields.get(name), error)}")
        else:
            errors.setdefault("", error.message)


def _extra_errors(ent: _Entity, values: Mapping[str, Any], errors: dict[str, str]) -> None:
    """Rules JSON Schema cannot say: what the database can hold, money bounds and datetimes with a time zone."""
    for name, value in values.items():
        f = ent.fields.get(name)
        if f is None or name in errors:
            continue
        if (problem := V.storage_problem(f, value)):
            errors[name] = f"{f.label} {problem}"
        elif f.type == "money" and isinstance(value, str) and re.match(fieldtypes.MONEY_PATTERN, value):
            amount = Decimal(value)
            if f.min is not None and amount < Decimal(str(f.min)):
                errors[name] = f"{f.label} must be at least {V._number(f.min)}"
            elif f.max is not None and amount > Decimal(str(f.max)):
                errors[name] = f"{f.label} must be at most {V._number(f.max)}"
        elif f.type == "datetime" and (problem := V.datetime_problem(value)):
            errors[name] = f"{f.label} {problem}"


def _comparable(f: Field, value: Any) -> Any:
    """A value in the form its field expression compares with."""
    if is_column(f):
        return V.to_column(f, value)
    if f.type in ("integer", "user", "reference"):
        return int(value)
    if f.type == "decimal":
        return float(value)
    if f.type == "boolean":
        return bool(value)
    return str(value)


def _reference_errors(conn: sa.Connection, compiled: CompiledModel, ent: _Entity, values: Mapping[str, Any],
                      errors: dict[str, str], record_id: int | None) -> None:
    for name, value in values.items():
        f = ent.fields.get(name)
        if f is None or name in errors or value is None:
            continue
        if f.type == "reference":
            target = compiled.metadata.tables[f.entity]
            if conn.execute(sa.select(target.c.id).where(target.c.id == value)).first() is None:
                target_label = compiled.model.entities[f.entity].label.lower()
                errors[name] = f"{f.label}: there is no {target_label} with id {value}"
        elif f.type == "user":
            if conn.execute(sa.select(users.c.id).where(users.c.id == value)).first() is None:
                errors[name] = f"{f.label}: there is no user with id {value}"
        if f.unique and name not in errors:
            expr = field_expression(ent.table, f)
            q = sa.select(ent.table.c.id, ent.table.c.title).where(expr == _comparable(f, value))
            if record_id is not None:
                q = q.where(ent.table.c.id != record_id)
            other = conn.execute(q.limit(1)).first()
            if other is not None:  # named by its title: the message is read by people, who do not know ids
                errors[name] = f"{f.label} {value!r} is already used by {ent.e.label.lower()} '{other.title}'"


def _normalized(ent: _Entity, values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if V.is_empty(value):
            continue
        f = ent.fields.get(name)
        out[name] = V.normalize(f.type, value) if f else value
    return out


def _check(conn: sa.Connection, compiled: CompiledModel, ent: _Entity, values: dict[str, Any], given: Iterable[str],
           today: dt.date, record_id: int | None, system: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the complete values of a record; return them without fields of groups that do not apply."""
    errors: dict[str, str] = {}
    active = _active_groups(ent, values, today, system)
    given = set(given)
    for name in list(values):
        g = ent.group_of.get(name)
        if g is not None and g.name not in active:
            if name in given:
                errors[name] = f"{_label(ent, name)} only applies to {g.label} {ent.e.plural.lower()} (when {g.when.source})"
            del values[name]  # stored only while the group's condition holds
    _schema_errors(ent, None, values, errors)
    for g in ent.e.groups:
        if g.name in active:
            _schema_errors(ent, g.name, values, errors)
    _extra_errors(ent, values, errors)
    _reference_errors(conn, compiled, ent, {k: v for k, v in values.items() if k in given}, errors, record_id)
    if errors:
        raise RecordInvalid(ent.e.name, errors)
    return values


def _split(ent: _Entity, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data JSON, column values) of validated values."""
    data, columns = {}, {}
    for name, value in values.items():
        f = ent.fields[name]
        if is_column(f):
            columns[name] = V.to_column(f, value)
        else:
            data[name] = value
    return data, columns


def _title(ent: _Entity, values: Mapping[str, Any], system: Mapping[str, Any]) -> str:
    if ent.e.title is None:
        return f"{ent.e.label} {system.get('id') or ''}".strip()
    record = {f: None for f in ent.fields}
    record.update(values)
    record.update(system)
    try:
        text = expressions.render(ent.e.title.source, {"record": record}).strip()
    except Exception:  # a template that fails on some values (a filter on an empty field) must not block saving
        text = ""
    return (text or f"{ent.e.label} {system.get('id') or ''}".strip())[:500]


def _integrity(ent: _Entity, exc: sa.exc.IntegrityError) -> RecordInvalid:
    """A unique index or foreign key that a concurrent writer tripped after our checks passed."""
    text = str(exc.orig)
    for f in ent.fields.values():
        if f.unique and (f"ix_{ent.e.name}_{f.name}" in text or f"{ent.e.name}.{f.name}" in text
                         or re.search(rf"\b{f.name}\b", text)):
            return RecordInvalid(ent.e.name, {f.name: f"{f.label} is already used by another {ent.e.label.lower()}"})
    return RecordInvalid(ent.e.name, {"": f"the database refused the change: {text.splitlines()[0]}"})


def _with_starts(conn: sa.Connection, compiled: CompiledModel, rec: Record, event: str, before: Mapping[str, Any] | None,
                 user: int | None, today: dt.date, now: dt.datetime) -> Record:
    """The record, with the processes its record triggers start enqueued in the caller's transaction."""
    key = record_key(rec.entity, rec.id, rec.row_version, event)
    starts = tuple(outbox.enqueue(conn, name, key, entity=rec.entity, record_id=rec.id, started_by=user, at=now)
                   for name in record_starts(compiled, rec.entity, event, rec.data, before, today))
    return replace(rec, starts=starts)


# -- changing records --------------------------------------------------------------------


def create_record(conn: sa.Connection, compiled: CompiledModel, entity: str, data: Mapping[str, Any], user: int | None, *,
                  today: dt.date | None = None, history: bool | str = False, at: dt.datetime | None = None) -> Record:
    """Validate and store a new record; its title comes from the entity's title template.

    The processes its record triggers start are enqueued in the same transaction (`Record.starts`).
    `history=True` (or a summary text) also writes a 'change' entry in the record's contact history.
    """
    ent = _entity(compiled, entity)
    today = today or dt.date.today()
    now = at or utcnow()
    values = _normalized(ent, data)
    given = set(values)
    for f in ent.e.fields:
        if f.name not in values and f.default is not None:
            values[f.name] = V.normalize(f.type, f.default)
    system = {"id": None, "created_at": now, "updated_at": now, "created_by": user, "updated_by": user, "title": ""}
    active = _active_groups(ent, values, today, system)
    for g in ent.e.groups:
        if g.name in active:
            for f in g.fields:
                if f.name not in values and f.default is not None:
                    values[f.name] = V.normalize(f.type, f.default)
    values = _check(conn, compiled, ent, values, given, today, None, system)
    stored, columns = _split(ent, values)
    title = _title(ent, values, system)
    row = dict(title=title, data=stored, record_fields={}, row_version=1, created_at=now, updated_at=now,
               created_by=user, updated_by=user, **columns)
    try:
        record_id = conn.execute(ent.insert, row).scalar_one()
    except sa.exc.IntegrityError as exc:
        raise _integrity(ent, exc) from exc
    final_title = _title(ent, values, {**system, "id": record_id})
    if final_title != title:  # the template uses the id, known only now
        conn.execute(ent.table.update().where(ent.table.c.id == record_id).values(title=final_title))
        title = final_title
    write_audit(conn, entity, record_id, "create", user, None, {"title": title, **values}, at=now)
    if history:
        summary = history if isinstance(history, str) else f"{ent.e.label} created: {title}"
        add_history(conn, entity, record_id, "change", summary, {"after": values}, user, at=now)
    rec = _to_record(ent, _row(conn, ent, record_id), changed=tuple(k for k in ent.fields if k in values))
    return _with_starts(conn, compiled, rec, "created", None, user, today, now)


def _show(value: Any) -> str:
    if value is None:
        return "(empty)"
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _change_summary(ent: _Entity, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    parts = [f"{_label(ent, k)}: {_show(before.get(k))} → {_show(after.get(k))}" for k in after]
    return ("Changed " + "; ".join(parts))[:500]


def update_record(conn: sa.Connection, compiled: CompiledModel, entity: str, record_id: int, changes: Mapping[str, Any],
                  user: int | None, *, expected_version: int | None = None, today: dt.date | None = None,
                  history: bool | str = False, at: dt.datetime | None = None) -> Record:
    """Change some fields of a record (None empties one); Conflict if it changed since `expected_version`.

    The processes its record triggers start are enqueued in the same transaction (`Record.starts`).
    """
    ent = _entity(compiled, entity)
    row = _row(conn, ent, record_id, lock=True)
    if expected_version is not None and row.row_version != expected_version:
        raise Conflict(entity, record_id, expected_version, row.row_version)
    current = _to_record(ent, row)
    unknown = {k: f"'{k}' is not a field of {ent.e.label.lower()}" for k in changes if k not in ent.fields}
    if unknown:
        raise RecordInvalid(entity, unknown)
    values = dict(current.data)
    for name, value in changes.items():
        if V.is_empty(value):
            values.pop(name, None)
        else:
            values[name] = V.normalize(ent.fields[name].type, value)
    given = {k for k, v in changes.items() if not V.is_empty(v) and current.data.get(k) != values.get(k)}
    now = at or utcnow()
    system = {"id": record_id, "created_at": current.created_at, "updated_at": now, "created_by": current.created_by,
              "updated_by": user, "title": current.title}
    today = today or dt.date.today()
    values = _check(conn, compiled, ent, values, given, today, record_id, system)
    changed = tuple(k for k in ent.fields if current.data.get(k) != values.get(k))
    if not changed:
        return current
    stored, columns = _split(ent, values)
    hidden = {k: v for k, v in (row.data or {}).items() if k not in ent.fields}  # values of removed fields are kept
    title = _title(ent, values, system)
    for f in ent.fields.values():
        if is_column(f) and f.name not in columns:
            columns[f.name] = None
    stmt = (ent.table.update()
            .where(ent.table.c.id == record_id, ent.table.c.row_version == row.row_version)
            .values(title=title, data={**hidden, **stored}, row_version=row.row_version + 1, updated_at=now, updated_by=user,
                    **columns))
    try:
        result = conn.execute(stmt)
    except sa.exc.IntegrityError as exc:
        raise _integrity(ent, exc) from exc
    if result.rowcount != 1:  # cannot happen while the row is locked; kept as the last line of defence
        actual = conn.execute(sa.select(ent.table.c.row_version).where(ent.table.c.id == record_id)).scalar()
        raise Conflict(entity, record_id, row.row_version, actual)
    before = {k: current.data.get(k) for k in changed}
    after = {k: values.get(k) for k in changed}
    if title != current.title:
        before["title"], after["title"] = current.title, title
    write_audit(conn, entity, record_id, "update", user, before, after, at=now)
    if history:
        summary = history if isinstance(history, str) else _change_summary(ent, before, {k: after[k] for k in changed})
        add_history(conn, entity, record_id, "change", summary, {"before": before, "after": after}, user, at=now)
    rec = _to_record(ent, _row(conn, ent, record_id), changed=changed)
    return _with_starts(conn, compiled, rec, "changed", current.data, user, today, now)


# -- single-record fields ----------------------------------------------------------------


def _record_field_def(name: str, ftype: str, label: str) -> Field:
    from engine.errors import NOWHERE

    return Field(name=name, type=ftype, loc=NOWHERE, label=label)


def _record_field_error(name: str, f: Field, value: Any) -> str | None:
    if V.is_empty(value):
        return None
    errors = list(V.field_validator(f).iter_errors(value))
    if errors:
        return f"{f.label} {V.message(f, errors[0])}"
    if (problem := V.storage_problem(f, value)):
        return f"{f.label} {problem}"
    if f.type == "datetime" and (problem := V.datetime_problem(value)):
        return f"{f.label} {problem}"
    return None


def _write_record_fields(conn: sa.Connection, ent: _Entity, row: Any, new: dict, user: int | None, action: str,
                         before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, now: dt.datetime) -> Record:
    result = conn.execute(ent.table.update()
                          .where(ent.table.c.id == row.id, ent.table.c.row_version == row.row_version)
                          .values(record_fields=new, row_version=row.row_version + 1, updated_at=now, updated_by=user))
    if result.rowcount != 1:
        actual = conn.execute(sa.select(ent.table.c.row_version).where(ent.table.c.id == row.id)).scalar()
        raise Conflict(ent.e.name, row.id, row.row_version, actual)
    write_audit(conn, ent.e.name, row.id, action, user, before, after, at=now)
    return _to_record(ent, _row(conn, ent, row.id))


def add_record_field(conn: sa.Connection, compiled: CompiledModel, entity: str, record_id: int, name: str, type: str,
                     label: str | None, value: Any, user: int | None, *, expected_version: int | None = None,
                     at: dt.datetime | None = None) -> Record:
    """Give one record a field of its own, within the entity's `record_fields` rules."""
    ent = _entity(compiled, entity)
    rules = ent.e.record_fields
    row = _row(conn, ent, record_id, lock=True)
    if expected_version is not None and row.row_version != expected_version:
        raise Conflict(entity, record_id, expected_version, row.row_version)
    existing = dict(row.record_fields or {})
    label = (label or "").strip() or name.replace("_", " ").capitalize()
    if (problem := V.text_problem(label)):
        raise RecordInvalid(entity, {name: f"the label {problem}"})
    plural = ent.e.plural.lower()
    if not rules.allowed:
        raise RecordInvalid(entity, {name: f"{plural} cannot have fields of their own"})
    if not RECORD_FIELD_NAME.match(name):
        raise RecordInvalid(entity, {name: "a field name starts with a letter and has only lower-case letters, digits and _"})
    if name in ent.fields or name in SYSTEM_COLUMNS or name in ("data", "record_fields", "row_version", "deleted_at"):
        raise RecordInvalid(entity, {name: f"'{name}' is already a field of every {ent.e.label.lower()}"})
    if name in existing:
        raise RecordInvalid(entity, {name: f"this {ent.e.label.lower()} already has a field '{name}'"})
    if type not in rules.types:
        raise RecordInvalid(entity, {name: f"a field of its own cannot be of type {type} (allowed: {', '.join(rules.types)})"})
    if len(existing) >= rules.max:
        raise RecordInvalid(entity, {name: f"a {ent.e.label.lower()} can have at most {rules.max} fields of its own"})
    f = _record_field_def(name, type, label)
    value = None if V.is_empty(value) else V.normalize(type, value)
    if (problem := _record_field_error(name, f, value)):
        raise RecordInvalid(entity, {name: problem})
    now = at or utcnow()
    entry = {"type": type, "label": label, "value": value, "added_by": user, "added_at": now.isoformat()}
    return _write_record_fields(conn, ent, row, {**existing, name: entry}, user, "add_field", None, {name: entry}, now)


def set_record_field(conn: sa.Connection, compiled: CompiledModel, entity: str, record_id: int, name: str, value: Any,
                     user: int | None, *, expected_version: int | None = None, at: dt.datetime | None = None) -> Record:
    """Change the value of one of a record's own fields."""
    ent = _entity(compiled, entity)
    row = _row(conn, ent, record_id, lock=True)
    if expected_version is not None and row.row_version != expected_version:
        raise Conflict(entity, record_id, expected_version, row.row_version)
    existing = dict(row.record_fields or {})
    if name not in existing:
        raise RecordInvalid(entity, {name: f"this {ent.e.label.lower()} has no field '{name}' of its own"})
    entry = dict(existing[name])
    value = None if V.is_empty(value) else V.normalize(entry["type"], value)
    if (problem := _record_field_error(name, _record_field_def(name, entry["type"], entry["label"]), value)):
        raise RecordInvalid(entity, {name: problem})
    if entry.get("value") == value:
        return _to_record(ent, row)
    now = at or utcnow()
    before = {name: entry.get("value")}
    entry["value"] = value
    return _write_record_fields(conn, ent, row, {**existing, name: entry}, user, "update", before, {name: value}, now)


def remove_record_field(conn: sa.Connection, compiled: CompiledModel, entity: str, record_id: int, name: str,
                        user: int | None, *, expected_version: int | None = None, at: dt.datetime | None = None) -> Record:
    """Remove one of a record's own fields (its last value stays in the audit log)."""
    ent = _entity(compiled, entity)
    row = _row(conn, ent, record_id, lock=True)
    if expected_version is not None and row.row_version != expected_version:
        raise Conflict(entity, record_id, expected_version, row.row_version)
    existing = dict(row.record_fields or {})
    if name not in existing:
        raise RecordInvalid(entity, {name: f"this {ent.e.label.lower()} has no field '{name}' of its own"})
    entry = existing.pop(name)
    return _write_record_fields(conn, ent, row, existing, user, "remove_field", {name: entry}, None, at or utcnow())


# -- deleting records --------------------------------------------------------------------


class DeletionRefused(TailorError):
    """The record cannot go, e.g. while other records, open tasks, running processes or accounts refer to it."""

    def __init__(self, entity: str, record_id: int, message: str, referrers: list[str] | None = None):
        self.entity, self.record_id, self.referrers = entity, record_id, referrers or []
        super().__init__(message)


def _still_referenced(entity: str, record_id: int, label: str, found: list[str]) -> DeletionRefused:
    return DeletionRefused(entity, record_id, f"{label} {record_id} cannot be deleted while these refer to it: {'; '.join(found)}", found)


def _reuses_ids(conn: sa.Connection, ent: _Entity) -> bool:
    """Whether SQLite would hand a deleted highest id to the next record (a table made without AUTOINCREMENT)."""
    if conn.dialect.name != "sqlite":
        return False
    sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n"), {"n": ent.e.name}).scalar() or ""
    return "AUTOINCREMENT" not in sql.upper()


def delete_record(conn: sa.Connection, compiled: CompiledModel, entity: str, record_id: int, user: int | None, *,
                  expected_version: int | None = None, at: dt.datetime | None = None) -> Record:
    """Remove a record once nothing refers to it; the audit log keeps its last values and its contact history stays.

    DeletionRefused names what refers to it; Conflict if it changed since `expected_version`.
    """
    from .referrers import referrers

    ent = _entity(compiled, entity)
    row = _row(conn, ent, record_id, lock=True)
    if expected_version is not None and row.row_version != expected_version:
        raise Conflict(entity, record_id, expected_version, row.row_version)
    label = ent.e.label
    if (found := referrers(conn, compiled, entity, record_id)):
        raise _still_referenced(entity, record_id, label, found)
    if _reuses_ids(conn, ent) and conn.execute(sa.select(sa.func.max(ent.table.c.id))).scalar() == record_id:
        # The next record would get this id and with it this record's history and audit trail.
        raise DeletionRefused(entity, record_id, f"{label} {record_id} cannot be deleted yet: it is the newest in a table "
                              f"created before deletion was supported, and SQLite would give its id to the next "
                              f"{label.lower()}; delete it once another {label.lower()} has been added")
    current = _to_record(ent, row)
    before: dict[str, Any] = {"title": current.title, **current.data}
    if current.record_fields:
        before["record_fields"] = dict(current.record_fields)
    hidden = {k: v for k, v in (row.data or {}).items() if k not in ent.fields}
    if hidden:
        before["removed_fields"] = hidden  # values of fields the definitions no longer have
    now = at or utcnow()
    try:
        with conn.begin_nested():  # a referrer added meanwhile trips the foreign key: name it instead of failing
            result = conn.execute(ent.table.delete().where(ent.table.c.id == record_id, ent.table.c.row_version == row.row_version))
    except sa.exc.IntegrityError:
        raise _still_referenced(entity, record_id, label, referrers(conn, compiled, entity, record_id)
                                or ["a record added at the same moment"]) from None
    if result.rowcount != 1:  # cannot happen while the row is locked; kept as the last line of defence
        actual = conn.execute(sa.select(ent.table.c.row_version).where(ent.table.c.id == record_id)).scalar()
        raise Conflict(entity, record_id, row.row_version, actual)
    write_audit(conn, entity, record_id, "delete", user, {**before, "row_version": current.row_version}, None, at=now)
    add_history(conn, entity, record_id, "change", f"{label} deleted: {current.title}", {"before": before}, user, at=now)
    return current


# -- search --------------------------------------------------------------------------------

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "startswith", "empty")


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _coerce(f: Field, value: Any) -> Any:
    """A filter value as the field's stored spelling."""
    if f.type == "boolean" and isinstance(value, str):
        text = value.strip().lower()
        if text in V.TRUE_TEXT | V.FALSE_TEXT:
            return text in V.TRUE_TEXT
    if f.type in ("integer", "reference", "user") and isinstance(value, str) and V.INTEGER_TEXT.match(value.strip()):
        return int(value)
    if f.type == "decimal" and isinstance(value, str) and V.NUMBER_TEXT.match(value.strip()):
        return float(value)
    return V.normalize(f.type, value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _iso(kind: type) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        try:
            return isinstance(value, kind) or isinstance(value, str) and kind.fromisoformat(value) is not None
        except ValueError:
            return False

    return check


# What a filter value of each kind must be once coerced to its stored spelling; a kind not named takes any value.
# Without it the database would be asked to compare a number column with text (an error on PostgreSQL).
FILTER_VALUES: dict[str, Callable[[Any], bool]] = {
    "integer": _whole, "reference": _whole, "user": _whole,
    "decimal": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "money": lambda v: isinstance(v, str) and re.match(fieldtypes.MONEY_PATTERN, v) is not None,
    "date": _iso(dt.date), "datetime": _iso(dt.datetime),
}
SPELT_AS_TEXT = ("integer", "reference", "user", "decimal", "money", "boolean", "date", "datetime")  # kinds not stored as text
SYSTEM_KINDS = {"id": "integer", "title": "string", "created_by": "integer", "updated_by": "integer", "created_at": "datetime",
                "updated_at": "datetime"}


def _shown(value: Any) -> str:
    text = repr(value)  # escapes what a message cannot carry (NUL, half surrogates)
    return text if len(text) <= 40 else text[:37] + "..."


def _unstorable(name: str, problem: str, value: Any) -> BadQuery:
    return BadQuery(f"a filter on '{name}' {problem} (found {_shown(value)})")


class _Target:
    """What one filter or sort key refers to: a field, a system column or a single-record field."""

    def __init__(self, ent: _Entity, name: str):
        table = ent.table
        self.name = name
        self.field: Field | None = None
        self.multi = False
        if name in SYSTEM_COLUMNS:
            self.expr = table.c[name]
            self.kind = SYSTEM_KINDS[name]
        elif name.startswith(RECORD_FIELD_PREFIX):
            key = name[len(RECORD_FIELD_PREFIX):]
            if not RECORD_FIELD_NAME.match(key):
                raise BadQuery(f"'{key}' is not a possible name of a field of its own")
            self.expr = table.c.record_fields[(key, "value")].as_string()
            self.own_key = key
            self.kind = "string"
        elif name in ent.fields:
            f = self.field = ent.fields[name]
            self.kind = f.type
            self.multi = f.type == "multichoice" and not is_column(f)
            self.expr = field_expression(table, f)
        else:
            known = ", ".join([*ent.fields, *SYSTEM_COLUMNS])
            raise BadQuery(f"cannot search {ent.e.plural.lower()} by '{name}': no such field (known: {known}, "
                           f"or {RECORD_FIELD_PREFIX}NAME for a record's own field)")

    def value(self, value: Any) -> Any:
        """`value` as its expression compares it: ValueError or TypeError when it is not a value of this kind,
        BadQuery when it is one the database cannot hold."""
        if self.field is not None:
            value = _coerce(self.field, value)
            if not FILTER_VALUES.get(self.kind, lambda v: True)(value):
                raise ValueError(value)
            if (problem := V.storage_problem(self.field, value)):
                raise _unstorable(self.name, problem, value)
            return _comparable(self.field, value)
        if self.kind == "integer":
            number = int(value) if isinstance(value, str) and V.INTEGER_TEXT.match(value.strip()) else value
            if not _whole(number):
                raise ValueError(value)
            if not -V.INT64 - 1 <= number <= V.INT64:
                raise _unstorable(self.name, f"must be between {-V.INT64 - 1} and {V.INT64}", value)
            return number
        if self.kind == "datetime":
            moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
            if not isinstance(moment, dt.datetime):
                raise TypeError(value)
            return moment.astimezone(dt.timezone.utc) if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)  # stored in UTC
        return value if isinstance(value, str) else str(value)  # titles and a record's own fields are compared as text


def _ilike(conn: sa.Connection, expr: sa.ColumnElement, pattern: str) -> sa.ColumnElement:
    """Case-insensitive LIKE. SQLite's own LIKE already ignores (ASCII) case, as its lower() does; spelt without
    lower() it reads the title index instead of the table, about three times faster."""
    if conn.dialect.name == "sqlite":
        return expr.like(pattern, escape="\\")
    return expr.ilike(pattern, escape="\\")


def _own_number(conn: sa.Connection, table: sa.Table, key: str) -> sa.ColumnElement:
    """A record's own field as a number where it holds one, else NULL (CASE: PostgreSQL would refuse to cast 'Bay 7')."""
    element = table.c.record_fields[(key, "value")]
    if conn.dialect.name == "postgresql":
        is_number = sa.func.jsonb_typeof(element) == "number"
    else:
        is_number = sa.func.json_type(table.c.record_fields, f'$."{key}"."value"').in_(("integer", "real"))
    return sa.case((is_number, element.as_float()))


def _membership(conn: sa.Connection, table: sa.Table, name: str, value: Any) -> sa.ColumnElement:
    """Whether a multichoice field's list holds `value`."""
    if conn.dialect.name == "postgresql":
        return table.c.data[name].op("@>")(sa.cast(sa.literal([value], sa.JSON), table.c.data.type))
    each = sa.func.json_each(table.c.data, f'$."{name}"').table_valued("value")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == value))


def _condition(conn: sa.Connection, ent: _Entity, target: _Target, op: str, value: Any) -> sa.ColumnElement:
    expr = target.expr
    if op == "empty":
        blank = expr.is_(None)
        return blank if value else sa.not_(blank)
    if target.multi:
        if op in ("eq", "contains"):
            return _membership(conn, ent.table, target.name, value)
        if op == "in":
            return sa.or_(*[_membership(conn, ent.table, target.name, v) for v in value])
        raise BadQuery(f"a list of choices ('{target.name}') can be searched with eq, contains, in or empty, not {op}")
    if op in ("contains", "startswith"):
        if not isinstance(value, str):
            raise BadQuery(f"'{op}' on '{target.name}' needs text, found {_shown(value)}")
        if target.kind in ("integer", "reference", "user") and not V.INTEGER_TEXT.match(value.strip()):
            raise ValueError(value)  # no digits of a whole number spell it
        if target.kind in SPELT_AS_TEXT:
            expr = sa.cast(expr, sa.String)  # PostgreSQL has no ILIKE on numbers, dates or times: match their text
        pattern = ("%" if op == "contains" else "") + _like(value) + "%"
        return _ilike(conn, expr, pattern)
    if op == "in":
        if not isinstance(value, (list, tuple, set)):
            raise BadQuery(f"'in' on '{target.name}' needs a list of values")
        return expr.in_([target.value(v) for v in value])
    compared = target.value(value)
    if target.field is not None and target.field.type == "money" and op in ("lt", "lte", "gt", "gte") and not is_column(target.field):
        expr, compared = sa.cast(expr, sa.Numeric(18, 2)), Decimal(str(compared))  # text order is not amount order
    elif target.name.startswith(RECORD_FIELD_PREFIX) and op in ("lt", "lte", "gt", "gte") and V.NUMBER_TEXT.match(str(value).strip()):
        expr, compared = _own_number(conn, ent.table, target.own_key), float(value)  # "99" < "100" as numbers, not as texts
    return {"eq": expr.__eq__, "ne": expr.__ne__, "lt": expr.__lt__, "lte": expr.__le__, "gt": expr.__gt__,
            "gte": expr.__ge__}[op](compared)


def _one_condition(conn: sa.Connection, ent: _Entity, name: str, spec: Any) -> sa.ColumnElement:
    targets = [_Target(ent, n) for n in (name if isinstance(name, tuple) else (name,))]
    multi = targets[0].multi
    ops = spec.items() if isinstance(spec, Mapping) else [("in" if isinstance(spec, (list, tuple)) and not multi else "eq", spec)]
    conditions = []
    for op, value in ops:
        if op not in OPERATORS:
            raise BadQuery(f"unknown operator '{op}' for '{name}' (known: {', '.join(OPERATORS)})")
        if value is None and op in ("eq", "ne"):
            op, value = "empty", op == "eq"
        for item in value if isinstance(value, (list, tuple, set)) else (value,):
            if isinstance(item, str) and (problem := V.text_problem(item)):
                raise _unstorable(targets[0].name, problem, item)
        either = []
        for target in targets:
            try:
                either.append(_condition(conn, ent, target, op, value))
            except (ValueError, TypeError, ArithmeticError):
                article = "an" if target.kind[0] in "aeiou" else "a"
                raise BadQuery(f"'{target.name}' is {article} {target.kind} field; {value!r} is not a value it can be "
                               f"compared with") from None
        conditions.append(sa.or_(*either))
    return sa.and_(*conditions)


def filter_condition(conn: sa.Connection, compiled: CompiledModel, entity: str,
                     filters: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None) -> sa.ColumnElement:
    """The WHERE clause `search_records` uses for `filters`, for queries of their own (reports count what the
    directory would list); BadQuery as search_records raises it."""
    ent = _entity(compiled, entity)
    pairs = filters.items() if isinstance(filters, Mapping) else (filters or [])
    return sa.and_(sa.true(), *(_one_condition(conn, ent, name, spec) for name, spec in pairs))


def _sort_expression(compiled: CompiledModel, target: _Target, as_shown: bool) -> sa.ColumnElement:
    """What a column sorts by; `as_shown`: what people see in it (a user's name, a record's title), choices in the
    order the definition lists them (a pipeline's stages read lead, qualified, ..., won; not alphabetically)."""
    expr, f = target.expr, target.field
    if f is None:
        return expr
    if f.type == "money" and not is_column(f):
        return sa.cast(expr, sa.Numeric(18, 2))  # amounts are stored as text, whose order is not the amounts' order
    if not as_shown:
        return expr
    if f.type == "user":
        return sa.select(users.c.name).where(users.c.id == expr).scalar_subquery()
    if f.type == "reference" and f.entity in compiled.metadata.tables:
        other = compiled.metadata.tables[f.entity]
        return sa.select(other.c.title).where(other.c.id == expr).scalar_subquery()
    if f.type == "choice" and f.choices:
        return sa.case({c.value: i for i, c in enumerate(f.choices)}, value=expr, else_=len(f.choices))
    return expr


def search_records(conn: sa.Connection, compiled: CompiledModel, entity: str,
                   filters: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None = None,
                   sort: Iterable[str] | str | None = None, page: int = 1, page_size: int = 50, *, as_shown: bool = False) -> Page:
    """Records matching every filter, sorted, one page at a time.

    filters: {field: value} for equality or {field: {op: value}} with op one of OPERATORS; a field is an
    entity field, a system column (id, title, created_at, ...) or `record_fields.NAME`. The same as
    (field, spec) pairs when one field has two conditions; a tuple of fields as the name matches any of them.
    sort: field names, '-name' for descending; id breaks ties so pages never overlap. Stored values sort as
    stored (ids, choice values); `as_shown` sorts them as pages show them (names, titles, choices in order).
    """
    ent = _entity(compiled, entity)
    where = filter_condition(conn, compiled, entity, filters)
    order = []
    for key in ([sort] if isinstance(sort, str) else list(sort or [])):
        desc = key.startswith("-")
        expr = _sort_expression(compiled, _Target(ent, key.lstrip("-")), as_shown)
        order.append((expr.desc() if desc else expr.asc()).nulls_last())
    order.append(ent.table.c.id.asc())
    page = max(1, int(page))
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    offset = (page - 1) * page_size
    # Counting stops at COUNT_LIMIT: an exact count of 50,000 matches costs more than the page itself.
    capped = sa.select(sa.literal(1)).select_from(ent.table).where(where).limit(COUNT_LIMIT + 1).subquery()
    total = conn.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one()
    # a page past what an OFFSET can say is past the last record, like any page after the last
    rows = [] if offset > V.INT64 else conn.execute(sa.select(ent.table).where(where).order_by(*order).limit(page_size).offset(offset))
    return Page(items=[_to_record(ent, r) for r in rows], total=total, page=page, page_size=page_size,
                more=total > COUNT_LIMIT)


def quick_search(conn: sa.Connection, compiled: CompiledModel, entity: str, text: str, limit: int = 10,
                 exact: Iterable[str] = ()) -> list[tuple[int, str]]:
    """(id, title) of records whose title contains `text` or whose indexed field in `exact` is exactly `text`, by title.

    Made for the global search over every entity: it reads only the title index and the indexes of the `exact`
    fields (one without an index is left out: looking in it would read every record; so is one that `text` is
    no value of), and counts nothing.
    """
    ent = _entity(compiled, entity)
    text = text.strip()
    if not text or V.text_problem(text):
        return []  # no title can hold a NUL character or half a surrogate pair
    table = ent.table
    by_title = (sa.select(table.c.id, table.c.title).where(_ilike(conn, table.c.title, "%" + _like(text) + "%"))
                .order_by(table.c.title, table.c.id).limit(limit))
    found = {row.id: row.title for row in conn.execute(by_title)}
    for name in exact:
        f = ent.fields.get(name)
        if f is None or f.type not in ("string", "email", "phone", "url") or not (f.indexed or f.unique):
            continue
        try:
            value = V.convert(text, f)
        except V.NotConvertible:
            continue  # no value of the field is spelt like that ("oka" is no email address): nothing to look up
        rows = conn.execute(sa.select(table.c.id, table.c.title).where(field_expression(table, f) == value).limit(limit))
        found.update({row.id: row.title for row in rows})
    return sorted(found.items(), key=lambda item: (item[1], item[0]))[:limit]
