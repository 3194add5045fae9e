"""A web app that follows configuration releases, over a SQLite file with the CRM pack adopted from a copy on disk and
two users (ada, an administrator; ann, staff): what the console's configuration tests start from."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from html import unescape
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher

from admin.app import create_app
from runtime import releases
from runtime.db import upgrade
from runtime.plan import apply, plan
from runtime.schema import users
from tests.conftest import CRM


def console_site(tmp_path: Path, seed=None):
    """(app, engine); `seed(conn, compiled)` adds records before the app starts."""
    crm = tmp_path / "packs" / "crm"
    shutil.copytree(CRM, crm)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'web.db'}")
    root = tmp_path / "releases"
    with engine.begin() as conn:
        upgrade(conn)
        _, compiled, _ = releases.adopt_disk(conn, [crm], root)
    with engine.begin() as conn:
        apply(conn, compiled, plan(conn, compiled))
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # fast: the app verifies with the hash's own
        for name, roles in [("ada", ["admin", "staff"]), ("ann", ["staff"])]:
            conn.execute(users.insert().values(username=name, name=name.title(), roles=roles, password_hash=hasher.hash(name),
                                               created_at=dt.datetime.now(dt.UTC)))
        if seed is not None:
            seed(conn, compiled)
    return create_app(engine, compiled, None, secret_key="s", releases_root=root), engine


def words(html: str) -> str:
    """A page's text as one line: tags out, entities read."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))
