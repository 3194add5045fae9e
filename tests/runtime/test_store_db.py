"""Engines, settings and the platform tables' Alembic migrations."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from runtime import schema
from runtime.db import MIGRATIONS, alembic_config, current_revision, head_revision, make_engine, upgrade
from runtime.settings import DEFAULT_SECRET_KEY, Settings, SettingsError


def drift(conn: sa.Connection) -> list:
    context = MigrationContext.configure(conn, opts={
        "compare_type": True, "compare_server_default": True,
        "include_name": lambda name, kind, parents: kind != "table" or name in schema.metadata.tables})
    return compare_metadata(context, schema.metadata)


def test_the_migrations_create_exactly_the_platform_tables(db):
    upgrade(db)
    upgrade(db)  # a second run has nothing to do
    with db.connect() as conn:
        assert drift(conn) == []
        assert current_revision(conn) == head_revision()
        tables = set(sa.inspect(conn).get_table_names())
    assert tables == set(schema.metadata.tables) | {"alembic_version"}


def test_the_migrations_go_down_and_up_again(db):
    upgrade(db)
    with db.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
        assert set(sa.inspect(conn).get_table_names()) == {"alembic_version"}
        command.upgrade(alembic_config(conn), "head")
        assert drift(conn) == []


def test_the_migration_scripts_live_inside_the_package():
    assert MIGRATIONS == Path(__file__).resolve().parents[2] / "runtime" / "migrations"
    assert (MIGRATIONS / "env.py").is_file() and list((MIGRATIONS / "versions").glob("0001_*.py"))


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'tailor.db'}")
    with engine.connect() as conn:
        pragmas = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "foreign_keys", "busy_timeout")]
    assert pragmas == ["wal", 1, 10_000]
    engine.dispose()


def test_sqlite_ddl_is_transactional(tmp_path):
    """sqlite3's own transaction handling would commit the CREATE TABLE; a failed migration must leave nothing."""
    engine = make_engine(f"sqlite:///{tmp_path / 'tailor.db'}")
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE half (id INTEGER PRIMARY KEY)")
            raise RuntimeError("the next step of the migration failed")
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()


def test_a_long_read_does_not_block_a_writer_on_sqlite(tmp_path):
    """Reads (`engine.connect()`) begin deferred and see a snapshot; writes (`engine.begin()`) still lock up front."""
    engine = make_engine(f"sqlite:///{tmp_path / 'tailor.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    count = sa.text("SELECT count(*) FROM notes")
    with engine.connect() as reader:
        assert reader.execute(count).scalar() == 0  # a report that reads on, its transaction still open
        with engine.begin() as writer:  # read-then-write, as the record service does; with a locking reader: "database is locked"
            assert writer.execute(count).scalar() == 0
            writer.execute(sa.text("INSERT INTO notes (text) VALUES ('saved while the report ran')"))
        assert reader.execute(count).scalar() == 0  # the reader keeps its snapshot until its transaction ends
    with engine.connect() as conn:
        assert conn.execute(count).scalar() == 1
    engine.dispose()


def test_postgresql_urls_use_psycopg_3():
    engine = make_engine("postgresql://u@db.example.com/crm")
    assert engine.url.drivername == "postgresql+psycopg" and engine.dialect.driver == "psycopg"


# -- settings ---------------------------------------------------------------------------------


def test_settings_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.env == "development" and s.development
    assert s.data_dir == tmp_path / "var"
    assert s.database_url == f"sqlite:///{tmp_path / 'var' / 'tailor.db'}"
    assert (s.temporal_address, s.temporal_namespace, s.task_queue) == ("127.0.0.1:7233", "default", "tailor")
    assert (s.smtp_host, s.smtp_port) == ("127.0.0.1", 8025)
    assert s.packs == ("definitions/crm",)
    assert s.secret_key == DEFAULT_SECRET_KEY


def test_settings_from_the_environment(tmp_path):
    s = Settings.from_env({
        "TAILOR_ENV": "production", "TAILOR_SECRET_KEY": "s3cret", "TAILOR_DATA_DIR": str(tmp_path),
        "TAILOR_DATABASE_URL": "postgresql://crm@db/crm", "TAILOR_TEMPORAL_ADDRESS": "temporal:7233",
        "TAILOR_TEMPORAL_NAMESPACE": "crm", "TAILOR_TASK_QUEUE": "crm-q", "TAILOR_SMTP_HOST": "mail", "TAILOR_SMTP_PORT": "25",
        "TAILOR_MAIL_FROM": "CRM <crm@example.com>", "TAILOR_PACKS": "definitions/crm, clients/acme",
    })
    assert (s.env, s.secret_key, s.data_dir, s.database_url) == ("production", "s3cret", tmp_path, "postgresql://crm@db/crm")
    assert (s.temporal_address, s.temporal_namespace, s.task_queue) == ("temporal:7233", "crm", "crm-q")
    assert (s.smtp_host, s.smtp_port, s.mail_from) == ("mail", 25, "CRM <crm@example.com>")
    assert s.packs == ("definitions/crm", "clients/acme")
    with pytest.raises(Exception):
        s.env = "development"  # frozen


def test_the_default_secret_is_refused_outside_development():
    with pytest.raises(SettingsError, match="TAILOR_SECRET_KEY must be set to a secret of your own when TAILOR_ENV is 'production'"):
        Settings.from_env({"TAILOR_ENV": "production"})
    with pytest.raises(SettingsError, match="TAILOR_SMTP_PORT must be a whole number, found 'smtp'"):
        Settings.from_env({"TAILOR_SMTP_PORT": "smtp"})
