"""Alembic environment for the platform tables (runtime/schema.py).

Entity tables come from the definitions and are migrated by `runtime.plan`, so
they are invisible here: autogenerate never proposes to drop them.
"""
from __future__ import annotations

from alembic import context

from runtime import schema

config = context.config
target_metadata = schema.metadata


def include_name(name, type_, parent_names) -> bool:
    if type_ == "table":
        return name in target_metadata.tables
    return True


def _configure(**kwargs) -> None:
    context.configure(target_metadata=target_metadata, include_name=include_name, compare_type=True,
                      render_as_batch=True, **kwargs)


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    # `alembic -c ... upgrade head` from a shell: the database of the settings
    from runtime.db import make_engine
    from runtime.settings import Settings

    url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
    engine = make_engine(url)
    with engine.begin() as conn:
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
