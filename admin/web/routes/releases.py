"""Configuration in the browser: the draft of the installation's local pack (YAML files checked on every save, every
problem at its line), what activating it would change (in words, as a diff, the schema plan, the running processes
that stay on their version or move to the new one), activation with a reason, then the running instances' moves
sent (`runtime.instancemigration`, as `tailor pack upgrade --apply` sends them) with what they did, and a retry while
some are still to move; the history of releases with a diff of any two, revert, and export of the local pack as a zip.

The shipped and installed packs are never written: the console's edits are the `local` pack, ordinary definitions
and overlays that a consultant can take into a client pack.
"""
from __future__ import annotations

import asyncio
import io
import re
import zipfile

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from admin.packtool import install
from engine.loader import load
from forms.widgets import when_text, zone_of
from runtime import instancemigration, releases
from runtime.plan import IndexBuildFailed, MigrationError, build_indexes, describe, plan
from runtime.recurrence import sync_schedules
from runtime.schema import console_log, process_instances, users

from ... import accounts
from ...deps import CompiledDep, Conn, CsrfForm, EngineDep, Permitted, ServicesDep
from ..drafting import active_release, draft_files, releases_root
from ..drafting import check as check_draft
from ..pages import flash, redirect, render

router = APIRouter(include_in_schema=False)
Admin = Permitted("admin")
PATH = re.compile(r"^[a-z0-9_][a-z0-9_./-]{0,150}\.ya?ml$")
MAX_FILE = 200_000


def _names(conn, ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    return dict(conn.execute(sa.select(users.c.id, users.c.name).where(users.c.id.in_(ids))).all()) if ids else {}


def _draft_page(request, conn, compiled, user, *, chosen: str | None = None, text: str | None = None, problems=None, status=200,
                errors=None, impact=None):
    base = active_release(conn)
    files, saved = draft_files(conn, base, compiled)
    chosen = chosen if chosen in files or text is not None else next(iter(sorted(files)), "pack.yaml")
    if problems is None:
        _, problems = check_draft(releases_root(request), base, files)
    body = text if text is not None else files.get(chosen, "")
    at_lines = {p.line: p.message for p in problems if p.pack == releases.LOCAL and p.file == chosen and p.line}
    zone = zone_of(compiled.model, user)
    return render(request, "console/draft.html", user=user, status=status, files=sorted(files), chosen=chosen, text=body,
                  lines=[(n, line, at_lines.get(n)) for n, line in enumerate(body.splitlines() or [""], start=1)],
                  problems=problems, errors=errors or {}, saved=saved, impact=impact,
                  saved_text=when_text(saved["updated_at"], zone) if saved else "", base=base)


@router.get("/admin/draft", response_class=HTMLResponse)
def draft_page(request: Request, user: Admin, conn: Conn, compiled: CompiledDep, file: str | None = None):
    return _draft_page(request, conn, compiled, user, chosen=file)


@router.post("/admin/draft/files", response_class=HTMLResponse)
def draft_save(request: Request, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    """Save one file of the draft (a new path adds it); every problem of the whole draft is shown at its line."""
    path, text = str(data.get("path", "")).strip(), str(data.get("text", "")).replace("\r\n", "\n")
    errors = {}
    if not PATH.match(path) or ".." in path.split("/"):
        errors["path"] = "Give a path inside the pack ending in .yaml, e.g. overlays/company.yaml (lower-case letters, digits, _ - . /)."
    if len(text) > MAX_FILE:
        errors["text"] = f"A file may hold at most {MAX_FILE:,} characters."
    with engine.begin() as conn:
        if errors:
            return _draft_page(request, conn, compiled, user, chosen=path, text=text, status=422, errors=errors)
        base = active_release(conn)
        files, _ = draft_files(conn, base, compiled)
        files[path] = text
        releases.save_draft(conn, base["id"], files, user["id"])
        _, problems = check_draft(releases_root(request), base, files)
        page = _draft_page(request, conn, compiled, user, chosen=path, problems=problems, status=422 if problems else 200)
    return page


@router.post("/admin/draft/files/delete", response_class=HTMLResponse)
def draft_delete_file(request: Request, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    path = str(data.get("path", ""))
    with engine.begin() as conn:
        base = active_release(conn)
        files, _ = draft_files(conn, base, compiled)
        if path == "pack.yaml" or path not in files:
            return _draft_page(request, conn, compiled, user, chosen=path, status=422,
                               errors={"path": "The pack's manifest stays." if path == "pack.yaml" else "There is no such file in the draft."})
        del files[path]
        releases.save_draft(conn, base["id"], files, user["id"])
    flash(request, f"Removed {path} from the draft.")
    return redirect("/admin/draft")


@router.post("/admin/draft/discard")
def draft_discard(request: Request, user: Admin, data: CsrfForm, engine: EngineDep):
    with engine.begin() as conn:
        releases.discard_draft(conn)
    flash(request, "The draft is discarded: it is the active configuration again.")
    return redirect("/admin/draft")


def _impact(conn, request, base: dict, files: dict[str, str], active_compiled) -> dict:
    """What activating the draft would do: in words, as file diffs, the schema plan, and the processes that stay."""
    new_compiled, problems = check_draft(releases_root(request), base, files)
    new_files, _ = releases.with_local(base["files"], base["packs"], files)
    out = {"problems": problems, "changes": releases.file_changes(base["files"], new_files), "summary": [], "plan": [], "running": []}
    if new_compiled is None:
        return out
    out["summary"] = releases.summary(active_compiled.model, new_compiled.model) or ["nothing a page or process would notice"]
    try:  # planned against the live tables (a read), applied by nobody
        out["plan"] = list(describe(plan(conn, new_compiled)))
    except MigrationError as exc:
        out["plan_refused"] = str(exc)
    out["running"] = [r.line() for r in instancemigration.plan_moves(conn, active_compiled, new_compiled)]
    return out


@router.get("/admin/draft/impact", response_class=HTMLResponse)
def draft_impact(request: Request, user: Admin, conn: Conn, compiled: CompiledDep):
    base = active_release(conn)
    files, _ = draft_files(conn, base, compiled)
    return _draft_page(request, conn, compiled, user, impact=_impact(conn, request, base, files, compiled))


@router.post("/admin/draft/activate", response_class=HTMLResponse)
async def draft_activate(request: Request, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep, services: ServicesDep):
    """The draft becomes a release and is activated (its schema plan applied): every node switches within seconds."""
    reason = str(data.get("reason", "")).strip()[:500]
    root = releases_root(request)
    later: list = []  # PostgreSQL's index builds: concurrently, once the activation has committed

    def activate():
        try:
            return attempt()
        except MigrationError as exc:  # a value the plan cannot convert: nothing changed
            with engine.connect() as conn:
                return None, _draft_page(request, conn, compiled, user, status=422, errors={"": f"Not activated: {exc}"})

    def attempt():
        with engine.begin() as conn:
            base = active_release(conn)
            files, _ = draft_files(conn, base, compiled)
            if not reason:
                return None, _draft_page(request, conn, compiled, user, status=422, errors={"reason": "Say why (it is kept in the history)."},
                                         impact=_impact(conn, request, base, files, compiled))
            new_compiled, problems = check_draft(root, base, files)
            if problems:
                return None, _draft_page(request, conn, compiled, user, problems=problems, status=422)
            all_files, packs = releases.with_local(base["files"], base["packs"], files)
            release_id = releases.create(conn, all_files, packs, author_id=user["id"], reason=reason)
            moves = [r for r in instancemigration.plan_moves(conn, compiled, new_compiled) if r.move is not None]
            activation, _ = releases.switch_to(conn, release_id, root, by=user["id"], reason=reason, later=later)
            releases.discard_draft(conn)
            accounts.log(conn, user["id"], "release.activate", f"release {release_id}", {"activation": activation}, reason)
            return (release_id, new_compiled, moves), None

    done, page = await run_in_threadpool(activate)
    if page is not None:
        return page
    release_id, new_compiled, moves = done
    request.app.state.compiled = new_compiled  # this node at once; the others within a poll
    answers = await _answers(services)
    if answers:
        await sync_schedules(services.client, new_compiled, services.task_queue, announce=services.webhooks)
    failed = await run_in_threadpool(_build_later, engine, later)
    flash(request, f"Release {release_id} is active: every web app and worker switches to it within seconds.{failed}")
    if not moves:
        return redirect("/admin/releases")
    await _move_running(services, engine, release_id, moves, user["id"], answers)  # once the switch is committed, as the CLI does
    return redirect(f"/admin/releases/{release_id}/running")


# -- moving running instances ---------------------------------------------------------------------
MOVES = "release.move_running"
ANSWER_WITHIN = 5.0  # seconds Temporal has to say it is there before the moves are left pending


async def _answers(services) -> bool:
    """Whether the app has a Temporal client and its server answers (within a few seconds)."""
    if services.client is None:
        return False
    try:
        return bool(await asyncio.wait_for(services.client.service_client.check_health(), ANSWER_WITHIN))
    except Exception:  # noqa: BLE001 - any failure to answer is 'not now'
        return False


async def _move_running(services, engine, release_id: int, moves: list, actor_id: int, answers: bool | None = None) -> None:
    """Send the moves (`install.move`, as `tailor pack upgrade --apply` does) unless Temporal does not answer, and log what they did."""
    pending = not (await _answers(services) if answers is None else answers)
    lines = await install.move(services.client, engine, moves) if not pending else []
    said = ("Temporal did not answer: the moves are pending" if pending else "; ".join(x.strip() for x in lines))[:500]

    def log():
        with engine.begin() as conn:
            accounts.log(conn, actor_id, MOVES, f"release {release_id}", {"lines": lines, "pending": pending}, said)

    await run_in_threadpool(log)


def _last_moves(conn, release_id: int) -> dict | None:
    row = conn.execute(sa.select(console_log).where(console_log.c.action == MOVES, console_log.c.subject == f"release {release_id}")
                       .order_by(console_log.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def _still_to_move(conn, request, release_id: int) -> list:
    """The moves the active release's migrations still have to make (none when `release_id` is not the active one)."""
    current = releases.active(conn)
    return install.still_to_move(conn, releases_root(request)) if current and current[0]["id"] == release_id else []


STAYS = re.compile(r"^  (\S+) stays: (.*)$")  # a line of `instancemigration.report` about one instance that stays


def _outcome_lines(conn, compiled, lines: list[str]) -> list[dict]:
    """The lines of what the moves did, an instance that stays named by the record it runs on (not its workflow id)."""
    out = []
    for line in lines:
        m = STAYS.match(line)
        if not m:
            out.append({"text": line})
            continue
        row = conn.execute(sa.select(process_instances.c.entity, process_instances.c.record_id)
                           .where(process_instances.c.workflow_id == m.group(1))).first()
        table = compiled.metadata.tables.get(row.entity) if row is not None and row.entity else None
        title = conn.execute(sa.select(table.c.title).where(table.c.id == row.record_id)).scalar() if table is not None else None
        out.append({"stays": m.group(2), "about": title or "an instance on no record",
                    "url": f"/records/{row.entity}/{row.record_id}" if title else None})
    return out


@router.get("/admin/releases/{release_id}/running", response_class=HTMLResponse)
def release_running(request: Request, release_id: int, user: Admin, conn: Conn, compiled: CompiledDep):
    """What activating a release did with the running instances it moves, and those still to move."""
    row = _release_or_404(conn, release_id)
    last = _last_moves(conn, release_id)
    names = _names(conn, [last["actor_id"]]) if last else {}
    zone = zone_of(compiled.model, user)
    return render(request, "console/running.html", user=user, release=row, still=[p.line() for p in _still_to_move(conn, request, release_id)],
                  last=last, outcome=_outcome_lines(conn, compiled, (last["details"] or {}).get("lines", [])) if last else [], last_when=when_text(last["at"], zone) if last else "", last_who=names.get(last["actor_id"], "") if last else "",
                  current=(releases.active(conn) or ({"id": None},))[0]["id"] == release_id)


@router.post("/admin/releases/{release_id}/running")
async def release_move_now(request: Request, release_id: int, user: Admin, data: CsrfForm, engine: EngineDep, services: ServicesDep):
    """Send the moves still to make again (Temporal was away, or an instance was busy)."""
    def still():
        with engine.connect() as conn:
            _release_or_404(conn, release_id)
            return _still_to_move(conn, request, release_id)

    moves = await run_in_threadpool(still)
    if moves:
        await _move_running(services, engine, release_id, moves, user["id"])
    else:
        flash(request, "No running instance is still to move.")
    return redirect(f"/admin/releases/{release_id}/running")


# -- history, diff, revert, export ----------------------------------------------------------------
@router.get("/admin/releases", response_class=HTMLResponse)
def release_history(request: Request, user: Admin, conn: Conn, compiled: CompiledDep):
    rows = releases.history(conn)
    names = _names(conn, [r["activated_by"] for r in rows])
    zone = zone_of(compiled.model, user)
    shown = [{**r, "when": when_text(r["activated_at"], zone), "who": names.get(r["activated_by"]) or "a start with the packs on disk",
              "current": i == 0} for i, r in enumerate(rows)]
    return render(request, "console/releases.html", user=user, rows=shown, ids=sorted({r["id"] for r in rows}, reverse=True))


def _release_or_404(conn, release_id: int) -> dict:
    row = releases.get(conn, release_id) if 0 < release_id < 2**63 else None
    if row is None:
        raise HTTPException(404, "There is no such release.")
    return row


@router.get("/admin/releases/diff", response_class=HTMLResponse)
def release_diff(request: Request, user: Admin, conn: Conn, a: int, b: int):
    old, new = _release_or_404(conn, a), _release_or_404(conn, b)
    root = releases_root(request)
    summary = releases.summary(load(releases.materialise(old, root)), load(releases.materialise(new, root)))
    return render(request, "console/diff.html", user=user, old=old, new=new, summary=summary,
                  changes=releases.file_changes(old["files"], new["files"]))


@router.post("/admin/releases/{release_id}/activate", response_class=HTMLResponse)
async def release_revert(request: Request, release_id: int, user: Admin, data: CsrfForm, engine: EngineDep, services: ServicesDep):
    """Activate an earlier release again (a revert is a new activation of the same files)."""
    reason = str(data.get("reason", "")).strip()[:500] or f"back to release {release_id}"
    root = releases_root(request)
    later: list = []  # PostgreSQL's index builds: concurrently, once the activation has committed

    def activate():
        with engine.begin() as conn:
            _release_or_404(conn, release_id)
            activation, _ = releases.switch_to(conn, release_id, root, by=user["id"], reason=reason, later=later)
            accounts.log(conn, user["id"], "release.activate", f"release {release_id}", {"activation": activation}, reason)
            return releases.compile_release(releases.get(conn, release_id), root)

    try:
        new_compiled = await run_in_threadpool(activate)
    except MigrationError as exc:
        flash(request, f"Not activated: {exc}")
        return redirect("/admin/releases")
    request.app.state.compiled = new_compiled
    if services.client is not None:
        await sync_schedules(services.client, new_compiled, services.task_queue, announce=services.webhooks)
    failed = await run_in_threadpool(_build_later, engine, later)
    flash(request, f"Release {release_id} is active again: every web app and worker switches to it within seconds.{failed}")
    return redirect("/admin/releases")


def _build_later(engine, later: list) -> str:
    """An activation's index builds after its commit: '' when they all built, else what failed (the next activation or
    `tailor migrate` retries them)."""
    try:
        build_indexes(engine, later)
    except IndexBuildFailed as exc:
        return f" {exc}"
    return ""


@router.get("/admin/releases/{release_id}/local.zip")
def release_export(release_id: int, user: Admin, conn: Conn):
    files = releases.export(_release_or_404(conn, release_id))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, text in sorted(files.items()):
            zf.writestr(f"local/{rel}", text)
    return Response(buffer.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="release-{release_id}-local.zip"'})
