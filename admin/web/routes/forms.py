"""Generated forms: the list of forms staff fill in, a form page, and its submission."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from forms import submit as forms

from ...deps import (
    CompiledDep,
    Conn,
    CsrfForm,
    EngineDep,
    Permitted,
    ServicesDep,
    Staff,
)
from ...processes import announce_submission, started
from ..finders import options_for, record_or_404
from ..listing import in_sentence
from ..pages import flash, redirect, render
from ..pagewords import locale, said

router = APIRouter(include_in_schema=False)


def form_or_404(request: Request, compiled, name: str):
    if name not in compiled.model.forms:
        raise HTTPException(404, said(request, "There is no such form."))
    return compiled.model.forms[name]


@router.get("/forms", response_class=HTMLResponse)
def form_list(request: Request, user: Staff, compiled: CompiledDep):
    shown = [f for f in compiled.model.forms.values() if f.contact or not f.entity]
    return render(request, "forms/forms_list.html", user=user, forms=sorted(shown, key=lambda f: f.label))


@router.get("/forms/{name}", response_class=HTMLResponse)
def form_page(request: Request, name: str, user: Permitted("generate_tasks"), conn: Conn, compiled: CompiledDep, record: str = ""):
    form = form_or_404(request, compiled, name)
    rec = record_or_404(conn, compiled, form.entity, record) if form.entity and record else None
    if form.entity and rec is None:
        flash(request, said(request, "Open a %(thing)s's page and choose the form there.",
                            thing=in_sentence(locale(request), compiled.model.entities[form.entity].label)))
        return redirect("/")
    return render(request, "forms/form.html", user=user, layout=compiled.form_layouts[name], values={}, errors={},
                  options=options_for(conn, compiled, name, rec), record=rec, submission_id=str(uuid.uuid4()))


@router.post("/forms/{name}", response_class=HTMLResponse)
async def form_submit(request: Request, name: str, user: Permitted("generate_tasks"), data: CsrfForm, engine: EngineDep,
                      compiled: CompiledDep, services: ServicesDep, record: str = ""):
    form = form_or_404(request, compiled, name)
    values, errors = forms.parse(form, data)
    submission_id = str(data.get("submission_id") or uuid.uuid4())[:100]

    def write():
        with engine.connect() as conn:
            rec = record_or_404(conn, compiled, form.entity, record) if form.entity else None
        if form.entity and rec is None:
            raise HTTPException(404, said(request, "Open the record's page and choose the form there."))
        if errors:
            return rec, None, errors
        try:
            with engine.begin() as conn:
                return rec, forms.submit(conn, compiled, name, values, submission_id=submission_id, user=user,
                                         record_id=rec.id if rec else None), {}
        except forms.SubmissionInvalid as exc:
            return rec, None, exc.errors

    rec, result, problems = await run_in_threadpool(write)
    if problems:
        typed = {f.name: (data.getlist(f.name) if f.type == "multichoice" else data.get(f.name)) for f in form.fields}

        def again():
            with engine.connect() as conn:
                return render(request, "forms/form.html", user=user, status=422, layout=compiled.form_layouts[name], values=typed,
                              errors=problems, options=options_for(conn, compiled, name, rec), record=rec, submission_id=submission_id)

        return await run_in_threadpool(again)
    await started(services, compiled, result.starts)
    await announce_submission(services, form, result, values, user)
    flash(request, said(request, "%(form)s saved." if not result.replayed else "%(form)s was already saved.", form=form.label))
    return redirect(f"/records/{form.entity}/{rec.id}" if rec else "/")
