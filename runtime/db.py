"""Database engines and the platform tables' Alembic migrations."""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _driver_url(url: str | sa.URL) -> sa.URL:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def make_engine(url: str | sa.URL, **kwargs) -> sa.Engine:
    """An engine for a SQLite file (WAL, foreign keys, busy timeout) or PostgreSQL through psycopg 3."""
    u = _driver_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(u, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(u, **kwargs)


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record) -> None:
        # The sqlite3 module's own transaction handling skips BEGIN before DDL, so a
        # migration could half-apply; we turn it off and begin transactions ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses at most the last commits, never integrity
        cursor.close()

    # Transactions begun by a statement (`engine.connect()`, then a query) only read: they begin
    # deferred, so a long read never holds the write lock (WAL readers see a snapshot instead).
    implicit: weakref.WeakSet[sa.Connection] = weakref.WeakSet()

    @sa.event.listens_for(engine, "before_execute")
    def statement(conn, *_args) -> None:
        if not conn.in_transaction():
            implicit.add(conn)  # this statement begins the transaction (autobegin runs right after this event)
    # (`exec_driver_sql` skips that event: a read that starts with raw SQL still begins IMMEDIATE, stricter but safe.)

    @sa.event.listens_for(engine, "begin")
    def begin(conn) -> None:
        if conn in implicit:
            implicit.discard(conn)
            conn.exec_driver_sql("BEGIN")
            return
        # Begun explicitly (`engine.begin()`): it writes. IMMEDIATE takes the write lock up front: a
        # deferred transaction that reads and then writes fails at once with "database is locked" when
        # another writer got there first, instead of waiting out the busy timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# SQLite lets one transaction write at a time (ours all begin IMMEDIATE) and makes the others poll for the lock with
# growing sleeps, up to 100 ms each, failing after the busy timeout: with every activity thread and the mail sender
# writing at once (a burst of deadlines), they would wait on those sleeps rather than on each other. The writers of one
# process take turns on a lock per engine instead, which hands the database over the moment it is free.
_turns: weakref.WeakKeyDictionary[sa.Engine, threading.Lock] = weakref.WeakKeyDictionary()
_turns_made = threading.Lock()


@contextlib.contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """`engine.begin()` for a write, in turn with this process's other writers on the same SQLite engine."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with _turns_made:
        turn = _turns.setdefault(engine, threading.Lock())
    with turn, engine.begin() as conn:
        yield conn


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """A stored moment as an aware UTC datetime: SQLite hands back naive ones, and everything is stored in UTC."""
    return moment.replace(tzinfo=dt.UTC) if moment is not None and moment.tzinfo is None else moment


def alembic_config(connection: sa.Connection | None = None):
    """The Alembic config of the platform tables, with the script folder inside the package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine | sa.Connection, revision: str = "head") -> None:
    """Bring the platform tables up to `revision` (the newest by default)."""
    from alembic import command

    if isinstance(engine, sa.Connection):
        command.upgrade(alembic_config(engine), revision)
        return
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)


def current_revision(conn: sa.Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
