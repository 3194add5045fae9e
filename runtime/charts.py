"""A report's chart: a Vega-Lite spec built with altair, drawn as SVG on the server by vl-convert (no browser,
no script, no CDN).

`spec(result, link)` is the same spec the API hands out (`?format=vega-lite`); `svg(...)` draws it and makes the
drawing accessible: role="img", a <title> and an aria-label that say what it shows (the table under it is the
full accessible form). Bars link where the table's rows link (`link` turns a row's drill-down into a URL).
"""
from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import altair as alt
from markupsafe import escape

from .reports import Drill, Result

WIDTH = 440          # the drawing's own width; pages scale it to their column (viewBox)
BAR_HEIGHT = 26
COLOURS = ["#1f5fa8", "#d9822b", "#3a8f5c", "#8e4ec6", "#c0392b", "#6b7280"]
# vl-convert resolves relative links against the Vega datasets' address; links are ours, on this site
_BASE = re.compile(r'(xlink:href|href)="https://vega\.github\.io/vega-datasets/+')
_LOCK = threading.Lock()       # the remembered drawings
_DRAW_LOCK = threading.Lock()  # one conversion at a time: vl-convert's engine is one JavaScript runtime
MAX_DRAWINGS = 256
_DRAWINGS: OrderedDict[tuple, str | None] = OrderedDict()


def _rows(result: Result, link: Callable[[Drill], str] | None) -> list[dict[str, Any]]:
    out = []
    for label, series, value, drill in result.series():
        if value is None:
            continue
        row = {"label": label, "value": value, "text": _value_text(result, value)}
        if series is not None:
            row["series"] = series
        if drill is not None and link is not None:
            row["url"] = link(drill)
        out.append(row)
    return out


def _value_text(result: Result, value: float) -> str:
    col = result.column(result.measure) if result.measure else None
    kind = col.kind if col else "count"
    if kind == "percent":
        return f"{value:.0f} %"
    if kind == "money":
        return f"{value:,.0f}"
    if kind in ("hours", "days"):
        return f"{value:.1f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _axis(kind: str, top: float = 0) -> alt.Axis:
    """Whole numbers for counts (no 0.5 of a task), percentages from 0 to 100."""
    if kind == "count" and top <= 8:
        return alt.Axis(values=list(range(int(top) + 1)), format=",d", grid=True)
    if kind == "count":
        return alt.Axis(tickMinStep=1, format=",d", grid=True)
    if kind == "percent":
        return alt.Axis(values=[0, 25, 50, 75, 100], grid=True)
    return alt.Axis(grid=True)


def spec(result: Result, link: Callable[[Drill], str] | None = None, *, validate: bool = False) -> dict[str, Any] | None:
    """The report's Vega-Lite spec (None for a table-only report or one with nothing to draw). Checking it against the
    Vega-Lite schema (`validate`) takes longer than building it: the tests do."""
    rows = _rows(result, link)
    if result.chart == "table" or not rows or result.measure is None:
        return None
    col = result.column(result.measure)
    measure_title = col.label if col else result.measure
    kind = col.kind if col else "count"
    dim_title = result.columns[0].label if result.columns and result.columns[0].kind == "dimension" else ""
    order = list(dict.fromkeys(r["label"] for r in rows))
    data = alt.Data(values=rows)
    tooltip = [alt.Tooltip("label:N", title=dim_title or "What"), alt.Tooltip("text:N", title=measure_title)]
    encode: dict[str, Any] = {}
    if any("url" in r for r in rows):
        encode["href"] = alt.Href("url:N")
    if any("series" in r for r in rows):
        encode["color"] = alt.Color("series:N", title=result.columns[1].label if len(result.columns) > 1 else "",
                                    scale=alt.Scale(range=COLOURS), legend=alt.Legend(orient="bottom"))
        tooltip.insert(1, alt.Tooltip("series:N", title=result.columns[1].label))
    height = max(BAR_HEIGHT * len(order) * (1 + (len({r.get("series") for r in rows}) - 1) * 0.6), 60)
    if result.chart == "line":
        base = alt.Chart(data).encode(
            x=alt.X("label:N", sort=order, title=dim_title, axis=alt.Axis(labelAngle=0, labelLimit=90)),
            y=alt.Y("value:Q", title=measure_title, axis=_axis(kind, max(r["value"] for r in rows))), tooltip=tooltip, **encode)
        chart = base.mark_line(point=alt.OverlayMarkDef(size=60, filled=True), color=COLOURS[0], strokeWidth=2.5)
        chart = chart.properties(width=WIDTH, height=220)
    elif result.chart == "funnel":
        top = max(r["value"] for r in rows) or 1
        for r in rows:
            r["start"] = (top - r["value"]) / 2
            r["end"] = r["start"] + r["value"]
            r["middle"] = top / 2
        data = alt.Data(values=rows)
        y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=160, ticks=False, domain=False))
        bars = alt.Chart(data).mark_bar(color=COLOURS[0], height=alt.RelativeBandSize(0.8)).encode(
            y=y, x=alt.X("start:Q", axis=None, scale=alt.Scale(domain=[0, top])), x2="end:Q", tooltip=tooltip, **encode)
        labels = alt.Chart(data).mark_text(color="#111827", dx=4, align="left", baseline="middle").encode(y=y, x="end:Q", text="text:N")
        chart = (bars + labels).properties(width=WIDTH, height=height)
    else:
        y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=200))
        extra = {"yOffset": alt.YOffset("series:N")} if any("series" in r for r in rows) else {}
        top = 100 if kind == "percent" else max(r["value"] for r in rows) or 1
        bars = alt.Chart(data).mark_bar(color=COLOURS[0]).encode(
            y=y, x=alt.X("value:Q", title=measure_title, scale=alt.Scale(domain=[0, top * 1.15], nice=False), axis=_axis(kind, top)),
            tooltip=tooltip, **encode, **extra)
        labels = alt.Chart(data).mark_text(align="left", dx=4, color="#111827").encode(
            y=y, x="value:Q", text="text:N", **extra)
        chart = (bars + labels).properties(width=WIDTH, height=height)
    # every drawing WIDTH wide, labels included, so all charts of a dashboard are drawn at one scale
    chart = chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))
    chart = chart.configure_view(stroke=None).configure_axis(labelFontSize=12, titleFontSize=12, labelColor="#1f2937",
                                                            titleColor="#1f2937")
    return chart.to_dict(validate=validate)


def summary(result: Result) -> str:
    """What the chart shows, in one sentence (its aria-label): the measure for each group."""
    col = result.column(result.measure) if result.measure else None
    parts = []
    for label, series, value, _ in result.series()[:12]:
        if value is None:
            continue
        parts.append(f"{label}{' (' + series + ')' if series else ''}: {_value_text(result, value)}")
    more = " and more (see the table)" if len(result.rows) > 12 else ""
    return f"{result.report.label}, {(col.label if col else '').lower()}: " + "; ".join(parts) + more if parts else result.report.label


def svg(result: Result, link: Callable[[Drill], str] | None = None) -> str | None:
    """The chart as an SVG element for a page or an email (None when the report draws nothing).

    Drawings are remembered by what they show (the figures, labels and links), so the same figures (a dashboard
    opened again while nothing changed) are neither specified again nor drawn again."""
    key = (result.report.name, result.report.label, result.chart, result.measure,
           tuple((c.name, c.label, c.kind) for c in result.columns), tuple(tuple(sorted(r.items())) for r in _rows(result, link)))
    with _LOCK:
        if key in _DRAWINGS:
            _DRAWINGS.move_to_end(key)
            return _DRAWINGS[key]
    chart = spec(result, link)
    drawing = None if chart is None else _accessible(_draw(json.dumps(chart, sort_keys=True)), summary(result))
    with _LOCK:
        _DRAWINGS[key] = drawing
        while len(_DRAWINGS) > MAX_DRAWINGS:
            _DRAWINGS.popitem(last=False)
    return drawing


def forget_drawings() -> None:
    """Draw every chart again from now on (benchmarks measure drawing)."""
    with _LOCK:
        _DRAWINGS.clear()
    _draw.cache_clear()


def _accessible(drawing: str, label: str) -> str:
    """The drawing with its links on this site, role="img", a <title> and an aria-label."""
    drawing = _BASE.sub(lambda m: f'{m.group(1)}="/', drawing)
    title = f"<title>{escape(label)}</title>"
    drawing = drawing.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" focusable="false" ', 1)
    drawing = re.sub(r"(<svg[^>]*>)", lambda m: m.group(1) + title, drawing, count=1)
    # the drawing's links are for pointers; keyboards and screen readers use the table's, one tab stop each
    return drawing.replace("<a xlink:href=", '<a tabindex="-1" xlink:href=')


@lru_cache(maxsize=256)
def _draw(spec_json: str) -> str:
    """The SVG of a spec; the same figures (a dashboard opened again) are drawn once."""
    import vl_convert

    with _DRAW_LOCK:
        return vl_convert.vegalite_to_svg(json.loads(spec_json))
