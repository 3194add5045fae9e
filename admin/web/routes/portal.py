"""The customer portal: a customer's people see their company's requests, follow and answer each one, and submit
portal forms.

A portal user sees and names only their own company's records: every choice offered and every
reference posted is checked against that company; another company's request is 'not found'.
What a request's page shows is `admin/web/portalview.py`; writing a reply is `runtime.conversation`.
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
from runtime.conversation import ReplyRefused, add_reply

from ...deps import CompiledDep, Conn, CsrfForm, EngineDep, ServicesDep, require
from ...processes import announce_submission, started
from .. import portalview
from ..finders import record_or_404
from ..pages import flash, redirect, render
from ..pagewords import locale, said

router = APIRouter(include_in_schema=False)


def linked_user(request: Request, user: Annotated[dict, require("portal")]) -> dict:
    """The logged-in portal user, linked to their company: every portal page but the home needs one."""
    if not user["company_id"]:
        raise HTTPException(403, said(request, "Your portal account is not linked to a company yet; ask your contact to link it."))
    return user


PortalUser = Annotated[dict, require("portal")]  # the portal home: it says so when the account is not linked yet
LinkedUser = Annotated[dict, Depends(linked_user)]


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


def portal_form_or_404(request: Request, compiled: CompiledModel, name: str):
    if name not in compiled.model.forms or not compiled.model.forms[name].portal:
        raise HTTPException(404, said(request, "There is no such form in the portal."))
    return compiled.model.forms[name]


@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request, user: PortalUser, conn: Conn, compiled: CompiledDep):
    if not user["company_id"]:  # a page of its own, not a refusal: the brand link and every way back lead here
        return render(request, "portal/portal.html", user=user, company=None, forms=[], requests=[])
    company = record_or_404(conn, compiled, "company", user["company_id"])
    return render(request, "portal/portal.html", user=user, company=company, forms=[f for f in compiled.model.forms.values() if f.portal],
                  requests=portalview.company_requests(conn, compiled, user["company_id"], zone_of(compiled.model, user)))


def form_page(request: Request, conn, compiled: CompiledModel, name: str, user: dict, status: int = 200, values=None, errors=None,
              options=None, submission_id: str | None = None):
    """A portal form: its fields and the intro written for customers (`portal_description`), never the definition's notes."""
    form = compiled.model.forms[name]
    return render(request, "portal/form.html", user=user, status=status, layout=compiled.form_layouts[name], intro=form.portal_description,
                  values=values or {}, errors=errors or {}, options=options if options is not None else portal_options(conn, compiled, name, user),
                  submission_id=submission_id or str(uuid.uuid4()), action=f"/portal/forms/{name}")


@router.get("/portal/forms/{name}", response_class=HTMLResponse)
def portal_form(request: Request, name: str, user: LinkedUser, conn: Conn, compiled: CompiledDep):
    portal_form_or_404(request, compiled, name)
    return form_page(request, conn, compiled, name, user)


@router.post("/portal/forms/{name}", response_class=HTMLResponse)
async def portal_submit(request: Request, name: str, user: LinkedUser, data: CsrfForm, engine: EngineDep, compiled: CompiledDep,
                        services: ServicesDep):
    form = portal_form_or_404(request, compiled, name)
    values, errors = forms.parse(form, data)
    submission_id = str(data.get("submission_id") or uuid.uuid4())[:100]

    def write():
        with engine.connect() as conn:
            offered = portal_options(conn, compiled, name, user)
        for f in form.fields:  # a crafted POST must not name another company's records
            if f.type == "reference" and values.get(f.name) is not None and values[f.name] not in {v for v, _ in offered[f.name]}:
                errors[f.name] = said(request, "%(field)s must be one of the listed records", field=f.label)
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
        return form_page(request, None, compiled, name, user, 422, typed, problems, offered, submission_id)
    await started(services, compiled, result.starts)
    await announce_submission(services, form, result, values, user)
    flash(request, said(request, "Thank you: we have your request."))
    return redirect("/portal")


# -- a request's page and the customer's replies ---------------------------------------------


def request_page(request: Request, conn: sa.Connection, compiled: CompiledModel, user: dict, rec: records.Record, status: int = 200,
                 typed: str = "", problem: str = ""):
    """The request as its company's people see it: details, status history, the conversation and the reply box."""
    zone = zone_of(compiled.model, user)
    ent = portalview.request_entity(compiled)
    return render(request, "portal/request.html", user=user, status=status, record=rec,
                  status_now=portalview.status_text(ent, rec.data.get(portalview.STATUS)),
                  details=portalview.details(conn, compiled, ent, rec, zone), changes=portalview.status_history(conn, ent, rec, zone, compiled.model.locale),
                  messages=portalview.conversation(conn, compiled, rec, user, zone, locale(request)), typed=typed, problem=problem,
                  request_id=str(uuid.uuid4()))


@router.get("/portal/requests/{request_id}", response_class=HTMLResponse)
def portal_request(request: Request, request_id: str, user: LinkedUser, conn: Conn, compiled: CompiledDep):
    rec = portalview.request_or_404(conn, compiled, request_id, user["company_id"])
    return request_page(request, conn, compiled, user, rec)


@router.post("/portal/requests/{request_id}/reply", response_class=HTMLResponse)
def portal_reply(request: Request, request_id: str, user: LinkedUser, data: CsrfForm, engine: EngineDep, compiled: CompiledDep):
    text = str(data.get("text", ""))
    key = str(data.get("request_id") or "").strip()[:200] or str(uuid.uuid4())
    try:
        with engine.begin() as conn:
            rec = portalview.request_or_404(conn, compiled, request_id, user["company_id"])
            add_reply(conn, compiled, rec.entity, rec.id, text, user, public=True, key=key, customer=True)
    except ReplyRefused as exc:
        with engine.connect() as conn:
            return request_page(request, conn, compiled, user, rec, 422, text, str(exc))
    flash(request, said(request, "Your reply is sent: we will answer here and by email."))
    return redirect(f"/portal/requests/{rec.id}#conversation")
