"""Reports over the API: the reports the caller may see, and one report's rows with its chart's Vega-Lite spec."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, RootModel

from engine import reporting
from runtime import charts, reports

from ..access import allowed, report_viewer
from ..deps import Conn
from .auth import api_caller
from .common import NAME_PATTERN, ApiCompiled, jsonable
from .problems import Problem, problems
from .routing import area_router

router = area_router("reports")
ReportName = Annotated[str, Path(pattern=NAME_PATTERN, description="the report's name, e.g. pipeline_funnel")]


async def api_reporter(user: Annotated[dict, Depends(api_caller)], compiled: ApiCompiled) -> dict:
    """Staff: a caller without the 'access' permission (a customer's people) finds no reports at all (404)."""
    if not allowed(compiled.model, user, "access"):
        raise Problem(404, "Not found", "There are no reports here.")
    return user


ApiReporter = Annotated[dict, Depends(api_reporter)]


class ReportSummary(BaseModel):
    name: str
    label: str
    description: str
    metric: str | None = Field(description="the built-in metric it shows, or none when it counts the records of `entity`")
    entity: str | None
    url: str = Field(description="where it is shown in the web app")


class ColumnOut(BaseModel):
    name: str
    label: str
    kind: str = Field(description="dimension, count, number, percent, hours, days, money or moment")


class DrillOut(BaseModel):
    entity: str
    filters: list[list[str]] = Field(description="(field, operator, value as the directory reads it) triples")
    record: int | None = None
    url: str = Field(description="the web app's page of those records")


class RowOut(BaseModel):
    values: dict[str, Any] = Field(description="each column's value as computed (ids, choice values, numbers)")
    text: dict[str, str] = Field(description="each column's value as people read it (names, labels, local dates)")
    drill: DrillOut | None = Field(None, description="the records the row stands for")


class PeriodOut(BaseModel):
    preset: str | None
    start: str | None = Field(description="the first day, in the caller's time zone")
    end: str | None = Field(description="the last day")
    text: str


class ReportOut(BaseModel):
    name: str
    label: str
    description: str
    period: PeriodOut | None
    columns: list[ColumnOut]
    rows: list[RowOut]
    chart: dict[str, Any] | None = Field(description="type, measure and `spec` (Vega-Lite 5; none for a table)")
    problems: list[str] = Field(description="parameters that could not be read, and how they were read instead")


@router.get("/reports", response_model=list[ReportSummary], responses=problems(404))
def report_list(user: ApiReporter, conn: Conn, compiled: ApiCompiled) -> list[dict]:
    """The reports the caller may see."""
    viewer = report_viewer(conn, compiled.model, user)
    return [{"name": r.name, "label": r.label, "description": r.description, "metric": r.metric, "entity": r.entity,
             "url": f"/reports/{r.name}"} for r in sorted(reports.visible_reports(compiled.model, viewer), key=lambda r: r.label)]


class VegaLiteSpec(RootModel[dict[str, Any]]):
    """With format=vega-lite: the chart's Vega-Lite spec alone."""


@router.get("/reports/{name}", response_model=ReportOut | VegaLiteSpec, responses={
    200: {"description": "The rows and the chart (format=json), or the chart's Vega-Lite spec alone (format=vega-lite)"},
    **problems(404, 409, 422)}, openapi_extra={"x-tailor-query": "any viewer filter of the report, by its name (e.g. owner=ann)"})
def report_rows(request: Request, name: ReportName, user: ApiReporter, conn: Conn, compiled: ApiCompiled,
                period: Annotated[str | None, Query(description="a period preset (this_month, last_90_days, ...) or 'custom'")] = None,
                start: Annotated[dt.date | None, Query(alias="from", description="custom period: the first day")] = None,
                end: Annotated[dt.date | None, Query(alias="to", description="custom period: the last day")] = None,
                format: Annotated[Literal["json", "vega-lite"], Query(description="vega-lite: the chart's spec alone")] = "json") -> Any:
    """One report's rows for the caller (their tasks only, without monitor_tasks), with its chart's Vega-Lite spec;
    also takes the report's viewer filters as parameters."""
    viewer = report_viewer(conn, compiled.model, user)
    report = reports.report_for(compiled.model, viewer, name)
    if report is None:
        raise Problem(404, "Not found", f"There is no report '{name}' among those you may see.")
    ask = reports.read_ask(report, request.query_params, dt.datetime.now(viewer.zone).date())
    try:
        result = reports.run(conn, compiled, report, viewer, ask)
    except reports.ReportError as exc:
        raise Problem(409, "Conflict", f"This report cannot be run: {exc}.") from None
    spec = charts.spec(result, reports.Drill.url)
    if format == "vega-lite":
        if spec is None:
            raise Problem(404, "Not found", f"Report '{name}' is a table: it draws no chart.")
        return JSONResponse(spec)
    kind, measure = reporting.chart_of(compiled.model, report)
    takes_period = reporting.default_period(report) is not None
    _, first, last = reports.period_of(ask, viewer.zone, dt.datetime.now(viewer.zone).date()) if takes_period else (None, None, None)
    return ReportOut.model_validate({
        "name": report.name, "label": report.label, "description": report.description,
        "period": {"preset": ask.preset, "start": jsonable(first), "end": jsonable(last), "text": result.period_text} if takes_period else None,
        "columns": [{"name": c.name, "label": c.label, "kind": c.kind} for c in result.columns],
        "rows": [{"values": {c.name: jsonable(cell.value) for c, cell in zip(result.columns, row.cells)},
                  "text": {c.name: cell.text for c, cell in zip(result.columns, row.cells)},
                  "drill": {"entity": row.drill.entity, "filters": [list(f) for f in row.drill.filters], "record": row.drill.record,
                            "url": row.drill.url()} if row.drill else None} for row in result.rows],
        "chart": {"type": kind, "measure": measure, "spec": spec} if kind != "table" else None,
        "problems": list(result.problems),
    })

