"""Which alerts a person may see (and so acknowledge), as one SQL condition, and the reads built on it: the alerts sent
to them (My work) and the alerts inbox, a page at a time.

The rule: an alert is theirs if they are among its recipients, or its task is in a group they manage, or its task is
in a project they manage; whoever may set alerts (the `set_alerts` permission, which the caller decides) sees them
all. Everything is asked of the database, so other people's alerts never crowd out one's own, and every read is
bounded: a page of rows, and counts.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from .schema import alerts, group_members, projects, tasks

PER_PAGE = 50                             # alerts the inbox lists on a page
SHOWS = ("open", "acknowledged", "all")   # the inbox's tabs; "open" first


def sent_to(conn: sa.Connection, user_id: int) -> sa.ColumnElement:
    """Whether an alert's recipients (a JSON list of user ids) hold `user_id`: JSONB containment on PostgreSQL,
    json_each on SQLite (as runtime.records looks in a list of choices)."""
    if conn.dialect.name == "postgresql":
        return alerts.c.recipients.op("@>")(sa.cast(sa.literal([user_id], sa.JSON), alerts.c.recipients.type))
    each = sa.func.json_each(alerts.c.recipients).table_valued("value")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == user_id))


def visible_to(conn: sa.Connection, user_id: int, see_all: bool) -> sa.ColumnElement:
    """Whether `user_id` may see an alert (the rule above); `see_all` for those with `set_alerts`."""
    if see_all:
        return sa.true()
    managed_groups = sa.select(group_members.c.group_name).where(group_members.c.user_id == user_id, group_members.c.manager)
    managed_projects = sa.select(projects.c.id).where(projects.c.manager_id == user_id)
    managed_tasks = sa.select(tasks.c.id).where(sa.or_(tasks.c.group_name.in_(managed_groups), tasks.c.project_id.in_(managed_projects)))
    return sa.or_(sent_to(conn, user_id), alerts.c.task_id.in_(managed_tasks))


def may_see(conn: sa.Connection, user_id: int, see_all: bool, alert_id: int) -> bool | None:
    """Whether `user_id` may see (and acknowledge) the alert; None when there is no such alert."""
    row = conn.execute(sa.select(alerts.c.id, visible_to(conn, user_id, see_all).label("visible"))
                       .where(alerts.c.id == alert_id)).first()
    return None if row is None else bool(row.visible)


def my_alerts(conn: sa.Connection, user_id: int, most: int) -> tuple[list[dict], int]:
    """The unacknowledged alerts sent to the user, newest first (at most `most`), and how many there are in all.
    Only those sent to them: My work lists what is addressed to the person; the inbox adds their groups' and projects'."""
    where = sa.and_(alerts.c.acknowledged_at.is_(None), sent_to(conn, user_id))
    shown = [dict(r) for r in conn.execute(sa.select(alerts).where(where).order_by(alerts.c.raised_at.desc(), alerts.c.id.desc())
                                           .limit(most)).mappings()]
    total = len(shown) if len(shown) < most else conn.execute(sa.select(sa.func.count()).select_from(alerts).where(where)).scalar_one()
    return shown, total


def page_number(text: str | None) -> int:
    """The page asked for in `?page=`: a whole number from 1; anything else (empty, 0, -1, "abc") is page 1. A number
    too long to be a page is kept as a very large one: the inbox then shows its last page."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()):
        return 1
    return max(1, int(text[:12]))


@dataclass(frozen=True)
class Inbox:
    """One page of the alerts a user may see: `rows` (each alert with its task's title columns and status), the page
    shown and how many there are, the counts of each tab, and `asked` when the page asked for was past the last one."""
    show: str
    rows: list[dict]
    page: int
    pages: int
    total: int                  # alerts in the tab shown
    open: int                   # the tabs' counts
    acknowledged: int
    asked: int | None = None    # the page asked for, when it did not exist (the last one is shown instead)
    per: int = PER_PAGE

    @property
    def first(self) -> int:
        """The place of the page's first alert in the tab, counting from 1 (0 when there are none)."""
        return (self.page - 1) * self.per + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.page * self.per, self.total)


def inbox(conn: sa.Connection, user_id: int, see_all: bool, show: str = "open", page: int = 1, per: int = PER_PAGE) -> Inbox:
    """A page of the alerts `user_id` may see: open ones (`show` "open"), acknowledged ones, or all of them, open first;
    newest first. A page past the last shows the last (and says which was asked for)."""
    show = show if show in SHOWS else "open"
    visible = visible_to(conn, user_id, see_all)
    acknowledged = alerts.c.acknowledged_at.is_not(None)
    counts = conn.execute(sa.select(sa.func.count().label("all"), sa.func.count(alerts.c.acknowledged_at).label("acknowledged"))
                          .select_from(alerts).where(visible)).one()
    total = {"open": counts.all - counts.acknowledged, "acknowledged": counts.acknowledged, "all": counts.all}[show]
    pages = max(1, -(-total // per))
    asked = page if page > pages else None
    page = min(page, pages)
    where = {"open": sa.not_(acknowledged), "acknowledged": acknowledged, "all": sa.true()}[show]
    rows = conn.execute(sa.select(alerts, tasks.c.title, tasks.c.titles, tasks.c.process, tasks.c.step_id, tasks.c.group_name,
                                  tasks.c.status.label("task_status"))
                        .join(tasks, tasks.c.id == alerts.c.task_id, isouter=True).where(visible, where)
                        .order_by(acknowledged, alerts.c.raised_at.desc(), alerts.c.id.desc())
                        .offset((page - 1) * per).limit(per)).mappings().all()
    return Inbox(show, [dict(r) for r in rows], page, pages, total, counts.all - counts.acknowledged, counts.acknowledged, asked, per)
