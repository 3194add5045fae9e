"""In-app notifications: one row per recipient and event, written in the transaction of the event itself.

Every notification has a key (the event's own key plus the recipient), so a retried activity or a repeated
request finds the row it already wrote instead of notifying twice. Texts are written in words by the caller
(names and local times already in); `link` is where the notification leads.

`UnreadWatch` is what keeps open pages' unread counts live: one poller per process for all of them (see there).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from .keyed import insert_new
from .schema import notifications, users

KINDS = ("task", "group_task", "alert", "approval", "returned", "reply", "mention")
TEXT_LIMIT = 500  # characters of a notification's text kept (the column's size)
MAX_ID = 2**63 - 1  # the largest id a BIGINT holds: anything above names nothing
logger = logging.getLogger("tailor.notifications")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def notify(conn: sa.Connection, key: str, user_ids: Iterable[int], kind: str, text: str, link: str | None = None) -> int:
    """Notify each of `user_ids` once for the event `key`; returns how many rows were new."""
    assert kind in KINDS, kind
    new = 0
    now = utcnow()
    for uid in dict.fromkeys(u for u in user_ids if u):  # once each, in the order given
        row = insert_new(conn, notifications, {"key": f"{key}:u{uid}"[:300], "user_id": uid, "kind": kind, "text": text[:TEXT_LIMIT],
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


def unread_counts(conn: sa.Connection, user_ids: Iterable[int], chunk: int = 500) -> dict[int, int]:
    """The unread count of each of `user_ids` (0 for those with none), a few queries for any number of users."""
    wanted = sorted(set(user_ids))
    counts = dict.fromkeys(wanted, 0)
    for start in range(0, len(wanted), chunk):
        part = wanted[start:start + chunk]
        counts.update(conn.execute(sa.select(notifications.c.user_id, sa.func.count()).where(
            notifications.c.user_id.in_(part), notifications.c.read_at.is_(None)).group_by(notifications.c.user_id)).all())
    return counts


# -- a user's own notifications: the list, opening one, marking read ------------------------------------------

def total(conn: sa.Connection, user_id: int) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(notifications).where(notifications.c.user_id == user_id)).scalar_one()


def newest(conn: sa.Connection, user_id: int, offset: int, limit: int) -> list[dict]:
    """`limit` of the user's notifications, newest first, after skipping `offset`."""
    q = (sa.select(notifications).where(notifications.c.user_id == user_id)
         .order_by(notifications.c.created_at.desc(), notifications.c.id.desc()).offset(offset).limit(limit))
    return [dict(r) for r in conn.execute(q).mappings()]


def own(conn: sa.Connection, user_id: int, notification_id: int) -> dict | None:
    """The notification if it is this user's (anyone else's, or none, is None: the caller says 'not found')."""
    if not 0 < notification_id <= MAX_ID:
        return None
    row = conn.execute(sa.select(notifications).where(notifications.c.id == notification_id,
                                                      notifications.c.user_id == user_id)).mappings().first()
    return dict(row) if row else None


def mark_read(conn: sa.Connection, user_id: int, notification_id: int) -> bool:
    """Mark the user's notification read (already read: left as it was); False if it is not theirs."""
    if own(conn, user_id, notification_id) is None:
        return False
    conn.execute(notifications.update().where(notifications.c.id == notification_id, notifications.c.read_at.is_(None))
                 .values(read_at=utcnow()))
    return True


def mark_all_read(conn: sa.Connection, user_id: int) -> int:
    """Mark every unread notification of the user read; how many there were."""
    return conn.execute(notifications.update().where(notifications.c.user_id == user_id, notifications.c.read_at.is_(None))
                        .values(read_at=utcnow())).rowcount


# -- mentions: '@ann' in a comment ---------------------------------------------------------------------------

# '@' at the start or after a space or punctuation (not inside 'bob@example.com'), then the user name
_MENTION = re.compile(r"(?<![\w@])@([\w][\w.-]*)")


def mentioned(text: str) -> list[str]:
    """The user names `text` mentions, in order, once each (a name's trailing '.' or '-' is punctuation)."""
    return list(dict.fromkeys(m.group(1).rstrip(".-") for m in _MENTION.finditer(text or "")))


def notify_mentions(conn: sa.Connection, key: str, author_id: int | None, text: str, where: str, link: str | None) -> int:
    """A 'mention' to each active staff user `text` names with '@username' (not the author, not a customer's user:
    an internal comment is never shown to a customer), once per `key`; `where` says what was commented on."""
    names = {n.lower() for n in mentioned(text)}
    if not names:
        return 0
    rows = conn.execute(sa.select(users.c.id).where(sa.func.lower(users.c.username).in_(names), users.c.active,
                                                    users.c.company_id.is_(None)).order_by(users.c.id)).scalars().all()
    author = conn.execute(sa.select(users.c.name).where(users.c.id == author_id)).scalar() if author_id else None
    excerpt = " ".join(text.split())
    excerpt = excerpt if len(excerpt) <= 200 else excerpt[:199].rstrip() + "…"
    return notify(conn, f"mention:{key}", [u for u in rows if u != author_id], "mention",
                  f"{author or 'Someone'} mentioned you on {where}: {excerpt}", link)


# -- live counts for open pages --------------------------------------------------------------------------------

@dataclass
class _Watched:
    """One user's count as last read, and the open pages waiting for it to change."""

    count: int | None = None
    waiters: set[asyncio.Event] = field(default_factory=set)


class Watcher:
    """One open page's view of its user's unread count."""

    def __init__(self, state: _Watched, watch: UnreadWatch):
        self._state, self._watch = state, watch
        self._event = asyncio.Event()

    async def changed(self, seen: int | None) -> int | None:
        """The unread count, as soon as it is known and differs from `seen`; None once the watch is closed."""
        while True:
            self._event.clear()  # cleared before looking: a change made after the look wakes the wait below
            if self._watch.closed:
                return None
            if self._state.count is not None and self._state.count != seen:
                return self._state.count
            await self._event.wait()


class UnreadWatch:
    """Unread counts for every open page of one process, kept by one poller instead of a query per page.

    While any page watches, a task checks the notifications table every `interval` seconds: its highest id
    (one index lookup), and the recipients of rows past the last one seen, whose counts it then reads in one
    query and hands to their pages. Counts that change without a new row (read in another process, say) are
    read again every `recount` seconds for every watched user; `touch` asks for a user's count on the next
    check (after marking read here). Rows another transaction committed out of id order (PostgreSQL hands out
    ids before commit) are looked for again for `recount` seconds. No page holds a connection or a thread: the
    checks run one at a time in a worker thread, and the poller stops when the last page goes (the next one starts it).
    """

    def __init__(self, engine: sa.Engine, interval: float = 0.25, recount: float = 10.0):
        self.engine, self.interval, self.recount = engine, interval, recount
        self._users: dict[int, _Watched] = {}
        self._fresh: set[int] = set()             # users whose count to read on the next check
        self._last: int | None = None             # the highest id seen
        self._gaps: dict[int, float] = {}         # ids below it not yet seen -> when to stop looking for them
        self._recounted = 0.0
        self._poller: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the pages and the poller live on
        self.closed = False

    @property
    def pages(self) -> int:
        """How many pages are watching."""
        return sum(len(s.waiters) for s in list(self._users.values()))

    @contextlib.contextmanager
    def watch(self, user_id: int) -> Iterator[Watcher]:
        """Watch `user_id`'s count for as long as the block runs (an open page)."""
        state = self._users.get(user_id)
        if state is None:
            state = self._users[user_id] = _Watched()
            self._fresh.add(user_id)
        watcher = Watcher(state, self)
        state.waiters.add(watcher._event)
        loop = asyncio.get_running_loop()
        if self._poller is None or self._poller.done() or self._poller.get_loop() is not loop:  # (a test client's loop ended)
            self._last, self._gaps, self._loop = None, {}, loop  # every page is new: counted at the first check, no rows to look back on
            self._poller = loop.create_task(self._run(), name="unread-watch")
        try:
            yield watcher
        finally:
            state.waiters.discard(watcher._event)
            if not state.waiters and self._users.get(user_id) is state:
                del self._users[user_id]
                self._fresh.discard(user_id)
            if not self._users and self._poller is not None:
                self._poller.cancel()  # the last page went: no polling until the next one comes

    def close(self) -> None:
        """End every page's watch (the server is stopping: their streams end now instead of holding it up)."""
        self.closed = True
        for state in list(self._users.values()):
            for event in state.waiters:
                event.set()

    def touch(self, user_id: int) -> None:
        """Read `user_id`'s count again on the next check (their notifications changed in this process).

        Safe from any thread (the routes that mark read run in the threadpool): the change is handed to the loop."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended (a test client's): nobody is watching there
                loop.call_soon_threadsafe(self._touch, user_id)

    def _touch(self, user_id: int) -> None:
        if user_id in self._users:
            self._fresh.add(user_id)

    async def _run(self) -> None:
        while self._users:
            started = time.monotonic()
            try:
                await self._check()
            except Exception:  # the database may be away for a while: pages keep their last count, the poller goes on
                logger.exception("could not read the unread counts")
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def _check(self) -> None:
        now = time.monotonic()
        full = now - self._recounted >= self.recount
        wanted = set(self._users) if full else set(self._fresh)
        self._fresh.clear()
        top, counts = await asyncio.to_thread(self._read, wanted, set(self._users), now)
        if full:
            self._recounted = now
        self._last = top
        for user_id, count in counts.items():
            state = self._users.get(user_id)
            if state is not None and state.count != count:
                state.count = count
                for event in state.waiters:
                    event.set()

    def _read(self, wanted: set[int], watched: set[int], now: float) -> tuple[int, dict[int, int]]:
        """(the highest id, the counts of `wanted` and of the watched recipients of new rows), in a worker thread."""
        with self.engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(notifications.c.id))).scalar() or 0
            last = self._last
            if last is not None and (top > last or self._gaps):
                floor = min(last, min(self._gaps) - 1) if self._gaps else last
                rows = conn.execute(sa.select(notifications.c.id, notifications.c.user_id)
                                    .where(notifications.c.id > floor, notifications.c.id <= top)).all()
                found = {r.id for r in rows if r.id > last or r.id in self._gaps}
                wanted |= {r.user_id for r in rows if r.id in found} & watched
                self._gaps = {i: until for i, until in self._gaps.items() if i not in found and until > now}
                missing = (top - last) - sum(1 for i in found if i > last)
                if 0 < missing <= 1000:  # a wider gap (a reset sequence, a rollback of many) waits for the recount
                    self._gaps.update((i, now + self.recount) for i in range(last + 1, top + 1) if i not in found)
            elif last is not None and top < last:  # rows deleted (a user removed): start again from here
                self._gaps.clear()
            return top, unread_counts(conn, wanted) if wanted else {}
