"""Definition changes as a reviewable plan: diff the applied state with the compiled model, then apply.

`diff(state, compiled)` is pure; `plan(conn, compiled)` reads what was applied last
(the `definition_state` table) and checks the plan against the records (a type change
whose values do not convert is refused, naming the records); `apply` carries it out in
the caller's transaction and stores the new state. Nothing is dropped: a removed field
keeps its values, hidden, and a removed entity keeps its table.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Union

import sqlalchemy as sa
from sqlalchemy.schema import AddConstraint, CreateColumn, DropIndex as DropIndexDDL

from engine.compiler import CompiledModel, canonical_json, is_column
from engine.errors import MigrationError
from engine.model import Entity, Field

from . import values as V
from .history import utcnow
from .schema import definition_state

MAX_IDS_SHOWN = 20
BATCH = 1000


class MigrationRefused(MigrationError):
    """The plan cannot be applied; `reasons` says why, one line each."""

    def __init__(self, reasons: Iterable[str]):
        self.reasons = list(reasons)
        n = len(self.reasons)
        super().__init__(f"{n} change{'s' if n != 1 else ''} cannot be applied:\n" + "\n".join(f"  - {r}" for r in self.reasons))


# -- the stored state ------------------------------------------------------------------


def field_state(f: Field) -> dict[str, Any]:
    """What the database must know about a field to migrate it later."""
    column = is_column(f)
    if column:
        index = "unique" if f.unique and f.scope == "all" else "index" if f.indexed or f.type == "reference" else None
    else:
        index = "unique" if f.unique else "index" if f.indexed else None
    out: dict[str, Any] = {"type": f.type, "column": column, "index": index, "scope": f.scope}
    if f.entity:
        out["entity"] = f.entity
    if f.choices:
        out["choices"] = [c.value for c in f.choices]
    return out


@dataclass(frozen=True)
class EntityState:
    entity: str
    schema: Mapping[str, Any]
    fields: Mapping[str, Mapping[str, Any]]  # removed ones carry "removed": true
    removed: bool = False
    adopted: bool = False  # read from an existing table that had no recorded state

    def active(self) -> dict[str, Mapping[str, Any]]:
        return {n: s for n, s in self.fields.items() if not s.get("removed")}


def entity_state(compiled: CompiledModel, name: str, previous: EntityState | None = None,
                 renamed: Mapping[str, str] | None = None) -> EntityState:
    """The state to store after applying: today's fields plus the hidden ones kept from before."""
    e = compiled.model.entities[name]
    fields = {f.name: field_state(f) for f in e.all_fields()}
    if previous is not None:
        moved = set((renamed or {}).values())
        for n, s in previous.fields.items():
            if n not in fields and n not in moved:
                fields[n] = {**s, "removed": True}
    return EntityState(name, compiled.entity_schemas[name], dict(sorted(fields.items())))


def read_state(conn: sa.Connection) -> dict[str, EntityState]:
    """What `apply` stored last ({} for a database that never had one)."""
    if not sa.inspect(conn).has_table(definition_state.name):
        return {}
    out = {}
    for row in conn.execute(sa.select(definition_state)):
        out[row.entity] = EntityState(row.entity, row.schema, row.fields, bool(row.schema.get("x-tailor-removed")))
    return out


def write_state(conn: sa.Connection, states: Iterable[EntityState]) -> None:
    now = utcnow()
    for s in states:
        schema = {**s.schema, "x-tailor-removed": True} if s.removed else dict(s.schema)
        conn.execute(definition_state.delete().where(definition_state.c.entity == s.entity))
        conn.execute(definition_state.insert().values(entity=s.entity, schema=schema, fields=dict(s.fields), applied_at=now))


# -- operations --------------------------------------------------------------------------


def _q(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _present(conn: sa.Connection, table: str, name: str) -> str:
    """SQL: the record has a value under `name` in data."""
    if conn.dialect.name == "postgresql":
        return f"jsonb_exists({_q(conn, table)}.data, '{name}')"
    return f"json_type({_q(conn, table)}.data, '$.\"{name}\"') IS NOT NULL"


def _ids(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:MAX_IDS_SHOWN]))
    return shown + (f" and {len(ids) - MAX_IDS_SHOWN} more" if len(ids) > MAX_IDS_SHOWN else "")


@dataclass(frozen=True)
class CreateTable:
    entity: str
    fields: int
    indexes: tuple[str, ...]

    def describe(self) -> str:
        ix = f", indexes on {', '.join(self.indexes)}" if self.indexes else ""
        return f"create table {self.entity} ({self.fields} fields{ix})"

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        compiled.metadata.tables[self.entity].create(conn)


@dataclass(frozen=True)
class AdoptTable:
    """A table that exists without a recorded state (made before migrations were tracked)."""

    entity: str

    def describe(self) -> str:
        return f"take the existing table {self.entity} as it is (no state was recorded for it)"

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        pass


@dataclass(frozen=True)
class AddField:
    entity: str
    field: str
    type: str
    column: bool = False
    restores: bool = False  # the field existed before and its hidden values come back

    def describe(self) -> str:
        where = "a new nullable column" if self.column else "inside data, no table rewrite"
        back = "; brings back the values kept when it was removed" if self.restores else ""
        return f"add field {self.entity}.{self.field} ({self.type}): {where}{back}"

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        if not self.column or self.restores:
            return
        table = compiled.metadata.tables[self.entity]
        column = table.c[self.field]
        spec = str(CreateColumn(column).compile(dialect=conn.dialect))
        for fk in column.foreign_keys:
            if fk.use_alter and conn.dialect.supports_alter:
                continue  # part of a reference cycle: AddForeignKey adds it once every table exists
            spec += f" REFERENCES {_q(conn, fk.column.table.name)} ({_q(conn, fk.column.name)}) ON DELETE {fk.ondelete or 'NO ACTION'}"
        conn.exec_driver_sql(f"ALTER TABLE {_q(conn, self.entity)} ADD COLUMN {spec}")


@dataclass(frozen=True)
class RemoveField:
    entity: str
    field: str
    column: bool = False

    def describe(self) -> str:
        where = "its column stays" if self.column else "its values stay in data"
        return f"remove field {self.entity}.{self.field}: hidden, nothing deleted ({where}; adding the field back restores them)"

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        pass


@dataclass(frozen=True)
class RenameField:
    entity: str
    old: str
    new: str
    column: bool = False

    def describe(self) -> str:
        how = "rename the column" if self.column else "move each record's value to the new key (one UPDATE)"
        return f"rename field {self.entity}.{self.old} to {self.new} (declared with renamed_from): {how}"

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        t = _q(conn, self.entity)
        if self.column:
            conn.exec_driver_sql(f"ALTER TABLE {t} RENAME COLUMN {_q(conn, self.old)} TO {_q(conn, self.new)}")
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"UPDATE {t} SET data = (data - '{self.old}') || jsonb_build_object('{self.new}', data -> '{self.old}') "
                                 f"WHERE {_present(conn, self.entity, self.old)}")
        else:
            conn.exec_driver_sql(f"UPDATE {t} SET data = json_set(json_remove(data, '$.\"{self.old}\"'), '$.\"{self.new}\"', "
                                 f"data -> '$.\"{self.old}\"') WHERE {_present(conn, self.entity, self.old)}")


@dataclass(frozen=True)
class ChangeType:
    """Convert every stored value of a field to a new type (or to a shorter list of choices)."""

    entity: str
    field: str
    old: str
    new: str
    dropped_choices: tuple = ()

    def describe(self) -> str:
        if self.old == self.new:
            gone = ", ".join(map(str, self.dropped_choices))
            return f"restrict the choices of {self.entity}.{self.field} (no longer: {gone}); refused if a record still has one"
        return f"change the type of {self.entity}.{self.field} from {self.old} to {self.new}: convert each value; refused if any does not convert"

    def conversions(self, conn: sa.Connection, compiled: CompiledModel) -> tuple[list[tuple[int, Any]], dict[int, str]]:
        """(record id, new value) for values that change, and the ids whose values do not convert, with why."""
        target = compiled.model.entities[self.entity]
        f = next(x for x in target.all_fields() if x.name == self.field)
        t = _q(conn, self.entity)
        rows = conn.exec_driver_sql(f"SELECT id, data FROM {t} WHERE {_present(conn, self.entity, self.field)} ORDER BY id")
        changes, failures = [], {}
        for record_id, data in rows:
            if isinstance(data, str):
                data = json.loads(data)
            old = data.get(self.field)
            if old is None:
                continue
            try:
                new = V.convert(old, f)
            except V.NotConvertible as exc:
                failures[record_id] = f"{old!r}: {exc}"
                continue
            if new != old or type(new) is not type(old):
                changes.append((record_id, new))
        return changes, failures

    def refusal(self, failures: Mapping[int, str]) -> str:
        ids = sorted(failures)
        first = failures[ids[0]]
        verb = "have" if len(ids) != 1 else "has"
        what = f"{verb} a value that is no longer a choice" if self.old == self.new else f"{verb} values that do not convert to {self.new}"
        return (f"{self.entity}.{self.field}: {len(ids)} record{'s' if len(ids) != 1 else ''} {what}: ids {_ids(ids)} "
                f"(e.g. id {ids[0]}: {first}); change those records first or keep the old definition")

    def check(self, conn: sa.Connection, compiled: CompiledModel) -> str | None:
        _, failures = self.conversions(conn, compiled)
        return self.refusal(failures) if failures else None

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        changes, failures = self.conversions(conn, compiled)
        if failures:
            raise MigrationRefused([self.refusal(failures)])
        if not changes:
            return
        t = _q(conn, self.entity)
        if conn.dialect.name == "postgresql":
            sql = sa.text(f"UPDATE {t} SET data = jsonb_set(data, ARRAY[:key], CAST(:value AS jsonb)) WHERE id = :id")
        else:
            sql = sa.text(f"UPDATE {t} SET data = json_set(data, :path, json(:value)) WHERE id = :id")
        params = [{"id": i, "value": json.dumps(v), "key": self.field, "path": f'$."{self.field}"'} for i, v in changes]
        for start in range(0, len(params), BATCH):
            conn.execute(sql, params[start:start + BATCH])


@dataclass(frozen=True)
class AddIndex:
    entity: str
    field: str
    unique: bool = False

    @property
    def name(self) -> str:
        return f"ix_{self.entity}_{self.field}"

    def describe(self) -> str:
        return f"add {'unique ' if self.unique else ''}index {self.name} on {self.entity}.{self.field}"

    def check(self, conn: sa.Connection, compiled: CompiledModel) -> str | None:
        if not self.unique:
            return None
        from .records import field_expression

        table = compiled.metadata.tables[self.entity]
        f = next(x for x in compiled.model.entities[self.entity].all_fields() if x.name == self.field)
        expr = field_expression(table, f).label("v")
        dupes = (sa.select(expr, sa.func.count().label("n")).where(expr.isnot(None)).group_by(expr)
                 .having(sa.func.count() > 1).subquery())
        ids = [r.id for r in conn.execute(sa.select(table.c.id).where(field_expression(table, f).in_(sa.select(dupes.c.v)))
                                          .order_by(table.c.id))]
        if ids:
            return (f"{self.entity}.{self.field} cannot become unique: {len(ids)} records share values: ids {_ids(ids)}; "
                    f"make their values different first")
        return None

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        table = compiled.metadata.tables[self.entity]
        index = next((i for i in table.indexes if i.name == self.name), None)
        if index is None:  # a unique column made later: a unique index, since SQLite cannot add constraints
            index = sa.Index(self.name, table.c[self.field], unique=True)
        index.create(conn)


@dataclass(frozen=True)
class DropIndex:
    entity: str
    field: str

    @property
    def name(self) -> str:
        return f"ix_{self.entity}_{self.field}"

    def describe(self) -> str:
        return f"drop index {self.name} (the values stay)"

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        conn.execute(DropIndexDDL(sa.Index(self.name), if_exists=True))


@dataclass(frozen=True)
class RemoveEntity:
    entity: str

    def describe(self) -> str:
        return f"entity {self.entity} is no longer defined: its table and records are kept, hidden"

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        pass


@dataclass(frozen=True)
class AddForeignKey:
    """The foreign key of a reference in a cycle between entities (engine.compiler.cyclic_references), added after the
    tables: CREATE TABLE cannot name a table that does not exist yet."""

    entity: str
    field: str
    target: str

    def describe(self) -> str:
        return f"add the foreign key {self.entity}.{self.field} -> {self.target} (a cycle of references: once both tables exist)"

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        if not conn.dialect.supports_alter:
            return  # SQLite cannot add a constraint, and needs not: CREATE TABLE / ADD COLUMN gave the key inline
        column = compiled.metadata.tables[self.entity].c[self.field]
        for fk in column.foreign_keys:
            conn.execute(AddConstraint(fk.constraint, isolate_from_table=False))  # the table keeps it for SQLite's DDL


Op = Union[CreateTable, AdoptTable, AddField, RemoveField, RenameField, ChangeType, AddIndex, DropIndex, RemoveEntity, AddForeignKey]


def _deferred_keys(compiled: CompiledModel, ops: list[Op]) -> list[Op]:
    """AddForeignKey for each reference of a cycle that the ops give a column: in a new table or as a new field."""
    new = {(op.entity, c.name) for op in ops if isinstance(op, CreateTable) for c in compiled.metadata.tables[op.entity].c}
    new |= {(op.entity, op.field) for op in ops if isinstance(op, AddField) and op.column and not op.restores}
    return [AddForeignKey(fk.parent.table.name, fk.parent.name, fk.column.table.name)
            for fk in sorted((fk for t in compiled.metadata.tables.values() for fk in t.foreign_keys if fk.use_alter),
                             key=lambda fk: (fk.parent.table.name, fk.parent.name))
            if (fk.parent.table.name, fk.parent.name) in new]


# -- the diff ------------------------------------------------------------------------------


@dataclass
class _Diff:
    ops: list[Op] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _field_ops(e: Entity, state: EntityState, out: _Diff) -> None:
    stored = state.active()
    hidden = {n: s for n, s in state.fields.items() if s.get("removed")}
    current = {f.name: f for f in e.all_fields()}
    renames = {f.name: f.renamed_from for f in e.all_fields()
               if f.renamed_from and f.name not in stored and f.renamed_from in stored}
    drops: list[Op] = []
    changes: list[Op] = []
    adds: list[Op] = []
    for new_name, old_name in renames.items():
        old = stored[old_name]
        if old["index"]:
            drops.append(DropIndex(e.name, old_name))
        changes.append(RenameField(e.name, old_name, new_name, column=old["column"]))
    for name, f in current.items():
        new = field_state(f)
        if name in renames:
            old = stored[renames[name]]
        elif name in stored:
            old = stored[name]
        else:
            old = hidden.get(name)
            adds.append(AddField(e.name, name, f.type, column=new["column"], restores=old is not None))
            if old is None:
                if new["index"]:
                    adds.append(AddIndex(e.name, name, unique=new["index"] == "unique"))
                continue
        where = f"{e.name}.{name}"
        if old["column"] != new["column"]:
            out.refused.append(f"{where}: moving a field between its own column and data is not supported; "
                               f"add a new field and copy the values instead")
            continue
        type_changed = old["type"] != new["type"] or old.get("entity") != new.get("entity")
        if type_changed and new["column"]:
            out.refused.append(f"{where}: changing the type of a field stored in its own column "
                               f"({old['type']} to {new['type']}) is not supported")
            continue
        if new["column"] and old["index"] != new["index"] and "unique" in (old["index"], new["index"]):
            out.refused.append(f"{where}: making a column-stored field unique or not unique is not supported")
            continue
        dropped = tuple(c for c in old.get("choices", ()) if c not in new.get("choices", ()))
        if type_changed:
            changes.append(ChangeType(e.name, name, old["type"], new["type"]))
        elif dropped and new["type"] in ("choice", "multichoice"):
            changes.append(ChangeType(e.name, name, old["type"], new["type"], dropped_choices=dropped))
        index_changed = (old["index"] != new["index"] or (type_changed and not new["column"]) or name in renames
                         or bool(old.get("removed")))  # a removed field's index was dropped with it
        if index_changed and old["index"] and name not in renames and not old.get("removed"):
            drops.append(DropIndex(e.name, name))
        if index_changed and new["index"]:
            adds.append(AddIndex(e.name, name, unique=new["index"] == "unique"))
    for name, old in stored.items():
        if name not in current and name not in renames.values():
            if old["index"]:
                drops.append(DropIndex(e.name, name))
            changes.append(RemoveField(e.name, name, column=old["column"]))
    out.ops.extend(drops + changes + adds)


def diff(states: Mapping[str, EntityState], compiled: CompiledModel) -> list[Op]:
    """The operations that bring the stored state to the compiled model. Pure; MigrationRefused for impossible changes."""
    out = _Diff()
    for table in compiled.metadata.sorted_tables:  # referenced tables first
        e = compiled.model.entities[table.name]
        state = states.get(e.name)
        if state is None:
            indexes = tuple(sorted(f.name for f in e.all_fields() if field_state(f)["index"]))
            out.ops.append(CreateTable(e.name, len(e.all_fields()), indexes))
            continue
        if state.adopted:
            out.ops.append(AdoptTable(e.name))
        _field_ops(e, state, out)
    for name, state in sorted(states.items()):
        if name not in compiled.model.entities and not state.removed:
            out.ops.append(RemoveEntity(name))
    if out.refused:
        raise MigrationRefused(out.refused)
    return out.ops + _deferred_keys(compiled, out.ops)


def index_names(conn: sa.Connection, table: str) -> set[str]:
    """Index names of a table, expression indexes included (SQLAlchemy does not reflect those on SQLite)."""
    if conn.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t"
    return set(conn.execute(sa.text(sql), {"t": table}).scalars())


def inspected_state(conn: sa.Connection, compiled: CompiledModel, name: str) -> EntityState:
    """The state of a table made without a plan (e.g. by create_all): its columns and indexes as they are.

    Fields inside data need nothing from the table, so they count as present; a column or an index
    that is missing shows up in the plan as an AddField or AddIndex to review.
    """
    columns = {c["name"] for c in sa.inspect(conn).get_columns(name)}
    indexes = index_names(conn, name)
    with warnings.catch_warnings():  # SQLite: "skipped reflection of expression-based index": those we read above
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        unique_columns = {c for uc in sa.inspect(conn).get_unique_constraints(name) for c in uc["column_names"]}
    fields = {}
    for f in compiled.model.entities[name].all_fields():
        s = field_state(f)
        if s["column"] and f.name not in columns:
            continue
        if s["index"] == "unique" and s["column"]:
            s["index"] = "unique" if f.name in unique_columns or f"ix_{name}_{f.name}" in indexes else None
        elif s["index"] and f"ix_{name}_{f.name}" not in indexes:
            s["index"] = None
        fields[f.name] = s
    return EntityState(name, compiled.entity_schemas[name], fields, adopted=True)


def plan(conn: sa.Connection, compiled: CompiledModel) -> list[Op]:
    """Diff the database's applied state with the compiled model and check the result against the records."""
    states = read_state(conn)
    tables = set(sa.inspect(conn).get_table_names())
    for name in compiled.model.entities:
        if name not in states and name in tables:
            states[name] = inspected_state(conn, compiled, name)
    ops = diff(states, compiled) + _missing_title_indexes(conn, compiled, tables)
    refused = [r for op in ops if hasattr(op, "check") and (r := op.check(conn, compiled))]
    if refused:
        raise MigrationRefused(refused)
    return ops


def _missing_title_indexes(conn: sa.Connection, compiled: CompiledModel, tables: set[str]) -> list[Op]:
    """The title and created_at indexes of every existing entity table that lacks them (tables made before they were
    indexed: the search box reads the first, the reports' periods the second)."""
    return [AddIndex(name, column) for name in compiled.model.entities if name in tables
            for column in ("title", "created_at") if f"ix_{name}_{column}" not in index_names(conn, name)]


def apply(conn: sa.Connection, compiled: CompiledModel, ops: Iterable[Op]) -> None:
    """Carry out a plan in the caller's transaction, then store the new state of every entity."""
    ops = list(ops)
    previous = read_state(conn)
    for op in ops:
        op.apply(conn, compiled)
    renamed: dict[str, dict[str, str]] = {}
    for op in ops:
        if isinstance(op, RenameField):
            renamed.setdefault(op.entity, {})[op.new] = op.old
    states = [entity_state(compiled, name, previous.get(name), renamed.get(name)) for name in sorted(compiled.model.entities)]
    states += [EntityState(name, s.schema, s.fields, removed=True) for name, s in previous.items()
               if name not in compiled.model.entities]
    changed = [s for s in states if _differs(previous.get(s.entity), s)]
    write_state(conn, changed)


def _differs(old: EntityState | None, new: EntityState) -> bool:
    """Whether a state differs from the stored one (so unchanged rows are not rewritten)."""
    if old is None:
        return True
    return (old.removed, canonical_json(old.schema), canonical_json(old.fields)) != \
        (new.removed, canonical_json(new.schema), canonical_json(new.fields))


def describe(ops: Iterable[Op]) -> Iterator[str]:
    for i, op in enumerate(ops, 1):
        yield f"{i}. {op.describe()}"
