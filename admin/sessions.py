"""Server-side web sessions: the signed cookie carries a random id; this table says whether it still counts."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

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
