"""The pipeline board of an entity with stages, and moving a card from one stage to another."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from engine.compiler import CompiledModel
from engine.model import Entity
from forms import widgets
from runtime import records

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
from ..pages import flash, redirect, render

router = APIRouter(include_in_schema=False)


def board_entity_or_404(compiled: CompiledModel, entity: str) -> Entity:
    """The entity a board URL names, if it has stages."""
    ent = entity_or_404(compiled, entity)
    if pipeline.stage_field(ent) is None:
        raise HTTPException(404, f"{ent.plural} have no pipeline board: their definition names no stages.")
    return ent


def board_view(request: Request, conn: sa.Connection, compiled: CompiledModel, user: dict, ent: Entity, status: int = 200,
               problem: str | None = None) -> HTMLResponse:
    """The board as `user` sees it (within the scope the query names): move forms only for those who may edit records."""
    model = compiled.model
    shown = pipeline.board(conn, compiled, ent, widgets.zone_of(model, user), pipeline.scope_of(ent, request.query_params))
    return render(request, "board/board.html", user=user, status=status, board=shown, problem=problem,
                  can_move=allowed(model, user, "edit_records"))


@router.get("/board/{entity}", response_class=HTMLResponse)
def board_page(request: Request, entity: str, user: Staff, conn: Conn, compiled: CompiledDep):
    return board_view(request, conn, compiled, user, board_entity_or_404(compiled, entity))


@router.post("/board/{entity}/{record_id}/move", response_class=HTMLResponse)
async def board_move(request: Request, entity: str, record_id: str, user: Permitted("edit_records"), data: CsrfForm, engine: EngineDep,
                     compiled: CompiledDep, services: ServicesDep):
    ent = board_entity_or_404(compiled, entity)
    to = str(data.get("stage", ""))

    def write():
        with engine.connect() as conn:
            rec = record_or_404(conn, compiled, entity, record_id)
        try:
            version = int(str(data.get("row_version", "")))
        except ValueError:
            raise HTTPException(400, "Open the board and move the card from there.") from None
        try:
            with engine.begin() as conn:
                return pipeline.move(conn, compiled, ent, rec.id, to, version, user["id"]), None
        except pipeline.NotAStage as exc:
            return None, (422, f"Not moved: {exc}.")
        except records.RecordNotFound:
            raise HTTPException(404, f"There is no {ent.label.lower()} with that number (it may have been deleted).") from None
        except records.Conflict:
            with engine.connect() as conn:
                return None, (409, conflict_message(conn, compiled, ent, rec.id))
        except records.RecordInvalid as exc:
            return None, (422, f"'{rec.title}' was not moved: " + "; ".join(exc.errors.values()) + ". Open it, fill that in, then move it.")

    moved, refusal = await run_in_threadpool(write)
    if refusal is not None:
        def again():
            with engine.connect() as conn:
                return board_view(request, conn, compiled, user, ent, refusal[0], refusal[1])

        return await run_in_threadpool(again)
    rec, _ = moved
    await started(services, compiled, rec.starts)
    flash(request, f"Moved '{rec.title}' to {pipeline.stage_label(pipeline.stage_field(ent), to, widgets.Names(None, compiled))}.")
    scope = "&".join(f"{k}={v}" for k, v in pipeline.scope_of(ent, request.query_params).items())
    return redirect(f"/board/{entity}{'?' + scope if scope else ''}#card-{rec.id}")


def conflict_message(conn: sa.Connection, compiled: CompiledModel, ent: Entity, record_id: int) -> str:
    """What a stale move says: who changed the record meanwhile, and where it is now."""
    try:
        current = records.get_record(conn, compiled, ent.name, record_id)
    except records.RecordNotFound:
        return f"This {ent.label.lower()} was deleted while you were looking at the board. Nothing was moved."
    stage = pipeline.stage_field(ent)
    names = widgets.Names(conn, compiled)
    who = names.user(current.updated_by) if current.updated_by else "someone else"
    return (f"'{current.title}' was changed by {who} while you were looking at the board; it is now in "
            f"{pipeline.stage_label(stage, current.data.get(stage.name), names)}. Nothing was moved: "
            "look at the board again and move it if you still mean to.")
