"""In-app notifications: one row per recipient and event, written in the transaction of the event itself.

Every notification has a key (the event's own key plus the recipient), so a retried activity or a repeated
request finds the row it already wrote instead of notifying twice. Texts are written in words by the caller
(names and local times already in); `link` is where the notification leads.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

import sqlalchemy as sa

from .keyed import insert_new
from .schema import notifications

KINDS = ("task", "group_task", "alert", "approval", "returned", "reply", "mention")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def notify(conn: sa.Connection, key: str, user_ids: Iterable[int], kind: str, text: str, link: str | None = None) -> int:
    """Notify each of `user_ids` once for the event `key`; returns how many rows were new."""
    assert kind in KINDS, kind
    new = 0
    now = utcnow()
    for uid in dict.fromkeys(u for u in user_ids if u):  # once each, in the order given
        row = insert_new(conn, notifications, {"key": f"{key}:u{uid}"[:300], "user_id": uid, "kind": kind, "text": text[:500],
                                               "link": link, "created_at": now}, ("key",))
        new += row is not None
    return new


def unread_count(conn: sa.Connection, user_id: int) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(notifications)
                        .where(notifications.c.user_id == user_id, notifications.c.read_at.is_(None))).scalar_one()


def texts(conn: sa.Connection, key: str, user_ids: Iterable[int]) -> dict[int, str]:
    """What each of `user_ids` was told of the event `key` (their own wording), where they were notified."""
    wanted = {f"{key}:u{u}"[:300]: u for u in user_ids if u}
    if not wanted:
        return {}
    rows = conn.execute(sa.select(notifications.c.key, notifications.c.text).where(notifications.c.key.in_(list(wanted))))
    return {wanted[k]: t for k, t in rows}
