"""Databases for web tests that must hold on SQLite and on PostgreSQL (made as tests/runtime/conftest.py makes them)."""
from __future__ import annotations

import uuid

import pytest

from runtime.db import make_engine
from tests.runtime.conftest import DIALECTS, PG_URL, postgres_unreachable


@pytest.fixture(scope="module", params=DIALECTS)
def module_database(request, tmp_path_factory):
    """An empty database shared by a module's tests: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('web') / 'tailor.db'}")
        yield engine
        engine.dispose()
        return
    if (reason := postgres_unreachable()):
        pytest.skip(reason)
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()
