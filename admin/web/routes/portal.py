"""The customer portal: a customer's people see their company's requests and submit portal forms.

A portal user sees and names only their own company's records: every choice offered and every
reference posted is checked against that company.
"""
from __future__ import annotations

import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from engine.compiler import CompiledModel
from forms import submit as forms
from forms.widgets import zone_of
from runtime import records

from ...deps import CompiledDep, Conn, CsrfForm, EngineDep, ServicesDep, require
from ...processes import announce_submission, started
from ..finders import record_or_404
from ..pages import due_text, flash, redirect, render

router = APIRouter(include_in_schema=False)


def portal_user(user: Annotated[dict, require("portal")]) -> dict:
    """The logged-in portal user, linked to their company."""
    if not user["company_id"]:
        raise HTTPException(403, "Your portal account is not linked to a company yet; ask your contact to link it.")
    return user


PortalUser = Annotated[dict, Depends(portal_user)]


def company_requests(conn: sa.Connection, compiled: CompiledModel, company_id: int, zone) -> list[dict]:
    """The company's support requests, newest first, with status labels."""
    if "support_request" not in compiled.model.entities:
        return []
    found = records.search_records(conn, compiled, "support_request", {"company": company_id}, sort="-created_at", page_size=100)
    status = compiled.model.entities["support_request"].field("status")
    labels = {c.value: c.label for c in status.choices} if status else {}
    return [{"title": r.title, "status": labels.get(r.data.get("status"), r.data.get("status") or ""), "created": due_text(r.created_at, zone)}
            for r in found.items]


def portal_options(conn: sa.Connection, compiled: CompiledModel, name: str, user: dict) -> dict[str, list]:
    """Only the portal user's own company's records are offered (people, contracts, ...)."""
    model = compiled.model
    out: dict[str, list] = {}
    for f in model.forms[name].fields:
        if f.type == "reference":
            target = model.entities[f.entity]
            if f.entity == "company":
                out[f.name] = [(user["company_id"], record_or_404(conn, compiled, "company", user["company_id"]).title)]
            elif any(x.name == "company" and x.type == "reference" for x in target.fields):
                found = records.search_records(conn, compiled, f.entity, {"company": user["company_id"]}, sort="title", page_size=200)
                out[f.name] = [(r.id, r.title) for r in found.items]
            else:
                out[f.name] = forms.choices_for(compiled, conn, f, [])
        elif f.type in ("user", "group"):
            out[f.name] = []
        else:
            out[f.name] = forms.choices_for(compiled, conn, f, [])
    return out


def portal_form_or_404(compiled: CompiledModel, name: str):
    if name not in compiled.model.forms or not compiled.model.forms[name].portal:
        raise HTTPException(404, "There is no such form in the portal.")
    return compiled.model.forms[name]


@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request, user: PortalUser, conn: Conn, compiled: CompiledDep):
    company = record_or_404(conn, compiled, "company", user["company_id"])
    return render(request, "portal/portal.html", user=user, company=company, forms=[f for f in compiled.model.forms.values() if f.portal],
                  requests=company_requests(conn, compiled, user["company_id"], zone_of(compiled.model, user)))


@router.get("/portal/forms/{name}", response_class=HTMLResponse)
def portal_form(request: Request, name: str, user: PortalUser, conn: Conn, compiled: CompiledDep):
    portal_form_or_404(compiled, name)
    return render(request, "forms/form.html", user=user, layout=compiled.form_layouts[name], values={}, errors={},
                  options=portal_options(conn, compiled, name, user), record=None, submission_id=str(uuid.uuid4()),
                  action=f"/portal/forms/{name}")


@router.post("/portal/forms/{name}", response_class=HTMLResponse)
async def portal_submit(request: Request, name: str, user: PortalUser, data: CsrfForm, engine: EngineDep, compiled: CompiledDep,
                        services: ServicesDep):
    form = portal_form_or_404(compiled, name)
    values, errors = forms.parse(form, data)
    submission_id = str(data.get("submission_id") or uuid.uuid4())[:100]

    def write():
        with engine.connect() as conn:
            offered = portal_options(conn, compiled, name, user)
        for f in form.fields:  # a crafted POST must not name another company's records
            if f.type == "reference" and values.get(f.name) is not None and values[f.name] not in {v for v, _ in offered[f.name]}:
                errors[f.name] = f"{f.label} must be one of the listed records"
        if errors:
            return offered, None, errors
        try:
            with engine.begin() as conn:
                return offered, forms.submit(conn, compiled, name, values, submission_id=submission_id, user=user,
                                             record_id=user["company_id"] if form.entity == "company" else None), {}
        except forms.SubmissionInvalid as exc:
            return offered, None, exc.errors

    offered, result, problems = await run_in_threadpool(write)
    if problems:
        typed = {f.name: data.get(f.name) for f in form.fields}
        return render(request, "forms/form.html", user=user, status=422, layout=compiled.form_layouts[name], values=typed, errors=problems,
                      options=offered, record=None, submission_id=submission_id, action=f"/portal/forms/{name}")
    await started(services, compiled, result.starts)
    await announce_submission(services, form, result, values, user)
    flash(request, "Thank you: we have your request.")
    return redirect("/portal")
