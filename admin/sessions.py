"""Server-side web sessions: the signed cookie carries a random id; this table says whether it still counts."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from runtime.schema import sessions, users

LIFETIME = dt.timedelta(hours=12)

# built once: every page view looks its session up
_LOOKUP = (sa.select(users).join(sessions, sessions.c.user_id == users.c.id)
           .where(sessions.c.id_hash == sa.bindparam("id_hash"), sessions.c.revoked_at.is_(None),
                  sessions.c.expires_at > sa.bindparam("now"), users.c.active))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def open_session(conn: sa.Connection, user_id: int, lifetime: dt.timedelta = LIFETIME) -> str:
    """A new session for the user; the id returned goes into the signed cookie and is stored only as its digest."""
    session_id = secrets.token_urlsafe(32)
    now = _now()
    conn.execute(sessions.insert().values(id_hash=_hash(session_id), user_id=user_id, created_at=now, expires_at=now + lifetime))
    return session_id


def session_user(conn: sa.Connection, session_id: str) -> dict | None:
    """The active user of a live (not revoked, not expired) session, or None."""
    row = conn.execute(_LOOKUP, {"id_hash": _hash(session_id), "now": _now()}).mappings().first()
    return dict(row) if row else None


def revoke(conn: sa.Connection, session_id: str) -> None:
    """End one session (logout)."""
    conn.execute(sessions.update().where(sessions.c.id_hash == _hash(session_id), sessions.c.revoked_at.is_(None))
                 .values(revoked_at=_now()))


def revoke_all(conn: sa.Connection, user_id: int) -> int:
    """End every session of a user (a password change, deactivation); returns how many were live."""
    return conn.execute(sessions.update().where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                        .values(revoked_at=_now())).rowcount


class PageSessions:
    """ASGI middleware: Starlette's signed session cookie for the pages. Requests whose path `skip` names (the API's,
    which a bearer token authenticates) go around it: no cookie read, no session made, no response headers rewritten."""

    def __init__(self, app: ASGIApp, *, skip: Callable[[str], bool], **options: Any) -> None:
        self.app, self.skip = app, skip
        self.sessions = SessionMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.skip(scope["path"]):
            await self.app(scope, receive, send)
        else:
            await self.sessions(scope, receive, send)
