"""The pipeline board of an entity with stages, and moving a card from one stage to another."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from engine.compiler import CompiledModel
from engine.model import Entity
from forms import widgets
from runtime import records, words

from ...access import allowed
from ...deps import (
    CompiledDep,
    Conn,
    CsrfForm,
    EngineDep,
    Permitted,
    ServicesDep,
    Staff,
)
from ...processes import started
from .. import pipeline
from ..finders import entity_or_404, record_or_404
from ..listing import in_sentence
from ..pages import flash, redirect, render
from ..pagewords import locale, said

router = APIRouter(include_in_schema=False)


def board_entity_or_404(request: Request, compiled: CompiledModel, entity: str) -> Entity:
    """The entity a board URL names, if it has stages."""
    ent = entity_or_404(compiled, entity)
    if pipeline.stage_field(ent) is None:
        raise HTTPException(404, said(request, "%(things)s have no pipeline board: their definition names no stages.", things=ent.plural))
    return ent


def board_view(request: Request, conn: sa.Connection, compiled: CompiledModel, user: dict, ent: Entity, status: int = 200,
               problem: str | None = None) -> HTMLResponse:
    """The board as `user` sees it (within the scope the query names): move forms only for those who may edit records."""
    model = compiled.model
    shown = pipeline.board(conn, compiled, ent, widgets.zone_of(model, user), pipeline.scope_of(ent, request.query_params), locale(request))
    return render(request, "board/board.html", user=user, status=status, board=shown, problem=problem,
                  can_move=allowed(model, user, "edit_records"))


@router.get("/board/{entity}", response_class=HTMLResponse)
def board_page(request: Request, entity: str, user: Staff, conn: Conn, compiled: CompiledDep):
    return board_view(request, conn, compiled, user, board_entity_or_404(request, compiled, entity))


@router.post("/board/{entity}/{record_id}/move", response_class=HTMLResponse)
async def board_move(request: Request, entity: str, record_id: str, user: Permitted("edit_records"), data: CsrfForm, engine: EngineDep,
                     compiled: CompiledDep, services: ServicesDep):
    ent = board_entity_or_404(request, compiled, entity)
    to = str(data.get("stage", ""))

    def write():
        with engine.connect() as conn:
            rec = record_or_404(conn, compiled, entity, record_id)
        try:
            version = int(str(data.get("row_version", "")))
        except ValueError:
            raise HTTPException(400, said(request, "Open the board and move the card from there.")) from None
        try:
            with engine.begin() as conn:
                return pipeline.move(conn, compiled, ent, rec.id, to, version, user["id"]), None
        except pipeline.NotAStage as exc:
            return None, (422, said(request, "Not moved: %(why)s.", why=exc))
        except records.RecordNotFound:
            raise HTTPException(404, said(request, "There is no %(thing)s with that number (it may have been deleted).",
                                               thing=in_sentence(locale(request), ent.label))) from None
        except records.Conflict:
            with engine.connect() as conn:
                return None, (409, conflict_message(conn, compiled, ent, rec.id, locale(request)))
        except records.RecordInvalid as exc:
            return None, (422, said(request, "'%(title)s' was not moved: %(why)s. Open it, fill that in, then move it.", title=rec.title,
                                    why="; ".join(exc.errors.values())))

    moved, refusal = await run_in_threadpool(write)
    if refusal is not None:
        def again():
            with engine.connect() as conn:
                return board_view(request, conn, compiled, user, ent, refusal[0], refusal[1])

        return await run_in_threadpool(again)
    rec, _ = moved
    await started(services, compiled, rec.starts)
    flash(request, said(request, "Moved '%(title)s' to %(stage)s.", title=rec.title,
                        stage=pipeline.stage_label(pipeline.stage_field(ent), to, widgets.Names(None, compiled), locale(request))))
    scope = "&".join(f"{k}={v}" for k, v in pipeline.scope_of(ent, request.query_params).items())
    return redirect(f"/board/{entity}{'?' + scope if scope else ''}#card-{rec.id}")


def conflict_message(conn: sa.Connection, compiled: CompiledModel, ent: Entity, record_id: int, locale: str | None = None) -> str:
    """What a stale move says (in `locale`): who changed the record meanwhile, and where it is now."""
    try:
        current = records.get_record(conn, compiled, ent.name, record_id)
    except records.RecordNotFound:
        return words.text(locale, "This %(thing)s was deleted while you were looking at the board. Nothing was moved.",
                          thing=in_sentence(locale, ent.label))
    stage = pipeline.stage_field(ent)
    names = widgets.Names(conn, compiled)
    who = names.user(current.updated_by) if current.updated_by else words.text(locale, "someone else")
    return words.text(locale, "'%(title)s' was changed by %(who)s while you were looking at the board; it is now in %(stage)s. "
                      "Nothing was moved: look at the board again and move it if you still mean to.", title=current.title, who=who,
                      stage=pipeline.stage_label(stage, current.data.get(stage.name), names, locale))
