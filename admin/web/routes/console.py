"""The administrator's console: users (create, change, deactivate, reset a password, API tokens), groups (members and
managers), access for a person record (staff, portal or project team), and the log of what administrators did.

Every page needs the `admin` permission; every change goes through `admin.accounts`, which writes it to the
console log with who did it and why. Passwords and tokens are shown once, on the page that answers the change.
"""
from __future__ import annotations

import math

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from engine import labels
from forms.widgets import when_text, zone_of
from runtime import records
from runtime.schema import console_log, group_members, project_members, projects, users

from ... import accounts
from ...accounts import AccountError
from ...deps import CompiledDep, Conn, CsrfForm, EngineDep, Permitted, ServicesDep
from ..finders import MAX_ID, record_or_404
from ..pages import flash, redirect, render

router = APIRouter(include_in_schema=False)
Admin = Permitted("admin")
PER_PAGE = 50


def _page(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), 10**6))
    except ValueError:
        return 1


def _roles(model, chosen: list[str]) -> list[dict]:
    return [{"name": r.name, "label": r.label, "description": r.description, "checked": r.name in chosen} for r in model.roles.values()]


def _role_labels(model, names) -> str:
    return ", ".join(model.roles[r].label if r in model.roles else r for r in names or []) or "none"


def _group_label(model, name: str) -> str:
    return model.groups[name].label if name in model.groups else name.replace("_", " ")


def _company_titles(conn, compiled, ids) -> dict[int, str]:
    table = compiled.metadata.tables.get("company")
    ids = {i for i in ids if i}
    if table is None or not ids:
        return {}
    return dict(conn.execute(sa.select(table.c.id, table.c.title).where(table.c.id.in_(ids))).all())


# -- users ----------------------------------------------------------------------------------------
@router.get("/admin", response_class=HTMLResponse)
def console_home(request: Request, user: Admin, conn: Conn, compiled: CompiledDep):
    counts = dict(conn.execute(sa.select(users.c.active, sa.func.count()).group_by(users.c.active)).all())
    recent = _log_rows(conn, compiled, user, 0, 8)
    return render(request, "console/home.html", user=user, active=counts.get(True, 0), inactive=counts.get(False, 0),
                  groups=len(compiled.model.groups), recent=recent)


@router.get("/admin/users", response_class=HTMLResponse)
def user_list(request: Request, user: Admin, conn: Conn, compiled: CompiledDep, q: str = "", status: str = "active", page: str | None = None):
    model = compiled.model
    status = status if status in ("active", "deactivated", "all") else "active"
    query = sa.select(users)
    if status != "all":
        query = query.where(users.c.active.is_(status == "active"))
    q = q.strip()[:100]
    if q:
        like = f"%{q.lower()}%"
        query = query.where(sa.or_(sa.func.lower(users.c.username).like(like), sa.func.lower(users.c.name).like(like),
                                   sa.func.lower(sa.func.coalesce(users.c.email, "")).like(like)))
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    pages = max(1, math.ceil(total / PER_PAGE))
    number = _page(page)
    if number > pages:
        return redirect(f"/admin/users?q={q}&status={status}&page={pages}")
    rows = [dict(r) for r in conn.execute(query.order_by(users.c.name, users.c.id).offset((number - 1) * PER_PAGE).limit(PER_PAGE)).mappings()]
    memberships: dict[int, list[str]] = {}
    if rows:
        for uid, group, manager in conn.execute(sa.select(group_members.c.user_id, group_members.c.group_name, group_members.c.manager)
                                                .where(group_members.c.user_id.in_([r["id"] for r in rows]))):
            memberships.setdefault(uid, []).append(_group_label(model, group) + (" (manager)" if manager else ""))
    companies = _company_titles(conn, compiled, [r["company_id"] for r in rows])
    shown = [{**r, "roles_text": _role_labels(model, r["roles"]), "groups_text": ", ".join(memberships.get(r["id"], [])),
              "company": companies.get(r["company_id"]), "api_only": r["password_hash"] is None} for r in rows]
    return render(request, "console/users.html", user=user, rows=shown, q=q, showing=status, total=total, page=number, pages=pages)


def _user_form(request, user, compiled, status=200, values=None, errors=None):
    values = values or {}
    return render(request, "console/user_new.html", user=user, status=status, values=values, errors=errors or {},
                  roles=_roles(compiled.model, values.get("roles") or (["staff"] if "staff" in compiled.model.roles else [])))


@router.get("/admin/users/new", response_class=HTMLResponse)
def user_new(request: Request, user: Admin, compiled: CompiledDep):
    return _user_form(request, user, compiled)


@router.post("/admin/users", response_class=HTMLResponse)
def user_create(request: Request, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep, services: ServicesDep):
    values = {k: str(data.get(k, "")) for k in ("username", "name", "email", "reason")}
    values["roles"] = [str(r) for r in data.getlist("roles")]
    try:
        with engine.begin() as conn:
            issued = accounts.create_user(conn, compiled.model, services.hasher, username=values["username"], name=values["name"],
                                          email=values["email"], roles=values["roles"], actor_id=user["id"], reason=values["reason"])
    except AccountError as exc:
        return _user_form(request, user, compiled, 422, values, exc.errors)
    with engine.connect() as conn:
        return _user_page(request, conn, compiled, user, issued.user_id, issued=issued, created=True)


def _user_page(request, conn, compiled, admin: dict, user_id: int, *, status=200, errors=None, values=None, issued=None, created=False):
    model = compiled.model
    try:
        target = accounts.get_user(conn, user_id)
    except AccountError:
        raise HTTPException(404, "There is no such user.") from None
    zone = zone_of(model, admin)
    groups = [{"name": g, "label": _group_label(model, g), "manager": m} for g, m in conn.execute(
        sa.select(group_members.c.group_name, group_members.c.manager).where(group_members.c.user_id == user_id)
        .order_by(group_members.c.group_name))]
    company = _company_titles(conn, compiled, [target["company_id"]]).get(target["company_id"])
    person = None
    if target["person_id"] and "person" in compiled.metadata.tables:
        person_table = compiled.metadata.tables["person"]
        title = conn.execute(sa.select(person_table.c.title).where(person_table.c.id == target["person_id"])).scalar()
        person = {"id": target["person_id"], "title": title} if title is not None else None
    history = _log_rows(conn, compiled, admin, 0, 20, subject=f"user {target['username']} (")
    values = {"name": target["name"], "email": target["email"] or "", "roles": target["roles"] or [], **(values or {})}
    return render(request, "console/user.html", user=admin, status=status, target=target, errors=errors or {}, values=values,
                  roles=_roles(model, values["roles"]), roles_text=_role_labels(model, target["roles"]), groups=groups, company=company,
                  person=person, created_text=when_text(target["created_at"], zone), issued=issued, created=created, history=history,
                  myself=target["id"] == admin["id"], languages=labels.languages(model),
                  chosen_locale=values.get("locale", target.get("locale") or ""))


def _user_id(user_id: int) -> int:
    if not 0 < user_id <= MAX_ID:
        raise HTTPException(404, "There is no such user.")
    return user_id


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
def user_detail(request: Request, user_id: int, user: Admin, conn: Conn, compiled: CompiledDep):
    return _user_page(request, conn, compiled, user, _user_id(user_id))


def _change(request, engine, compiled, admin, user_id, change, done: str, values=None):
    """Run one change of a user; the user's page again with the refusal, or with what it handed out once."""
    user_id = _user_id(user_id)
    try:
        with engine.begin() as conn:
            issued = change(conn)
    except AccountError as exc:
        if exc.errors == {"": "There is no such user."}:
            raise HTTPException(404, "There is no such user.") from None
        with engine.connect() as conn:
            return _user_page(request, conn, compiled, admin, user_id, status=422, errors=exc.errors, values=values)
    if isinstance(issued, accounts.Issued):  # a password or token: shown on this answer only, never in a redirect or a cookie
        with engine.connect() as conn:
            return _user_page(request, conn, compiled, admin, user_id, issued=issued)
    flash(request, done)
    return redirect(f"/admin/users/{user_id}")


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
def user_update(request: Request, user_id: int, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    values = {"name": str(data.get("name", "")), "email": str(data.get("email", "")), "roles": [str(r) for r in data.getlist("roles")]}
    return _change(request, engine, compiled, user, user_id, lambda conn: accounts.update_user(
        conn, compiled.model, user_id, name=values["name"], email=values["email"], roles=values["roles"], actor_id=user["id"]),
        "Saved.", values)


@router.post("/admin/users/{user_id}/language", response_class=HTMLResponse)
def user_language(request: Request, user_id: int, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    """The language the user reads labels in (as they would choose it on their profile), in the console log."""
    chosen = str(data.get("locale", "")).strip()[:40]
    return _change(request, engine, compiled, user, user_id, lambda conn: accounts.set_language(
        conn, compiled.model, user_id, chosen, actor_id=user["id"]), "Language saved.", {"locale": chosen})


@router.post("/admin/users/{user_id}/deactivate", response_class=HTMLResponse)
def user_deactivate(request: Request, user_id: int, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    return _change(request, engine, compiled, user, user_id, lambda conn: accounts.set_active(
        conn, user_id, False, actor_id=user["id"], reason=str(data.get("reason", ""))),
        "Deactivated: they are logged out everywhere and are handed no more tasks.")


@router.post("/admin/users/{user_id}/reactivate", response_class=HTMLResponse)
def user_reactivate(request: Request, user_id: int, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    return _change(request, engine, compiled, user, user_id, lambda conn: accounts.set_active(
        conn, user_id, True, actor_id=user["id"], reason=str(data.get("reason", ""))), "Reactivated.")


@router.post("/admin/users/{user_id}/reset-password", response_class=HTMLResponse)
def user_reset_password(request: Request, user_id: int, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep,
                        services: ServicesDep):
    return _change(request, engine, compiled, user, user_id, lambda conn: accounts.reset_password(
        conn, services.hasher, user_id, actor_id=user["id"], reason=str(data.get("reason", ""))), "")


@router.post("/admin/users/{user_id}/token", response_class=HTMLResponse)
def user_issue_token(request: Request, user_id: int, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    return _change(request, engine, compiled, user, user_id, lambda conn: accounts.issue_token(
        conn, user_id, actor_id=user["id"], reason=str(data.get("reason", ""))), "")


@router.post("/admin/users/{user_id}/token/revoke", response_class=HTMLResponse)
def user_revoke_token(request: Request, user_id: int, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    return _change(request, engine, compiled, user, user_id, lambda conn: accounts.revoke_token(
        conn, user_id, actor_id=user["id"], reason=str(data.get("reason", ""))),
        "API token revoked: the API refuses it from now on.")


# -- groups ---------------------------------------------------------------------------------------
@router.get("/admin/groups", response_class=HTMLResponse)
def group_list(request: Request, user: Admin, conn: Conn, compiled: CompiledDep):
    model = compiled.model
    counts: dict[str, dict] = {}
    for group, manager, name, active in conn.execute(
            sa.select(group_members.c.group_name, group_members.c.manager, users.c.name, users.c.active)
            .join(users, users.c.id == group_members.c.user_id).order_by(users.c.name)):
        c = counts.setdefault(group, {"members": 0, "managers": []})
        if active:
            c["members"] += not manager
            if manager:
                c["managers"].append(name)
    rows = [{"name": g.name, "label": g.label, "description": g.description, "members": counts.get(g.name, {}).get("members", 0),
             "managers": counts.get(g.name, {}).get("managers", [])} for g in model.groups.values()]
    return render(request, "console/groups.html", user=user, rows=rows)


def _group_or_404(compiled, name: str):
    if name not in compiled.model.groups:
        raise HTTPException(404, "There is no such group.")
    return compiled.model.groups[name]


def _group_page(request, conn, compiled, admin, name, status=200, errors=None, chosen=""):
    group = _group_or_404(compiled, name)
    people = [dict(r) for r in conn.execute(
        sa.select(users.c.id, users.c.name, users.c.username, users.c.active, group_members.c.manager)
        .join(group_members, group_members.c.user_id == users.c.id).where(group_members.c.group_name == name)
        .order_by(group_members.c.manager.desc(), users.c.name)).mappings()]
    there = {p["id"] for p in people}
    candidates = [dict(r) for r in conn.execute(sa.select(users.c.id, users.c.name, users.c.username).where(
        users.c.active, users.c.company_id.is_(None)).order_by(users.c.name)).mappings() if r["id"] not in there]
    return render(request, "console/group.html", user=admin, status=status, group=group, people=people, candidates=candidates,
                  errors=errors or {}, chosen=chosen)


@router.get("/admin/groups/{name}", response_class=HTMLResponse)
def group_detail(request: Request, name: str, user: Admin, conn: Conn, compiled: CompiledDep):
    return _group_page(request, conn, compiled, user, name)


def _posted_user(data) -> int | None:
    try:
        value = int(str(data.get("user_id", "")).strip())
    except ValueError:
        return None
    return value if 0 < value <= MAX_ID else None


@router.post("/admin/groups/{name}/members", response_class=HTMLResponse)
def group_add(request: Request, name: str, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    _group_or_404(compiled, name)
    target = _posted_user(data)
    manager = str(data.get("part", "member")) == "manager"
    try:
        if target is None:
            raise AccountError({"user": "Choose someone from the list."})
        with engine.begin() as conn:
            accounts.add_member(conn, compiled.model, name, target, manager=manager, actor_id=user["id"])
    except AccountError as exc:
        errors = {"user": exc.errors.get("user") or exc.errors.get("") or str(exc)}
        with engine.connect() as conn:
            return _group_page(request, conn, compiled, user, name, 422, errors, str(data.get("user_id", "")))
    flash(request, "Now a manager of the group." if manager else "Now a member of the group.")
    return redirect(f"/admin/groups/{name}")


@router.post("/admin/groups/{name}/members/{user_id}/remove", response_class=HTMLResponse)
def group_remove(request: Request, name: str, user_id: int, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    _group_or_404(compiled, name)
    try:
        with engine.begin() as conn:
            accounts.remove_member(conn, compiled.model, name, _user_id(user_id), actor_id=user["id"])
    except AccountError as exc:
        with engine.connect() as conn:
            return _group_page(request, conn, compiled, user, name, 422, {"": str(exc)})
    flash(request, "Removed from the group.")
    return redirect(f"/admin/groups/{name}")


# -- access for a person record -------------------------------------------------------------------
ACCESS_KINDS = {"staff": "Staff", "portal": "Customer portal", "project_team": "Project team"}


@router.post("/admin/people/{person_id}/access", response_class=HTMLResponse)
def give_access(request: Request, person_id: int, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep,
                services: ServicesDep):
    """Bring a person on board as a user: staff with roles, a portal user of their company, or a project's team member."""
    model = compiled.model
    with engine.connect() as conn:
        person = record_or_404(conn, compiled, "person", person_id)
        projects_open = [dict(r) for r in conn.execute(sa.select(projects.c.id, projects.c.title).where(projects.c.status == "open")).mappings()]
    kind = str(data.get("kind", ""))
    company_id = person.data.get("company") if isinstance(person.data.get("company"), int) else None
    errors: dict[str, str] = {}
    roles: list[str] = []
    project_id = None
    if kind == "staff":
        roles = [str(r) for r in data.getlist("roles")] or ["staff"]
        company_id = None
    elif kind in ("portal", "project_team"):
        if company_id is None:
            errors["kind"] = f"{person.title} has no company, so they cannot see a company's requests; set their company first."
        roles = [kind] if kind in model.roles else []
        if not roles:
            errors["kind"] = f"The packs define no '{kind}' role."
        if kind == "project_team":
            try:
                project_id = int(str(data.get("project_id", "")))
            except ValueError:
                project_id = None
            if project_id not in {p["id"] for p in projects_open}:
                errors["project_id"] = "Choose one of the open projects."
    else:
        errors["kind"] = "Choose the kind of access."
    email = str(person.data.get("email") or "")
    username = str(data.get("username", "")).strip() or (email.split("@")[0] if email else "")
    if not errors:
        try:
            with engine.begin() as conn:
                issued = accounts.create_user(conn, model, services.hasher, username=username, name=person.title, email=email, roles=roles,
                                              actor_id=user["id"], company_id=company_id, person_id=person_id,
                                              reason=f"access given from the person record ({ACCESS_KINDS[kind]})")
                if project_id is not None:
                    conn.execute(project_members.insert().values(project_id=project_id, user_id=issued.user_id))
                    accounts.log(conn, user["id"], "project.add_member", f"project {project_id}: user {username}")
                _mark_person(conn, compiled, person_id, kind, user["id"])
        except AccountError as exc:
            errors = exc.errors
    if errors:
        request.session["flash"] = "Access not given: " + " ".join(errors.values())
        return redirect(f"/records/person/{person_id}#access")
    with engine.connect() as conn:
        return _user_page(request, conn, compiled, user, issued.user_id, issued=issued, created=True)


def _mark_person(conn, compiled, person_id: int, kind: str, actor_id: int) -> None:
    """The person record says the access it now has (its `portal_access` / `is_staff` fields, where the entity has them)."""
    fields = {f.name: f for f in compiled.model.entities["person"].all_fields()}
    changes = {}
    if kind == "staff" and "is_staff" in fields:
        changes["is_staff"] = True
    access = fields.get("portal_access")
    if kind in ("portal", "project_team") and access is not None and kind in {c.value for c in access.choices}:
        changes["portal_access"] = kind
    if changes:
        records.update_record(conn, compiled, "person", person_id, changes, actor_id, history=f"Access to Tailor given ({ACCESS_KINDS[kind]})")


# -- the log --------------------------------------------------------------------------------------
def _log_rows(conn, compiled, admin, offset: int, limit: int, subject: str | None = None) -> list[dict]:
    query = sa.select(console_log, users.c.name.label("actor")).outerjoin(users, users.c.id == console_log.c.actor_id)
    if subject:
        query = query.where(console_log.c.subject.startswith(subject))
    zone = zone_of(compiled.model, admin)
    rows = conn.execute(query.order_by(console_log.c.id.desc()).offset(offset).limit(limit)).mappings()
    return [{**r, "when": when_text(r["at"], zone), "actor": r["actor"] or "the command line",
             "what": r["action"].split(".", 1)[1].replace("_", " ")} for r in rows]


@router.get("/admin/log", response_class=HTMLResponse)
def console_log_page(request: Request, user: Admin, conn: Conn, compiled: CompiledDep, page: str | None = None):
    total = conn.execute(sa.select(sa.func.count()).select_from(console_log)).scalar_one()
    pages = max(1, math.ceil(total / PER_PAGE))
    number = _page(page)
    if number > pages:
        return redirect(f"/admin/log?page={pages}")
    return render(request, "console/log.html", user=user, rows=_log_rows(conn, compiled, user, (number - 1) * PER_PAGE, PER_PAGE),
                  page=number, pages=pages, total=total)
