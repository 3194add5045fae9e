"""Definition changes as a reviewable plan: diff the applied state with the compiled model, then apply.

`diff(state, compiled)` is pure; `plan(conn, compiled)` reads what was applied last
(the `definition_state` table) and checks the plan against the records (a type change
whose values do not convert is refused, naming the records); `apply` carries it out in
the caller's transaction and stores the new state. Nothing is dropped: a removed field
keeps its values, hidden, and a removed entity keeps its table.
"""
from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Union

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import AddConstraint, CreateColumn, CreateIndex
from sqlalchemy.schema import DropIndex as DropIndexDDL
from sqlalchemy.sql import visitors

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


ESTIMATE_FROM = 1000  # records: below this an index builds in a blink and the plan says nothing about its time
SAMPLE = 20_000  # records read to measure the per-record cost of an index's expression
# Building an index costs a multiple of reading its expression: SQLite reads once, then sorts and writes (about 2x);
# PostgreSQL's concurrent build reads the table twice, building then validating (about 4x). bench/index_bench.py prints
# the estimate next to the build time.
BUILD_PER_READ = {"sqlite": 2.0, "postgresql": 4.0}
SQLITE_BUILD_CACHE_KIB = 65536  # the page cache (and so SQLite's sorter memory) while an index builds; restored after


def duration_words(x: float) -> str:
    """"under a second", "about 12 s", "about 3 min"."""
    return "under a second" if x < 1 else f"about {x:.0f} s" if x < 90 else f"about {x / 60:.0f} min"


@dataclass(frozen=True)
class AddIndex:
    entity: str
    field: str
    unique: bool = False
    redo: str = ""  # "missing" or "invalid": the stored state has the index, the database lacks a usable one
    rows: int | None = None  # records in the table when planned (plan() fills it in for existing tables)
    seconds: float | None = None  # the estimated build time
    dialect: str = ""

    @property
    def name(self) -> str:
        return f"ix_{self.entity}_{self.field}"

    @property
    def concurrent(self) -> bool:
        return self.dialect == "postgresql"

    def describe(self) -> str:
        what = f"{'unique ' if self.unique else ''}index {self.name} on {self.entity}.{self.field}"
        if self.redo == "invalid":
            text = f"index {self.name} is invalid (an earlier build did not finish): will rebuild {what}"
        elif self.redo == "missing":
            text = f"index {self.name} is missing (an earlier build did not finish): will build {what}"
        else:
            text = f"add {what}"
        if self.rows is None or self.rows < ESTIMATE_FROM or self.seconds is None:
            return text
        size = f"{self.rows:,} records, {duration_words(self.seconds)} to build"
        if self.concurrent:
            return (f"{text}: {size}, concurrently after the other changes commit (record writes go on; "
                    f"queries on {self.field} work without it, only slower, until it is built)")
        return f"{text}: {size}, during which record writes wait (SQLite has one writer)"

    def estimated(self, conn: sa.Connection, compiled: CompiledModel) -> AddIndex:
        """This build with the table's record count and a time estimate: a sample's reading time, scaled."""
        table = compiled.metadata.tables[self.entity]
        rows = _row_count(conn, self.entity)
        existing = {c["name"] for c in sa.inspect(conn).get_columns(self.entity)}
        index = self.index(compiled)
        # a column this plan adds is empty: its values cost nothing to read
        needed = {c.name for e in index.expressions for c in _columns(e) if c.name in existing}
        sub = sa.select(*[table.c[n] for n in sorted(needed | {"id"})]).limit(SAMPLE).subquery()
        exprs = [_rebind(e, table, sub) for e in index.expressions if all(c.name in existing for c in _columns(e))]
        query = sa.select(sa.func.count(), *[sa.func.max(e) for e in exprs]).select_from(sub)
        per_row = 0.0
        if rows:
            times = []
            for _ in range(3):  # the quickest of three: a sample this short is easily stretched by other work
                t0 = time.perf_counter()
                n = conn.execute(query).scalar() or 0
                times.append(time.perf_counter() - t0)
            per_row = min(times) / n if n else 0.0
        return replace(self, rows=rows, seconds=rows * per_row * BUILD_PER_READ.get(conn.dialect.name, 2.0), dialect=conn.dialect.name)

    def index(self, compiled: CompiledModel) -> sa.Index:
        table = compiled.metadata.tables[self.entity]
        index = next((i for i in table.indexes if i.name == self.name), None)
        if index is None:  # a unique column made later: a unique index, since SQLite cannot add constraints
            index = sa.Index(self.name, table.c[self.field], unique=True)
            table.indexes.discard(index)  # made for this build: the compiled metadata stays as compiled
        return index

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

    def build(self, compiled: CompiledModel) -> IndexBuild:
        """The concurrent build of this index (PostgreSQL), to run after the plan's transaction commits."""
        ddl = str(CreateIndex(self.index(compiled), if_not_exists=True)
                  .compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        sql = re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX CONCURRENTLY ", ddl.strip())
        return IndexBuild(self.entity, self.field, self.name, sql, self.redo == "invalid", self.rows, self.seconds)

    def apply(self, conn: sa.Connection, compiled: CompiledModel) -> None:
        if self.redo == "invalid":
            conn.execute(DropIndexDDL(sa.Index(self.name), if_exists=True))
        if conn.dialect.name != "sqlite":
            self.index(compiled).create(conn)
            return
        # SQLite sorts the index's entries in its page cache before writing them: a bigger cache sorts in fewer passes
        # (helper threads, PRAGMA threads, measured no better on 2 cores: not used)
        (cache,) = conn.exec_driver_sql("PRAGMA cache_size").one()
        conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_BUILD_CACHE_KIB}")
        try:
            self.index(compiled).create(conn)
        finally:
            conn.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")


@dataclass(frozen=True)
class IndexBuild:
    """An index built with CREATE INDEX CONCURRENTLY outside the plan's transaction: writers are not blocked."""

    entity: str
    field: str
    name: str
    sql: str
    drop_first: bool = False  # an invalid index of this name is there from a build that did not finish
    rows: int | None = None
    seconds: float | None = None

    def describe(self) -> str:
        size = f" ({self.rows:,} records)" if self.rows else ""
        return f"build index {self.name} on {self.entity}.{self.field}{size}"


class IndexBuildFailed(MigrationError):
    """Concurrent index builds that failed; their invalid leftovers are dropped and the next migrate retries them."""

    def __init__(self, failures: Iterable[str]):
        self.failures = list(failures)
        n = len(self.failures)
        super().__init__(
            f"{n} index build{'s' if n != 1 else ''} failed (the other changes are applied; queries on "
            f"{'these fields' if n != 1 else 'this field'} still work, only slower, until the index exists; "
            f"`tailor migrate` or activating the release again retries):\n" + "\n".join(f"  - {f}" for f in self.failures))


def _rebind(expr: sa.ColumnElement, table: sa.Table, sub: sa.Subquery) -> sa.ColumnElement:
    """An index expression over a subquery of its table (to time it on a sample)."""
    return visitors.replacement_traverse(expr, {}, lambda el: sub.c[el.name] if isinstance(el, sa.Column) and el.table is table else None)


def _columns(expr: sa.ColumnElement) -> list[sa.Column]:
    return [el for el in visitors.iterate(expr) if isinstance(el, sa.Column)]


def _row_count(conn: sa.Connection, table: str) -> int:
    if conn.dialect.name == "postgresql":  # the planner's estimate (kept by autovacuum): counting would read the table
        n = conn.execute(sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": _q(conn, table)}).scalar()
        if n is not None and n >= 0:
            return int(n)
    return conn.execute(sa.text(f"SELECT count(*) FROM {_q(conn, table)}")).scalar_one()


def invalid_indexes(conn: sa.Connection, table: str) -> set[str]:
    """Indexes of a table left invalid by a concurrent build that failed or was stopped (PostgreSQL; none on SQLite)."""
    if conn.dialect.name != "postgresql":
        return set()
    sql = ("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
           "WHERE i.indrelid = to_regclass(:t) AND NOT i.indisvalid")
    return set(conn.execute(sa.text(sql), {"t": _q(conn, table)}).scalars())


def build_progress(conn: sa.Connection, build: IndexBuild) -> tuple[str, float | None] | None:
    """The phase of a concurrent build running in another session and how far it is in it (0..1), or None."""
    row = conn.execute(sa.text(
        "SELECT phase, blocks_total, blocks_done, tuples_total, tuples_done FROM pg_stat_progress_create_index "
        "WHERE relid = to_regclass(:t)"), {"t": _q(conn, build.entity)}).first()
    if row is None:
        return None
    phase, blocks_total, blocks_done, tuples_total, tuples_done = row
    if blocks_total:
        return phase, blocks_done / blocks_total
    if tuples_total:
        return phase, tuples_done / tuples_total
    return phase, None


Watch = Callable[[Any], AbstractContextManager]  # around each op (and each later index build): e.g. a progress display


def build_indexes(engine: sa.Engine, builds: Iterable[IndexBuild], watch: Watch | None = None) -> None:
    """Run the concurrent builds `apply` left for after the commit, each in its own autocommit statement.

    A build that fails leaves an invalid index: it is dropped (so it costs writers nothing) and the failures are raised
    together as IndexBuildFailed once every build has been tried. A build stopped half-way (the process killed) leaves
    it too: the next plan finds it and rebuilds it.
    """
    failures = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for b in builds:
            with watch(b) if watch else nullcontext():
                try:
                    if b.drop_first:
                        conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {_q(conn, b.name)}")
                    conn.exec_driver_sql(b.sql)
                except sa.exc.DBAPIError as exc:
                    why = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                    left = b.name in invalid_indexes(conn, b.entity)
                    if left:
                        conn.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {_q(conn, b.name)}")
                    failures.append(f"index {b.name} on {b.entity}.{b.field}: {why}" + ("; its invalid leftover is dropped" if left else ""))
    if failures:
        raise IndexBuildFailed(failures)


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
    """Diff the database's applied state with the compiled model and check the result against the records.

    Indexes the state has but the database lacks (or has invalid: a concurrent build that failed or was stopped) are
    built again; each index build on an existing table carries its record count and estimated time.
    """
    states = read_state(conn)
    tables = set(sa.inspect(conn).get_table_names())
    for name in compiled.model.entities:
        if name not in states and name in tables:
            states[name] = inspected_state(conn, compiled, name)
    ops = _index_repairs(conn, compiled, tables, diff(states, compiled))
    ops = [op.estimated(conn, compiled) if isinstance(op, AddIndex) and op.entity in tables else op for op in ops]
    refused = [r for op in ops if hasattr(op, "check") and (r := op.check(conn, compiled))]
    if refused:
        raise MigrationRefused(refused)
    return ops


def _index_repairs(conn: sa.Connection, compiled: CompiledModel, tables: set[str], ops: list[Op]) -> list[Op]:
    """The ops, plus a build of every index an existing table should have and lacks or has invalid.

    (Tables made before titles and creation times were indexed lack those indexes: the search box reads the first,
    the reports' periods the second; a concurrent build that failed, or was stopped,
    leaves its index missing or invalid.)
    """
    planned = {op.name for op in ops if isinstance(op, AddIndex)}
    out = list(ops)
    for name in compiled.model.entities:
        if name not in tables:
            continue
        present, invalid = index_names(conn, name), invalid_indexes(conn, name)
        out = [replace(op, redo="invalid") if isinstance(op, AddIndex) and op.name in invalid else op for op in out]
        for ix in sorted(compiled.metadata.tables[name].indexes, key=lambda i: i.name):
            if ix.name in planned:
                continue
            field_name = ix.info.get("field") or ix.name.removeprefix(f"ix_{name}_")  # a field's, or a column's (title, created_at)
            if ix.name in invalid:
                out.append(AddIndex(name, field_name, unique=bool(ix.unique), redo="invalid"))
            elif ix.name not in present:
                out.append(AddIndex(name, field_name, unique=bool(ix.unique), redo="missing" if ix.info.get("field") else ""))
    return out


def apply(conn: sa.Connection, compiled: CompiledModel, ops: Iterable[Op], *, later: list[IndexBuild] | None = None,
          watch: Watch | None = None) -> None:
    """Carry out a plan in the caller's transaction, then store the new state of every entity.

    With `later` (a list) on PostgreSQL, index builds are not run here but appended to it, for `build_indexes` to run
    concurrently once the caller has committed; without it they build in the transaction (blocking writers).
    """
    ops = list(ops)
    previous = read_state(conn)
    for op in ops:
        if later is not None and isinstance(op, AddIndex) and conn.dialect.name == "postgresql":
            later.append(op.build(compiled))
            continue
        with watch(op) if watch else nullcontext():
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
