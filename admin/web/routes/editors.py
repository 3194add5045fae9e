"""The console's structured editors: fields of an entity (for all records, for a group, the rules for single-record
fields), the form builder and the process editor, each writing ordinary YAML into the draft's local pack (an overlay
on a base pack's definition, or a definition of its own) and showing it before it is saved; the process diagram of the
active and the draft version; and a preview of a form as staff will see it, for a role and a record.

Every save checks the whole draft as `tailor check` does; a change that brings a problem is not saved, and the form
comes back as it was typed with each problem at the input it belongs to (or, when it cannot be told, with its file and
line in the YAML shown beside the form). A draft that does not compile cannot be shown in them: each editor reads the
draft through `deps.EditableDraft` (a save through `deps.editable_draft`, in its transaction), which sends the admin
to the YAML editor to fix its problems first.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from engine import diagram, editing
from engine.build import humanise
from engine.errors import NOWHERE
from engine.model import Entity, Model, Party
from forms import widgets
from runtime import records, releases

from ...access import allowed
from ...deps import (
    PERMISSION_TEXT,
    CompiledDep,
    Conn,
    CsrfForm,
    EditableDraft,
    EngineDep,
    Permitted,
    editable_draft,
)
from .. import drafting, finders, recordforms
from .. import stepeditor as steps
from ..fieldeditor import (
    FOR_TYPES,
    SIMPLE,
    TYPES,
    FieldForm,
    GroupForm,
    RulesForm,
    field_input,
    group_input,
    rules_input,
    with_field,
    with_group,
    with_rules,
    without_field,
)
from ..formbuilder import ACTION_KINDS, Builder
from ..pages import flash, redirect, render
from ..stepeditor import STRATEGIES, EscalationRow, StepForm

router = APIRouter(include_in_schema=False)
Page = Callable[[int, dict | None, Any], Any]  # an editor's page again: (status, errors, edit)
Admin = Permitted("admin")


def _entity(model: Model, name: str) -> Entity:
    if name not in model.entities:
        raise HTTPException(404, "There is no such kind of record.")
    return model.entities[name]


def _origin(draft: drafting.Draft, kind: str, name: str) -> str:
    """Where a definition comes from, in words: a base pack's (changed by an overlay) or this installation's own."""
    d = drafting.table(draft.base_model, kind).get(name) if draft.base_model else None
    return f"the {d.pack} pack" if d is not None else "this installation"


def _changes(before: Model | None, after) -> str:
    words = releases.summary(before, after.model) if before is not None and after is not None else []
    return "; ".join(words) if words else "the change"


async def _in_draft(request: Request, engine, compiled, work: Callable[[Any, drafting.Draft, Model], Any]):
    """`work(conn, draft, model)` in one transaction off the event loop, on a draft the editors can show (else
    `DraftHasProblems`: to the YAML editor, as the editors' pages)."""
    def run():
        with engine.begin() as conn:
            return work(conn, *editable_draft(request, conn, compiled))

    return await run_in_threadpool(run)


def _write(request: Request, conn, draft: drafting.Draft, user: dict, page: Page, kind: str, name: str, want: dict | None,
           to_input, *, save: bool, saved: Callable[[drafting.Edit], str], to: str, moved: tuple[str, ...] = ()):
    """Write `want` into the draft and check it: saved (with `saved(edit)` flashed, then to `to`) when `save` and it is
    fine; otherwise the editor's page again, with the YAML and each problem at its input."""
    try:
        edit = drafting.write(draft, kind, name, want, to_input, moved=moved)
    except editing.CannotExpress as exc:
        return page(422, {"": str(exc)}, None)
    if save and edit.ok:
        drafting.save(conn, draft, edit, user["id"])
        flash(request, saved(edit))
        return redirect(to)
    return page(422 if not edit.ok else 200, edit.by_input(), edit)


# -- the index ------------------------------------------------------------------------------------
@router.get("/admin/editors", response_class=HTMLResponse)
def editors_home(request: Request, user: Admin, conn: Conn, compiled: CompiledDep):
    draft = drafting.open_draft(request, conn, compiled)
    model = draft.model or compiled.model
    return render(request, "console/editors/index.html", user=user, draft=draft, broken=draft.model is None, model=model,
                  entities=sorted(model.entities.values(), key=lambda e: e.plural),
                  forms=sorted(model.forms.values(), key=lambda f: f.label),
                  processes=sorted(model.processes.values(), key=lambda p: p.label),
                  origin=lambda kind, name: _origin(draft, kind, name))


# -- fields of an entity ----------------------------------------------------------------------------
@router.get("/admin/editors/entities/{entity}", response_class=HTMLResponse)
def entity_page(request: Request, entity: str, user: Admin, editable: EditableDraft):
    draft, model = editable
    e = _entity(model, entity)
    return render(request, "console/editors/entity.html", user=user, entity=e, types=TYPES, origin=_origin(draft, "entity", entity),
                  sections=[(s.title, [e.field(n) for n in s.fields if e.field(n)]) for s in e.pages.sections]
                  if e.pages.sections else [(e.label, list(e.fields))], rules=e.record_fields, draft=draft)


def _field_page(request, user, draft, e: Entity, form: FieldForm, *, status=200, errors=None, edit=None, removing=False):
    model = draft.model
    return render(request, "console/editors/field.html", user=user, status=status, entity=e, form=form, errors=errors or {},
                  edit=edit, types=TYPES, for_types=FOR_TYPES, removing=removing,
                  entity_options=[(x.name, x.label) for x in sorted(model.entities.values(), key=lambda x: x.label)], groups=e.groups,
                  section_titles=[s.title for s in e.pages.sections], origin=_origin(draft, "entity", e.name),
                  field_of_local=getattr(e.field(form.original) or _group_field(e, form.original), "pack", "") == releases.LOCAL)


def _group_field(e: Entity, name: str):
    return next((f for g in e.groups for f in g.fields if f.name == name), None)


@router.get("/admin/editors/entities/{entity}/fields", response_class=HTMLResponse)
def field_editor(request: Request, entity: str, user: Admin, editable: EditableDraft, field: str = "", group: str = ""):
    draft, model = editable
    e = _entity(model, entity)
    if field:
        f = e.field(field) or _group_field(e, field)
        if f is None:
            raise HTTPException(404, f"{e.plural} have no field named {field}.")
        form = FieldForm.of(f, e)
    else:
        scope = f"group:{group}" if group in {g.name for g in e.groups} else "new-group" if group == "new" else "all"
        form = FieldForm(scope=scope, section=e.pages.sections[-1].title if e.pages.sections else "")
    return _field_page(request, user, draft, e, form)


@router.post("/admin/editors/entities/{entity}/fields", response_class=HTMLResponse)
async def field_save(request: Request, entity: str, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    """Show the YAML a field change writes (op=preview), or save it to the draft (op=save; op=remove-save takes a field
    this installation added out again)."""
    op = str(data.get("op", "preview"))
    form = FieldForm.posted(data)
    removing = op in ("remove", "remove-save")

    def work(conn, draft, model):
        e = _entity(model, entity)
        errors: dict[str, str] = {}
        if removing:
            f = e.field(form.original) or _group_field(e, form.original)
            if f is None or f.pack != releases.LOCAL:
                raise HTTPException(404, "Only a field this installation added can be taken out here.")
            want = without_field(e, form.original)
        else:
            want = with_field(e, form, errors)

        def page(status, errors, edit):
            return _field_page(request, user, draft, e, form, status=status, errors=errors, edit=edit, removing=removing and edit is not None)

        if errors:
            return page(422, errors, None)
        return _write(request, conn, draft, user, page, "entity", entity, want, field_input(form.original or form.name),
                      save=op in ("save", "remove-save"), to=f"/admin/editors/entities/{entity}",
                      saved=lambda edit: f"Saved to the draft: {_changes(draft.model, edit.compiled)}. It is used once the draft is activated.")

    return await _in_draft(request, engine, compiled, work)


@router.get("/admin/editors/entities/{entity}/record-fields", response_class=HTMLResponse)
def rules_editor(request: Request, entity: str, user: Admin, editable: EditableDraft):
    model = editable.model
    e = _entity(model, entity)
    return render(request, "console/editors/rules.html", user=user, entity=e, form=RulesForm.of(e.record_fields), errors={}, edit=None,
                  types=TYPES, simple=SIMPLE)


@router.post("/admin/editors/entities/{entity}/record-fields", response_class=HTMLResponse)
async def rules_save(request: Request, entity: str, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    op = str(data.get("op", "preview"))
    form = RulesForm.posted(data)

    def work(conn, draft, model):
        e = _entity(model, entity)
        errors: dict[str, str] = {}
        want = with_rules(e, form, errors)

        def page(status, errors, edit):
            return render(request, "console/editors/rules.html", user=user, entity=e, form=form, errors=errors, edit=edit, types=TYPES,
                          simple=SIMPLE, status=status)

        if errors:
            return page(422, errors, None)
        return _write(request, conn, draft, user, page, "entity", entity, want, rules_input, save=op == "save",
                      to=f"/admin/editors/entities/{entity}",
                      saved=lambda edit: f"Saved to the draft: the rules for single-record fields of {e.plural.lower()}.")

    return await _in_draft(request, engine, compiled, work)


@router.get("/admin/editors/entities/{entity}/groups/{group}", response_class=HTMLResponse)
def group_editor(request: Request, entity: str, group: str, user: Admin, editable: EditableDraft):
    draft, model = editable
    e = _entity(model, entity)
    g = next((x for x in e.groups if x.name == group), None)
    if g is None:
        raise HTTPException(404, f"{e.plural} have no group named {group}.")
    form = GroupForm(g.name, g.label if g.label != humanise(g.name) else "", g.description, g.when.source)
    return render(request, "console/editors/group.html", user=user, entity=e, form=form, errors={}, edit=None,
                  fixed=_group_origin(draft, e, group))


def _group_origin(draft: drafting.Draft, e: Entity, group: str) -> str:
    """The pack a group comes from if it is not this installation's (its condition then stays), else ''."""
    base = draft.base_model.entities.get(e.name) if draft.base_model else None
    return base.pack if base is not None and any(g.name == group for g in base.groups) else ""


@router.post("/admin/editors/entities/{entity}/groups/{group}", response_class=HTMLResponse)
async def group_save(request: Request, entity: str, group: str, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    """A group's heading, description and condition: shown as YAML (op=preview) or saved (op=save)."""
    op = str(data.get("op", "preview"))
    form = GroupForm.posted(data, group)

    def work(conn, draft, model):
        e = _entity(model, entity)
        fixed = _group_origin(draft, e, group)

        def page(status, errors, edit):
            return render(request, "console/editors/group.html", user=user, entity=e, form=form, errors=errors, edit=edit,
                          fixed=fixed, status=status)

        errors: dict[str, str] = {}
        want = with_group(e, form, errors)
        if errors:
            return page(422, errors, None)
        return _write(request, conn, draft, user, page, "entity", entity, want, group_input, save=op == "save",
                      to=f"/admin/editors/entities/{entity}",
                      saved=lambda edit: f"Saved to the draft: the group {form.label or humanise(group)} of {e.plural.lower()}.")

    return await _in_draft(request, engine, compiled, work)


# -- the form builder -------------------------------------------------------------------------------
def _forms(draft: drafting.Draft, model: Model, name: str):
    """(the draft's form, the base pack's form it is an overlay on, or None), or 404."""
    if name not in model.forms:
        raise HTTPException(404, "There is no such form.")
    base = draft.base_model.forms.get(name) if draft.base_model else None
    return model.forms[name], base


def _builder_page(request, user, model: Model, b: Builder, *, status=200, errors=None, edit=None):
    entities = sorted(model.entities.values(), key=lambda e: (not e.customer, e.label))
    errors = errors or {}
    return render(request, "console/editors/form.html", user=user, status=status, b=b, errors=errors, edit=edit, types=TYPES,
                  has_errors=lambda prefix: any(k.startswith(prefix) for k in errors),
                  for_types=FOR_TYPES, entity_options=[(e.name, e.label) for e in entities], kinds=ACTION_KINDS,
                  entity_labels={e.name: e.label for e in entities},
                  processes=sorted(model.processes.values(), key=lambda p: p.label), entities=entities)


@router.get("/admin/editors/forms/new", response_class=HTMLResponse)
def form_new(request: Request, user: Admin, editable: EditableDraft):
    model = editable.model
    first = next((e.name for e in model.entities.values() if e.customer), next(iter(model.entities), ""))
    return _builder_page(request, user, model, Builder.new(first))


@router.get("/admin/editors/forms/{name}", response_class=HTMLResponse)
def form_builder(request: Request, name: str, user: Admin, editable: EditableDraft):
    draft, model = editable
    form, base = _forms(draft, model, name)
    return _builder_page(request, user, model, Builder.of(form, base))


@router.post("/admin/editors/forms/{name}", response_class=HTMLResponse)
async def form_builder_post(request: Request, name: str, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    """A button of the builder: add, move or remove a row (the page comes back, nothing saved), show the YAML (op=preview)
    or save to the draft (op=save). `name` is `new` for a new form."""
    op = str(data.get("op", "preview"))[:40]

    def work(conn, draft, model):
        existing = Builder.of(*_forms(draft, model, name)) if name != "new" else None
        b = Builder.posted(data, existing)
        if op not in ("preview", "save"):
            b.apply(op)
            return _builder_page(request, user, model, b, errors={"": b.message} if b.message else None)

        def page(status, errors, edit):
            return _builder_page(request, user, model, b, status=status, errors=errors, edit=edit)

        errors: dict[str, str] = {}
        current = editing.data_of(model.forms[name]) if name != "new" else None
        want = b.data(current, errors, set(model.forms) - {name})
        if errors:
            return page(422, errors, None)
        return _write(request, conn, draft, user, page, "form", b.name, want, b.to_input, save=op == "save",
                      to=f"/admin/editors/forms/{b.name}",
                      saved=lambda edit: f"Saved to the draft: {_changes(draft.model, edit.compiled)}. Staff see it once the draft is activated.")

    return await _in_draft(request, engine, compiled, work)


# -- the process editor ---------------------------------------------------------------------------------
def _process(model: Model, name: str):
    if name not in model.processes:
        raise HTTPException(404, "There is no such process.")
    return model.processes[name]


@router.get("/admin/editors/processes/{name}", response_class=HTMLResponse)
def process_editor(request: Request, name: str, user: Admin, editable: EditableDraft):
    draft, model = editable
    p = _process(model, name)
    data = editing.data_of(p)
    return render(request, "console/editors/process.html", user=user, process=p, data=data, lists=steps.lists(data),
                  svg=diagram.svg(p, id_prefix="draft"), outline=diagram.outline(p), origin=_origin(draft, "process", name),
                  humanise=humanise, title_text=diagram.title_text, who=_who)


def _who(party: str) -> str:
    """A party as written ('group:sales') in words ('group Sales')."""
    kind, _, name = party.partition(":")
    return diagram.party_text(Party(kind, name or None, NOWHERE))


def _step_page(request, user, model: Model, p, data: dict, form: StepForm, *, status=200, errors=None, edit=None, removing=False):
    after = edit.compiled.model.processes.get(p.name) if edit is not None and edit.compiled is not None else None
    return render(request, "console/editors/step.html", user=user, status=status, process=p, form=form, errors=errors or {}, edit=edit,
                  removing=removing, positions=steps.positions(data, form.original), strategies=STRATEGIES,
                  forms=sorted((f for f in model.forms.values() if not f.contact), key=lambda f: f.label),
                  earlier=sorted(steps.all_ids(data) - {form.original}), parties=_parties(model),
                  svg=diagram.svg(after, id_prefix="after") if after is not None else "")


def _parties(model: Model) -> list[tuple[str, str]]:
    """What the assignee and approver boxes suggest."""
    fixed = [("owner", "the record's owner"), ("assignee", "the assignee"), ("manager", "the assignee's manager"),
             ("project_manager", "the project manager")]
    return fixed + [(f"group:{g.name}", f"group {g.label}") for g in model.groups.values()] + \
        [(f"role:{r.name}", f"role {r.label}") for r in model.roles.values()]


@router.get("/admin/editors/processes/{name}/steps/new", response_class=HTMLResponse)
def step_new(request: Request, name: str, user: Admin, editable: EditableDraft, after: str = "", list: str = ""):
    model = editable.model
    p = _process(model, name)
    data = editing.data_of(p)
    position = f"{list}|" if list in {q for q, _, _ in steps.lists(data)} else "|"
    if after:  # after the step, in its list
        found = steps.locate(data, after)
        position = f"{found[0]}|{after}" if found else "|"
    return _step_page(request, user, model, p, data, StepForm(position=position, escalations=[EscalationRow()]))


@router.get("/admin/editors/processes/{name}/steps/{step_id}", response_class=HTMLResponse)
def step_editor(request: Request, name: str, step_id: str, user: Admin, editable: EditableDraft):
    model = editable.model
    p = _process(model, name)
    data = editing.data_of(p)
    found = steps.locate(data, step_id)
    if found is None:
        raise HTTPException(404, f"The process {p.label} has no step {step_id}.")
    path, i = found
    step = {q: s for q, _, s in steps.lists(data)}[path][i]
    form = StepForm.of(step, steps.position_of(data, step_id))
    if form.kind == "task":
        form.escalations.append(EscalationRow())  # a blank row to add a level
    return _step_page(request, user, model, p, data, form)


@router.post("/admin/editors/processes/{name}/steps", response_class=HTMLResponse)
async def step_save(request: Request, name: str, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    """Show the YAML a step change writes (op=preview), save it (op=save), add a row to the ladder or the reminders
    (op=add-escalation, op=add-reminder: nothing saved), or take the step out (op=remove shows it, op=remove-save saves)."""
    op = str(data.get("op", "preview"))[:40]
    form = StepForm.posted(data)
    removing = op in ("remove", "remove-save")

    def work(conn, draft, model):
        p = _process(model, name)
        current = editing.data_of(p)
        if op == "add-escalation":
            form.escalations.append(EscalationRow())
            return _step_page(request, user, model, p, current, form)
        if op == "add-reminder":
            form.reminders.append("")
            return _step_page(request, user, model, p, current, form)

        def page(status, errors, edit):
            return _step_page(request, user, model, p, current, form, status=status, errors=errors, edit=edit,
                              removing=removing and edit is not None)

        errors: dict[str, str] = {}
        if removing:
            if steps.locate(current, form.original) is None:
                raise HTTPException(404, f"The process {p.label} has no step {form.original}.")
            want = steps.without_step(current, form.original)
        else:
            want = steps.with_step(current, form, errors)
        if errors:
            return page(422, errors, None)
        return _write(request, conn, draft, user, page, "process", name, want, form.to_input, save=op in ("save", "remove-save"),
                      to=f"/admin/editors/processes/{name}", moved=(form.original,) if form.original else (),
                      saved=lambda edit: f"Saved to the draft: {_changes(draft.model, edit.compiled)}. New runs of the process use it "
                                         f"once the draft is activated; running ones keep their version.")

    return await _in_draft(request, engine, compiled, work)


# -- the diagram of the active and the draft version ------------------------------------------------------
@router.get("/admin/processes/{name}", response_class=HTMLResponse)
def process_diagram(request: Request, name: str, user: Admin, conn: Conn, compiled: CompiledDep):
    draft = drafting.open_draft(request, conn, compiled)
    active = compiled.model.processes.get(name)
    drafted = draft.model.processes.get(name) if draft.model is not None else None
    if active is None and drafted is None:
        raise HTTPException(404, "There is no such process.")
    changed = drafted is not None and (active is None or editing.data_of(active) != editing.data_of(drafted))
    versions = []
    if active is not None:
        versions.append({"key": "active", "heading": "Active version", "process": active, "svg": diagram.svg(active, id_prefix="active"),
                         "outline": diagram.outline(active), "note": "What new runs use now."})
    if changed:
        versions.append({"key": "draft", "heading": "Draft version", "process": drafted, "svg": diagram.svg(drafted, id_prefix="draft"),
                         "outline": diagram.outline(drafted), "note": "What new runs will use once the draft is activated."})
    return render(request, "console/editors/diagram.html", user=user, process_name=name, versions=versions, changed=changed,
                  broken=draft.model is None, label=(drafted or active).label, trigger=diagram.trigger_text(drafted or active))


# -- the preview of a form as staff will see it -------------------------------------------------------------
def _preview_options(conn, active, model: Model, fields, entity_name: str | None, rec) -> dict[str, list]:
    """What each select of the preview offers: the draft's choices and groups, and records and staff as they are now.
    Records are read through the active configuration (the database has its tables, not yet the draft's)."""
    out: dict[str, list] = {}
    scope = active.model.entities.get(entity_name) if entity_name else None
    for f in fields:
        if f.choices:
            out[f.name] = [(c.value, c.label) for c in f.choices]
        elif f.type == "reference" and f.entity in active.model.entities:
            if scope is not None:
                out[f.name] = recordforms.record_options(conn, active, scope, f, dict(rec.data) if rec else {}, rec.id if rec else None)
            else:
                out[f.name] = [(r.id, r.title) for r in records.search_records(conn, active, f.entity, {}, sort="title", page_size=50).items]
        elif f.type == "user":
            out[f.name] = recordforms.staff_options(conn, model)
        elif f.type == "group":
            out[f.name] = [(g.name, g.label) for g in model.groups.values()]
    return out


@router.get("/admin/preview", response_class=HTMLResponse)
def preview(request: Request, user: Admin, conn: Conn, compiled: CompiledDep, show: str = "", role: str = "", record: str = "",
            q: str = ""):
    """A form (or an entity's edit page) from the draft, as someone of `role` sees it for `record`."""
    draft = drafting.open_draft(request, conn, compiled)
    target = draft.compiled or compiled
    model = target.model
    kind, _, name = show.partition(":")
    if show and not ((kind == "form" and name in model.forms) or (kind == "entity" and name in model.entities)):
        raise HTTPException(404, "The draft has no such form or kind of record.")
    role = role if role in model.roles else ("staff" if "staff" in model.roles else next(iter(model.roles), ""))
    ctx: dict = {"show": show, "role": role, "q": q[:100], "record_id": record, "from_draft": draft.compiled is not None,
                 "problems": len(draft.problems), "shows": [(f"entity:{e.name}", f"{e.label}: the new and edit page")
                                                           for e in sorted(model.entities.values(), key=lambda e: e.label)]
                 + [(f"form:{f.name}", f"Form: {f.label}") for f in sorted(model.forms.values(), key=lambda f: f.label)],
                 "roles": [(r.name, r.label) for r in model.roles.values()], "records": [], "entity": None, "rec": None}
    if show:
        form = model.forms.get(name) if kind == "form" else None
        entity_name = name if kind == "entity" else form.entity
        e = model.entities.get(entity_name) if entity_name else None
        ctx["entity"] = e
        readable = entity_name in compiled.model.entities
        if e is not None and readable:
            filters = {"title": {"contains": q.strip()}} if q.strip() else {}
            ctx["records"] = [(r.id, r.title) for r in records.search_records(conn, compiled, entity_name, filters, sort="title",
                                                                              page_size=50).items]
        rec = finders.record_or_404(conn, compiled, entity_name, record) if record and readable else None
        ctx["rec"] = rec
        if rec is not None and rec.id not in {i for i, _ in ctx["records"]}:
            ctx["records"].insert(0, (rec.id, rec.title))
        viewer = {"id": user["id"], "roles": [role]}
        if form is not None:
            permission = "portal" if form.portal and not allowed(model, viewer, "access") else "generate_tasks"
            ctx.update(layout=target.form_layouts[name], may=allowed(model, viewer, permission) and (permission != "portal" or form.portal),
                       needs=PERMISSION_TEXT.get(permission, permission), kind="form", label=form.label,
                       options=_preview_options(conn, compiled, model, form.fields, entity_name, rec),
                       for_record=e is not None)
        else:
            holding = recordforms.holding_groups(e, {}, rec)
            names = widgets.Names(conn, compiled, widgets.zone_of(model, user))
            values = {k: v for k, v in (rec.data if rec else recordforms.defaults(e, holding)).items() if k in {f.name for f in e.all_fields()}}
            names.prefetch([f for f in e.all_fields() if f.entity in compiled.model.entities or f.type == "user"], [values])
            sections = recordforms.sections(e, model, holding, rec.id if rec else None)
            ctx.update(kind="entity", label=e.label, sections=[s for s in sections if s.shown],
                       hidden_groups=[g for g in e.groups if g.name not in holding], may=allowed(model, viewer, "edit_records"),
                       needs=PERMISSION_TEXT["edit_records"], values=recordforms.input_values(e, values, names),
                       options=_preview_options(conn, compiled, model, e.all_fields(), entity_name, rec))
    return render(request, "console/editors/preview.html", user=user, **ctx)
