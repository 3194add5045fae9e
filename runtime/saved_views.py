"""Saved directory views: a user's named choice of columns, filters and sort for one entity's directory.

A view is stored as the directory's own query string, so opening one is the same request as the page it
was saved from. Views belong to one user: nobody else can open, list or delete them.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from engine.errors import TailorError

from . import values as V
from .schema import saved_views

MAX_NAME = 100
MAX_QUERY = 4000


class ViewInvalid(TailorError):
    """The name or the query of a view cannot be saved; the message says why."""


def save(conn: sa.Connection, user_id: int, entity: str, name: str, query: str) -> int:
    """Save the view under `name` (a view of the same name is replaced); its id."""
    name = " ".join(name.split())
    if not name:
        raise ViewInvalid("Give the view a name.")
    if (problem := V.text_problem(name)):
        raise ViewInvalid(f"A view's name {problem}.")
    if len(name) > MAX_NAME:
        raise ViewInvalid(f"A view's name has at most {MAX_NAME} characters.")
    if len(query) > MAX_QUERY:
        raise ViewInvalid("This view has too many filters to be saved.")
    mine = sa.and_(saved_views.c.user_id == user_id, saved_views.c.entity == entity, saved_views.c.name == name)
    existing = conn.execute(sa.select(saved_views.c.id).where(mine)).scalar()
    if existing is not None:
        conn.execute(saved_views.update().where(saved_views.c.id == existing).values(query=query))
        return existing
    return conn.execute(saved_views.insert().values(user_id=user_id, entity=entity, name=name, query=query,
                                                    created_at=dt.datetime.now(dt.timezone.utc))
                        .returning(saved_views.c.id)).scalar_one()


def views_of(conn: sa.Connection, user_id: int, entity: str) -> list[dict]:
    """The user's views of an entity's directory, by name."""
    rows = conn.execute(sa.select(saved_views.c.id, saved_views.c.name, saved_views.c.query)
                        .where(saved_views.c.user_id == user_id, saved_views.c.entity == entity).order_by(saved_views.c.name))
    return [dict(r) for r in rows.mappings()]


def view_of(conn: sa.Connection, user_id: int, view_id: int) -> dict | None:
    """The view, if it is this user's (someone else's view is as absent as one that never existed)."""
    row = conn.execute(sa.select(saved_views).where(saved_views.c.id == view_id, saved_views.c.user_id == user_id)).mappings().first()
    return dict(row) if row else None


def delete(conn: sa.Connection, user_id: int, view_id: int) -> bool:
    """Delete the user's view; False if they have none with that id."""
    return conn.execute(saved_views.delete().where(saved_views.c.id == view_id, saved_views.c.user_id == user_id)).rowcount == 1
