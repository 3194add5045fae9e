"""Reports and dashboards: the list of what the viewer may see, a report's chart and table with its period picker
and filters, a dashboard's grid of reports, and a report's CSV export. Staff only; anyone else gets 404."""
from __future__ import annotations

import csv
import datetime as dt
import io
from concurrent.futures import Future
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from engine import reporting
from engine.compiler import CompiledModel
from engine.reports import PERIODS, Report
from runtime import charts, reports, words

from ...access import allowed, report_viewer
from ...deps import CompiledDep, Conn, Reporter, refusal
from ..pages import redirect, render
from ..pagewords import locale, said
from .directory import spreadsheet_safe

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Shown:
    """A report as a page shows it: its result, the chart (being drawn meanwhile), each row's link, and the query that
    asks for it again."""

    result: reports.Result
    drawing: Future[str | None] | None
    links: tuple[str | None, ...]
    query: str
    error: str = ""

    @property
    def report(self) -> Report:
        return self.result.report

    @property
    def chart(self) -> Markup | None:
        svg = self.drawing.result() if self.drawing is not None else None
        return Markup(svg) if svg else None


def show(conn, compiled: CompiledModel, viewer: reports.Viewer, report: Report, params, *, draw: bool = True,
         lang: str | None = None) -> Shown:
    """Run `report` for the viewer with what `params` asks: the period, and those of its viewer filters given (on a
    dashboard, the parameters of all its reports: each reads its own). Its chart is drawn while the caller goes on (a
    dashboard's next report runs its queries meanwhile); `draw=False`: none (the CSV)."""
    today = dt.datetime.now(viewer.zone).date()
    ask = reports.read_ask(report, params, today)
    try:
        result = reports.run(conn, compiled, report, viewer, ask)
    except reports.ReportError as exc:
        empty = reports.Result(report, (), (), ask, reports.Period(), "", "table", None)
        return Shown(empty, None, (), urlencode(ask.pairs()), words.text(lang, "This report cannot be shown: %(why)s.", why=exc))
    drawing = charts.svg_soon(result, reports.Drill.url) if draw else None
    links = tuple(r.drill.url() if r.drill else None for r in result.rows)
    return Shown(result, drawing, links, urlencode(ask.pairs()))


@dataclass(frozen=True)
class Picker:
    """The period picker's state: the chosen preset ('custom': the dates), and the dates as typed."""

    period: str
    start: str
    end: str
    periods: tuple[tuple[str, str], ...] = tuple(PERIODS.items())


def picker(period: str, start: str, end: str) -> Picker:
    return Picker(period if period in PERIODS or period == "custom" else "", start[:10], end[:10])


def _report_or_404(request: Request, compiled: CompiledModel, viewer: reports.Viewer, name: str) -> Report:
    report = reports.report_for(compiled.model, viewer, name)
    if report is None:
        raise HTTPException(404, said(request, "There is no report by that name among those you may see."))
    return report


@router.get("/reports", response_class=HTMLResponse)
def report_list(request: Request, user: Reporter, conn: Conn, compiled: CompiledDep):
    viewer = report_viewer(conn, compiled.model, user)
    home = reports.home_dashboard(compiled.model, viewer)
    dashboards = sorted(reports.visible_dashboards(compiled.model, viewer), key=lambda d: (d is not home, d.label))
    listed = sorted(reports.visible_reports(compiled.model, viewer), key=lambda r: r.label)
    return render(request, "reports/index.html", user=user, dashboards=dashboards, home=home, reports=listed)


@router.get("/dashboards")
def home_dashboard(user: Reporter, conn: Conn, compiled: CompiledDep):
    """The viewer's home dashboard, or the list when their roles have none."""
    home = reports.home_dashboard(compiled.model, report_viewer(conn, compiled.model, user))
    return redirect(f"/dashboards/{home.name}" if home else "/reports")


@router.get("/dashboards/{name}", response_class=HTMLResponse)
def dashboard_page(request: Request, name: str, user: Reporter, conn: Conn, compiled: CompiledDep):
    viewer = report_viewer(conn, compiled.model, user)
    board = reports.dashboard_for(compiled.model, viewer, name)
    if board is None:
        raise HTTPException(404, said(request, "There is no dashboard by that name among those you may see."))
    params = request.query_params
    rows = []
    for row in board.rows:
        shown = [show(conn, compiled, viewer, r, params, lang=locale(request)) for r in (reports.report_for(compiled.model, viewer, n) for n, _ in row)
                 if r is not None]
        if shown:
            rows.append(shown)
    picked = picker(params.get("period", ""), params.get("from", ""), params.get("to", ""))
    filters = reports.board_filters(compiled.model, [s.result for row in rows for s in row])
    return render(request, "reports/dashboard.html", user=user, board=board, rows=rows, picker=picked,
                  filters=[(f.name, f.label, list(f.options), f.value) for f in filters],
                  applies={f.name: f.reports for f in filters},
                  problems=sorted({p for row in rows for s in row for p in s.result.problems}))


@router.get("/reports/{name}", response_class=HTMLResponse)
def report_page(request: Request, name: str, user: Reporter, conn: Conn, compiled: CompiledDep):
    viewer = report_viewer(conn, compiled.model, user)
    report = _report_or_404(request, compiled, viewer, name)
    shown = show(conn, compiled, viewer, report, request.query_params, lang=locale(request))
    ask = shown.result.ask
    picked = picker(ask.preset or ("custom" if ask.start or ask.end else ""), ask.start.isoformat() if ask.start else "",
                    ask.end.isoformat() if ask.end else "") if reporting.default_period(report) else None
    filters = [(name, reporting.filter_label(compiled.model, report, name), shown.result.options.get(name, []), dict(ask.filters).get(name, ""))
               for name, _ in report.viewer_filters]
    return render(request, "reports/report.html", user=user, shown=shown, picker=picked, filters=filters,
                  may_export=allowed(compiled.model, user, "export"), status=400 if shown.result.problems else 200)


@router.get("/reports/{name}/export.csv")
def report_csv(request: Request, name: str, user: Reporter, conn: Conn, compiled: CompiledDep):
    """The report's table as CSV: what the page shows, names and labels as people read them, numbers without units."""
    if not allowed(compiled.model, user, "export"):
        raise HTTPException(403, refusal("export"))
    viewer = report_viewer(conn, compiled.model, user)
    report = _report_or_404(request, compiled, viewer, name)
    shown = show(conn, compiled, viewer, report, request.query_params, draw=False, lang=locale(request))
    if shown.error:
        raise HTTPException(409, shown.error)
    out = io.StringIO()
    writer = csv.writer(out)
    for row in reports.csv_rows(shown.result):
        writer.writerow(spreadsheet_safe(c) for c in row)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{report.name.replace("_", "-")}.csv"'})
