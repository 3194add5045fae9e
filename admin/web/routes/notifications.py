"""The bell: a user's notifications (newest first), opening one, marking read, and the live unread count.

Every logged-in user has notifications (staff and a customer's people alike), each sees only their own: another
user's notification by id is 'not found'. The count in the header stays live without a reload through
`/notifications/stream` (Server-Sent Events) or, where that fails, `/notifications/count` (polled by notify.js).
"""
from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from engine.compiler import CompiledModel
from engine.labels import task_title
from forms.widgets import when_text, zone_of
from runtime import notifications as notes
from runtime import tasks as task_service
from runtime import words
from runtime.schema import users

from ...access import allowed, may_see_task
from ...deps import CompiledDep, Conn, CsrfForm, CurrentUser, EngineDep
from ..finders import MAX_ID
from ..pages import flash, redirect, render
from ..pagewords import said

router = APIRouter(include_in_schema=False)

PER_PAGE = 25
# a stream ends after 8-12 minutes (spread, so pages opened together do not all come back at once) and the browser
# opens it again after RETRY_MS: the session is checked again each time, so a logged-out page stops hearing
KEEP_OPEN = (8 * 60.0, 12 * 60.0)
RETRY_MS = 3000
KIND_TEXT = {"task": "Task", "group_task": "Team task", "alert": "Alert", "approval": "Approval", "returned": "Sent back",
             "reply": "Reply", "mention": "Mention"}
_TASK_LINK = re.compile(r"/tasks/(\d{1,19})")


def get_watch(request: Request) -> notes.UnreadWatch:
    return request.app.state.unread_watch


WatchDep = Annotated[notes.UnreadWatch, Depends(get_watch)]


def _page_number(text: str, pages: int, locale: str) -> int:
    """The page asked for; anything else (not a number, 0, past the last page) is 'not found', saying how many there are."""
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else 0
    if not 1 <= number <= pages:
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise HTTPException(404, words.plural(locale, "There is no page “%(shown)s” of your notifications: they fill %(num)s page. "
                                              "Open the first page from the link below.",
                                              "There is no page “%(shown)s” of your notifications: they fill %(num)s pages. "
                                              "Open the first page from the link below.", pages, shown=shown))
    return number


@router.get("/notifications", response_class=HTMLResponse)
def notification_list(request: Request, user: CurrentUser, conn: Conn, compiled: CompiledDep, page: str = "1"):
    total = notes.total(conn, user["id"])
    pages = max(1, -(-total // PER_PAGE))
    number = _page_number(page, pages, request.state.locale)
    zone = zone_of(compiled.model, user)
    items = [{**n, "when_text": when_text(n["created_at"], zone, locale=request.state.locale), "kind_text": KIND_TEXT.get(n["kind"], n["kind"])}
             for n in notes.newest(conn, user["id"], (number - 1) * PER_PAGE, PER_PAGE)]
    return render(request, "notifications/list.html", user=user, items=items, total=total, page=number, pages=pages)


@router.get("/notifications/count")
def notification_count(user: CurrentUser, conn: Conn) -> JSONResponse:
    """The unread count as JSON, for pages whose browser cannot keep the stream open (notify.js polls it)."""
    return JSONResponse({"unread": notes.unread_count(conn, user["id"])}, headers={"Cache-Control": "no-store"})


@router.get("/notifications/stream", response_class=EventSourceResponse)
async def notification_stream(user: CurrentUser, watch: WatchDep) -> AsyncIterator[ServerSentEvent]:
    """The unread count now and whenever it changes, as `unread` events (FastAPI adds a keep-alive comment every 15 s).

    The session is checked before anything else (the user dependency); the stream then holds no database
    connection and no thread: it waits on the process's one UnreadWatch. It ends when the browser goes."""
    loop = asyncio.get_running_loop()
    until = loop.time() + random.uniform(*KEEP_OPEN)
    with watch.watch(user["id"]) as watcher:
        seen: int | None = None
        while True:
            try:
                seen = await asyncio.wait_for(watcher.changed(seen), timeout=max(0.0, until - loop.time()))
            except TimeoutError:
                return
            if seen is None:  # the server is stopping
                return
            yield ServerSentEvent(data=seen, event="unread", retry=RETRY_MS)


@router.get("/notifications/{notification_id}/open")
def notification_open(request: Request, notification_id: int, user: CurrentUser, engine: EngineDep, compiled: CompiledDep,
                      watch: WatchDep):
    """Mark the notification read and go where it leads (a task this user can no longer open: its record, saying why)."""
    with engine.begin() as conn:
        note = notes.own(conn, user["id"], notification_id)
        if note is None:
            raise HTTPException(404, "There is no such notification.")
        notes.mark_read(conn, user["id"], notification_id)
        target, why = destination(conn, compiled, user, note["link"])  # `why` in the page's language
    watch.touch(user["id"])
    if why:
        flash(request, why)
    return redirect(target)


def destination(conn: sa.Connection, compiled: CompiledModel, user: dict, link: str | None) -> tuple[str, str | None]:
    """Where a notification's link takes `user`, and why not there if it cannot (a task handed on since, or gone)."""
    if not link or not link.startswith("/") or link.startswith("//") or "\\" in link:
        return "/notifications", None  # a link out of the site is never followed
    match = _TASK_LINK.fullmatch(link)
    if not match:
        return link, None
    task = task_service.get_task(conn, int(match.group(1))) if int(match.group(1)) <= MAX_ID else None
    if task is None:
        return "/notifications", words.text(compiled.model.locale, "That task no longer exists.")
    groups, manager = task_service.access_context(conn, user["id"], task)
    if allowed(compiled.model, user, "manage_own_tasks") and may_see_task(compiled.model, user, task, groups, manager):
        return link, None
    locale = compiled.model.locale  # the page's language
    if task["assignee_id"]:
        holder = conn.execute(sa.select(users.c.name).where(users.c.id == task["assignee_id"])).scalar() or words.text(locale, "someone else")
    elif task["group_name"]:
        group = compiled.model.groups.get(task["group_name"])
        holder = words.text(locale, "the %(group)s queue", group=group.label if group else task["group_name"].replace("_", " "))
    else:
        holder = words.text(locale, "someone else")
    why = words.text(locale, "“%(task)s” is now with %(who)s, so you cannot open it any more.",
                     task=task_title(task, compiled.model.locale, compiled.model), who=holder)
    if task["entity"] and task["record_id"] and allowed(compiled.model, user, "access"):
        return f"/records/{task['entity']}/{task['record_id']}", why + " " + words.text(locale, "Here is its record.")
    return "/notifications", why


def _back(data) -> str:
    """The page of the list a form was sent from."""
    page = str(data.get("page", ""))
    later = page.isascii() and page.isdigit() and page not in ("0", "1") and len(page) <= 9
    return f"/notifications?page={page}" if later else "/notifications"


@router.post("/notifications/{notification_id}/read")
def notification_read(request: Request, notification_id: int, user: CurrentUser, data: CsrfForm, engine: EngineDep,
                      watch: WatchDep, compiled: CompiledDep):  # the configuration: for the page's language
    with engine.begin() as conn:
        if not notes.mark_read(conn, user["id"], notification_id):
            raise HTTPException(404, "There is no such notification.")
    watch.touch(user["id"])
    flash(request, said(request, "Marked as read."))
    return redirect(_back(data))


@router.post("/notifications/read-all")
def notification_read_all(request: Request, user: CurrentUser, data: CsrfForm, engine: EngineDep, watch: WatchDep,
                          compiled: CompiledDep):  # the configuration: for the page's language
    with engine.begin() as conn:
        marked = notes.mark_all_read(conn, user["id"])
    watch.touch(user["id"])
    locale = request.state.locale
    flash(request, words.plural(locale, "Marked %(num)s notification as read.", "Marked %(num)s notifications as read.", marked)
          if marked else words.text(locale, "Nothing was unread."))
    return redirect(_back(data))
