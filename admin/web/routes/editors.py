"""The console's structured editors: fields of an entity (for all records, for a group, the rules for single-record
fields), the form builder and the process editor, each writing ordinary YAML into the draft's local pack (an overlay
on a base pack's definition, or a definition of its own) and showing it before it is saved; the process diagram of the
active and the draft version; and a preview of a form as staff will see it, for a role and a record.

Every save checks the whole draft as `tailor check` does; a change that brings a problem is not saved, and the form
comes back as it was typed with each problem at the input it belongs to (or, when it cannot be told, with its file and
line in the YAML shown beside the form).
"""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from engine import editing
from engine.model import Entity, Model
from runtime import releases

from ...deps import CompiledDep, Conn, CsrfForm, EngineDep, Permitted
from .. import drafting
from ..formbuilder import ACTION_KINDS, Builder
from ..fieldeditor import FOR_TYPES, SIMPLE, TYPES, FieldForm, RulesForm, field_input, rules_input, with_field, with_rules, without_field
from ..pages import flash, redirect, render

router = APIRouter(include_in_schema=False)
Admin = Permitted("admin")


def _usable(request: Request, draft: drafting.Draft) -> Model:
    """The draft's model. While the draft has problems the editors cannot show it: the admin is sent to the YAML editor,
    where every problem is listed at its line."""
    if draft.model is None:
        n = len(draft.problems)
        flash(request, f"The draft has {n} problem{'s' if n != 1 else ''}: fix {'them' if n != 1 else 'it'} here before using the "
                       f"structured editors.")
        raise HTTPException(303, "The draft has problems: fix them in the YAML editor first.", headers={"Location": "/admin/draft#problems"})
    return draft.model


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
def entity_page(request: Request, entity: str, user: Admin, conn: Conn, compiled: CompiledDep):
    draft = drafting.open_draft(request, conn, compiled)
    e = _entity(_usable(request, draft), entity)
    return render(request, "console/editors/entity.html", user=user, entity=e, types=TYPES, origin=_origin(draft, "entity", entity),
                  sections=[(s.title, [e.field(n) for n in s.fields if e.field(n)]) for s in e.pages.sections]
                  if e.pages.sections else [(e.label, list(e.fields))], rules=e.record_fields, draft=draft)


def _field_page(request, user, draft, e: Entity, form: FieldForm, *, status=200, errors=None, edit=None, removing=False):
    model = draft.model
    return render(request, "console/editors/field.html", user=user, status=status, entity=e, form=form, errors=errors or {},
                  edit=edit, types=TYPES, for_types=FOR_TYPES, removing=removing,
                  entity_options=[(x.name, x.label) for x in sorted(model.entities.values(), key=lambda x: x.label)], groups=e.groups,
                  section_titles=[s.title for s in e.pages.sections], origin=_origin(draft, "entity", e.name),
                  field_of_local=bool(form.original) and (e.field(form.original) or _group_field(e, form.original)).pack == releases.LOCAL)


def _group_field(e: Entity, name: str):
    return next((f for g in e.groups for f in g.fields if f.name == name), None)


@router.get("/admin/editors/entities/{entity}/fields", response_class=HTMLResponse)
def field_editor(request: Request, entity: str, user: Admin, conn: Conn, compiled: CompiledDep, field: str = "", group: str = ""):
    draft = drafting.open_draft(request, conn, compiled)
    e = _entity(_usable(request, draft), entity)
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

    def work():
        with engine.begin() as conn:
            draft = drafting.open_draft(request, conn, compiled)
            e = _entity(_usable(request, draft), entity)
            errors: dict[str, str] = {}
            removing = op in ("remove", "remove-save")
            if removing:
                f = e.field(form.original) or _group_field(e, form.original)
                if f is None or f.pack != releases.LOCAL:
                    raise HTTPException(404, "Only a field this installation added can be taken out here.")
                want = without_field(e, form.original)
            else:
                want = with_field(e, form, errors)
            if errors:
                return _field_page(request, user, draft, e, form, status=422, errors=errors)
            try:
                edit = drafting.write(draft, "entity", entity, want, field_input(form.original or form.name))
            except editing.CannotExpress as exc:
                return _field_page(request, user, draft, e, form, status=422, errors={"": str(exc)})
            if op in ("save", "remove-save") and edit.ok:
                drafting.save(conn, draft, edit, user["id"])
                flash(request, f"Saved to the draft: {_changes(draft.model, edit.compiled)}. It is used once the draft is activated.")
                return redirect(f"/admin/editors/entities/{entity}")
            return _field_page(request, user, draft, e, form, status=422 if not edit.ok else 200, errors=edit.by_input(), edit=edit,
                               removing=removing)

    return await run_in_threadpool(work)


@router.get("/admin/editors/entities/{entity}/record-fields", response_class=HTMLResponse)
def rules_editor(request: Request, entity: str, user: Admin, conn: Conn, compiled: CompiledDep):
    draft = drafting.open_draft(request, conn, compiled)
    e = _entity(_usable(request, draft), entity)
    return render(request, "console/editors/rules.html", user=user, entity=e, form=RulesForm.of(e.record_fields), errors={}, edit=None,
                  types=TYPES, simple=SIMPLE)


@router.post("/admin/editors/entities/{entity}/record-fields", response_class=HTMLResponse)
async def rules_save(request: Request, entity: str, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    op = str(data.get("op", "preview"))
    form = RulesForm.posted(data)

    def work():
        with engine.begin() as conn:
            draft = drafting.open_draft(request, conn, compiled)
            e = _entity(_usable(request, draft), entity)
            errors: dict[str, str] = {}
            want = with_rules(e, form, errors)
            page = lambda status, errors, edit: render(request, "console/editors/rules.html", user=user, entity=e, form=form,  # noqa: E731
                                                       errors=errors, edit=edit, types=TYPES, simple=SIMPLE, status=status)
            if errors:
                return page(422, errors, None)
            edit = drafting.write(draft, "entity", entity, want, rules_input)
            if op == "save" and edit.ok:
                drafting.save(conn, draft, edit, user["id"])
                flash(request, f"Saved to the draft: the rules for single-record fields of {e.plural.lower()}.")
                return redirect(f"/admin/editors/entities/{entity}")
            return page(422 if not edit.ok else 200, edit.by_input(), edit)

    return await run_in_threadpool(work)


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
def form_new(request: Request, user: Admin, conn: Conn, compiled: CompiledDep):
    draft = drafting.open_draft(request, conn, compiled)
    model = _usable(request, draft)
    first = next((e.name for e in model.entities.values() if e.customer), next(iter(model.entities), ""))
    return _builder_page(request, user, model, Builder.new(first))


@router.get("/admin/editors/forms/{name}", response_class=HTMLResponse)
def form_builder(request: Request, name: str, user: Admin, conn: Conn, compiled: CompiledDep):
    draft = drafting.open_draft(request, conn, compiled)
    model = _usable(request, draft)
    form, base = _forms(draft, model, name)
    return _builder_page(request, user, model, Builder.of(form, base))


@router.post("/admin/editors/forms/{name}", response_class=HTMLResponse)
async def form_builder_post(request: Request, name: str, user: Admin, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    """A button of the builder: add, move or remove a row (the page comes back, nothing saved), show the YAML (op=preview)
    or save to the draft (op=save). `name` is `new` for a new form."""
    op = str(data.get("op", "preview"))[:40]

    def work():
        with engine.begin() as conn:
            draft = drafting.open_draft(request, conn, compiled)
            model = _usable(request, draft)
            existing = Builder.of(*_forms(draft, model, name)) if name != "new" else None
            b = Builder.posted(data, existing)
            if op not in ("preview", "save"):
                b.apply(op)
                return _builder_page(request, user, model, b, errors={"": b.message} if b.message else None)
            errors: dict[str, str] = {}
            current = editing.data_of(model.forms[name]) if name != "new" else None
            want = b.data(current, errors, set(model.forms) - {name})
            if errors:
                return _builder_page(request, user, model, b, status=422, errors=errors)
            try:
                edit = drafting.write(draft, "form", b.name, want, b.to_input)
            except editing.CannotExpress as exc:
                return _builder_page(request, user, model, b, status=422, errors={"": str(exc)})
            if op == "save" and edit.ok:
                drafting.save(conn, draft, edit, user["id"])
                flash(request, f"Saved to the draft: {_changes(draft.model, edit.compiled)}. Staff see it once the draft is activated.")
                return redirect(f"/admin/editors/forms/{b.name}")
            return _builder_page(request, user, model, b, status=422 if not edit.ok else 200, errors=edit.by_input(), edit=edit)

    return await run_in_threadpool(work)
