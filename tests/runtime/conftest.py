"""Databases for runtime tests: every store test runs on SQLite and on PostgreSQL.

PostgreSQL is the server at 127.0.0.1:5432 (database `test`, user `postgres`) or
TAILOR_TEST_POSTGRES_URL; each test gets a fresh schema (through search_path),
dropped afterwards, so tests never see each other's tables.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from engine.compiler import CompiledModel, compile_model
from engine.loader import load
from runtime import mailbox
from runtime.db import make_engine, upgrade
from runtime.mail import MailSettings
from runtime.plan import apply, plan
from runtime.schema import users
from tests.conftest import ACME, CRM, free_port

PG_URL = os.environ.get("TAILOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DIALECTS = ("sqlite", "postgresql")


@functools.cache
def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can)."""
    try:
        engine = make_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:  # any failure to connect means: skip, and say why
        return f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__}: {str(exc).splitlines()[0]}); " \
               f"set TAILOR_TEST_POSTGRES_URL to run these tests on PostgreSQL"
    return None


@contextlib.contextmanager
def empty_database(dialect: str, folder: Path) -> Iterator[sa.Engine]:
    """An empty database: a SQLite file in `folder`, or a fresh PostgreSQL schema dropped afterwards (skips the test
    when PostgreSQL is unreachable)."""
    if dialect == "sqlite":
        engine = make_engine(f"sqlite:///{folder / 'tailor.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    if (reason := postgres_unreachable()):
        pytest.skip(reason)
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"}, poolclass=sa.pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


@pytest.fixture(params=DIALECTS)
def db(request, tmp_path) -> sa.Engine:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema."""
    with empty_database(request.param, tmp_path) as engine:
        yield engine


@functools.cache
def compiled_packs(*paths: Path) -> CompiledModel:
    return compile_model(load(paths))


@pytest.fixture(scope="session")
def crm() -> CompiledModel:
    """The shipped CRM pack, compiled (once per session: compiling is pure)."""
    return compiled_packs(CRM)


@pytest.fixture(scope="session")
def crm_acme() -> CompiledModel:
    return compiled_packs(CRM, ACME)


@dataclass
class Store:
    engine: sa.Engine
    compiled: CompiledModel
    alice: int  # a staff user
    bob: int

    def begin(self):
        return self.engine.begin()

    def connect(self):
        return self.engine.connect()


def add_user(conn: sa.Connection, username: str, roles=("staff",)) -> int:
    return conn.execute(users.insert().values(username=username, name=username.title(), email=f"{username}@example.com",
                                              roles=list(roles), created_at=sa.func.now()).returning(users.c.id)).scalar_one()


@pytest.fixture
def store(db, crm) -> Store:
    """A database with the platform tables, the CRM pack's entity tables and two users."""
    with db.begin() as conn:
        upgrade(conn)
        apply(conn, crm, plan(conn, crm))
        alice, bob = add_user(conn, "alice"), add_user(conn, "bob")
    return Store(db, crm, alice, bob)


class Inbox:
    """A real SMTP server's message handler that keeps what it receives: (recipients, message text)."""

    def __init__(self):
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
        return "250 OK"

    async def received(self, n: int, timeout: float = 10.0) -> list:
        """The messages once at least `n` have come (or `timeout` s have passed), and a moment more for any extra one."""
        for _ in range(int(timeout / 0.05)):
            if len(self.messages) >= n:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        return self.messages


@contextlib.asynccontextmanager
async def sending(engine: sa.Engine, mail: MailSettings):
    """The mail outbox's sender, as every worker runs it beside its Temporal worker (admin/run.py), polling often."""
    sender = asyncio.create_task(mailbox.run(engine, mail, poll=0.05))
    try:
        yield
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


@pytest.fixture
def smtp():
    """An SMTP server on loopback: (its Inbox, its port)."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()
