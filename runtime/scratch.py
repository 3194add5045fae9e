"""The compiled DDL, tried in scratch databases: what `tailor check` runs after the definitions check clean.

SQLite runs in memory, always. PostgreSQL runs where a server is reachable, inside one
transaction in a throwaway schema that the rollback at the end drops again, so nothing of it
is ever left behind. A statement a database refuses is a located problem on the entity (or
the field) it was made for; the first refusal per database is reported, as the statements
after it build on it.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from engine.compiler import CompiledModel, DdlStatement
from engine.errors import Loc, Problem

from .db import make_engine

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL_ENV = ("TAILOR_CHECK_POSTGRES_URL", "TAILOR_TEST_POSTGRES_URL")
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass(frozen=True)
class Trial:
    """Where the DDL of a dialect was tried, and whether it could be."""

    dialect: str
    where: str
    ran: bool
    reason: str = ""  # why it could not run (no server reachable)

    def describe(self) -> str:
        label = LABELS[self.dialect]
        return f"{label} DDL ran in {self.where}" if self.ran else f"{label} DDL not run: {self.reason}"


def postgres_url() -> str:
    """The server the PostgreSQL DDL is tried on: TAILOR_CHECK_POSTGRES_URL, TAILOR_TEST_POSTGRES_URL, else the local one."""
    return next((os.environ[name] for name in POSTGRES_URL_ENV if os.environ.get(name)), DEFAULT_POSTGRES_URL)


def try_ddl(compiled: CompiledModel, postgres: str | None) -> tuple[list[Problem], list[Trial]]:
    """Run the compiled DDL of both dialects (PostgreSQL only when `postgres` is given and reachable)."""
    problems: list[Problem] = []
    trials: list[Trial] = []
    engine = sa.create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            problems += _run(conn, compiled, "sqlite")
        trials.append(Trial("sqlite", "an in-memory database", True))
    finally:
        engine.dispose()
    if postgres is None:
        trials.append(Trial("postgresql", "", False, "skipped (no server given)"))
        return problems, trials
    shown = sa.make_url(postgres).render_as_string(hide_password=True)
    engine = make_engine(postgres, connect_args={"connect_timeout": 3}, poolclass=sa.pool.NullPool)
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            trials.append(Trial("postgresql", "", False, f"no server reachable at {shown} ({reason})"))
            return problems, trials
        with conn:
            schema = f"tailor_check_{uuid.uuid4().hex[:12]}"
            transaction = conn.begin()
            try:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
                conn.exec_driver_sql(f"SET LOCAL search_path TO {schema}")
                problems += _run(conn, compiled, "postgresql")
            finally:
                transaction.rollback()  # the schema and everything in it go with the transaction
        trials.append(Trial("postgresql", f"a throwaway schema at {shown}", True))
    finally:
        engine.dispose()
    return problems, trials


def _run(conn: sa.Connection, compiled: CompiledModel, dialect: str) -> list[Problem]:
    for statement in compiled.ddl_statements(dialect):
        try:
            conn.exec_driver_sql(statement.sql)
        except sa.exc.DBAPIError as exc:
            return [_problem(compiled, dialect, statement, exc)]
    return []


def _problem(compiled: CompiledModel, dialect: str, statement: DdlStatement, exc: sa.exc.DBAPIError) -> Problem:
    entity = compiled.model.entities[statement.entity]
    f = entity.field(statement.field) if statement.field else None
    f = f or next((x for x in entity.all_fields() if x.name == statement.field), None)
    loc: Loc = f.loc if f is not None else entity.loc
    what = f"field '{f.name}' of entity '{entity.name}'" if f is not None else f"entity '{entity.name}'"
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    lines = statement.sql.splitlines()
    shown = lines[0].rstrip(" (;") + (" …" if len(lines) > 1 else "")
    return Problem(loc, f"ddl.{dialect}", f"the compiled {LABELS[dialect]} DDL for {what} fails: {reason} (in: {shown})")
