"""A report's chart: a Vega-Lite spec (the dict itself: building it through altair took as long as drawing a small
chart), drawn as SVG on the server by vl-convert (no browser, no script, no CDN).

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
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from markupsafe import escape

from .reports import Drill, Result

WIDTH = 440          # the drawing's own width; pages scale it to their column (viewBox)
BAR_HEIGHT = 26
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.4.1.json"  # the Vega-Lite vl-convert draws with (6.4)
COLOURS = ["#1f5fa8", "#d9822b", "#3a8f5c", "#8e4ec6", "#c0392b", "#6b7280"]
# vl-convert resolves relative links against the Vega datasets' address; links are ours, on this site
_BASE = re.compile(r'(xlink:href|href)="https://vega\.github\.io/vega-datasets/+')
_LOCK = threading.Lock()       # the remembered drawings
_DRAW_LOCK = threading.Lock()  # one conversion at a time: vl-convert's engine is one JavaScript runtime
MAX_DRAWINGS = 256
_DRAWINGS: OrderedDict[tuple, str | None] = OrderedDict()
_DRAWER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="charts")  # svg_soon


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


def _axis(kind: str, top: float = 0) -> dict[str, Any]:
    """Whole numbers for counts (no 0.5 of a task), percentages from 0 to 100."""
    if kind == "count" and top <= 8:
        return {"values": list(range(int(top) + 1)), "format": ",d", "grid": True}
    if kind == "count":
        return {"tickMinStep": 1, "format": ",d", "grid": True}
    if kind == "percent":
        return {"values": [0, 25, 50, 75, 100], "grid": True}
    return {"grid": True}


def _labels(chars: int, **axis: Any) -> dict[str, Any]:
    """An axis of names cut to `chars` characters with an ellipsis (the table has them whole). Cut by characters, not
    pixels: Vega measures every label it may cut (labelLimit), which on a 60-row chart is a quarter of its drawing."""
    return {**axis, "labelLimit": 0, "labelExpr": f"truncate(datum.label, {chars})"}


def _field(name: str, kind: str = "nominal", **more: Any) -> dict[str, Any]:
    return {"field": name, "type": kind, **more}


def spec(result: Result, link: Callable[[Drill], str] | None = None) -> dict[str, Any] | None:
    """The report's Vega-Lite spec (None for a table-only report or one with nothing to draw), built as the dict it is
    (tests/runtime/test_reports.py checks it against the Vega-Lite schema)."""
    rows = _rows(result, link)
    if result.chart == "table" or not rows or result.measure is None:
        return None
    col = result.column(result.measure)
    measure_title = col.label if col else result.measure
    kind = col.kind if col else "count"
    dim_title = result.columns[0].label if result.columns and result.columns[0].kind == "dimension" else ""
    order = list(dict.fromkeys(r["label"] for r in rows))
    tooltip = [_field("label", title=dim_title or "What"), _field("text", title=measure_title)]
    encode: dict[str, Any] = {}
    if any("url" in r for r in rows):
        encode["href"] = _field("url")
    series = any("series" in r for r in rows)
    if series:
        encode["color"] = _field("series", title=result.columns[1].label if len(result.columns) > 1 else "",
                                 scale={"range": COLOURS}, legend={"orient": "bottom"})
        tooltip.insert(1, _field("series", title=result.columns[1].label))
    height = max(BAR_HEIGHT * len(order) * (1 + (len({r.get("series") for r in rows}) - 1) * 0.6), 60)
    chart: dict[str, Any]
    if result.chart == "line":
        chart = {"mark": {"type": "line", "point": {"size": 60, "filled": True}, "color": COLOURS[0], "strokeWidth": 2.5},
                 "encoding": {"x": _field("label", sort=order, title=dim_title, axis=_labels(14, labelAngle=0)),
                              "y": _field("value", "quantitative", title=measure_title,
                                          axis=_axis(kind, max(r["value"] for r in rows))),
                              "tooltip": tooltip, **encode},
                 "width": WIDTH, "height": 220}
    elif result.chart == "funnel":
        top = max(r["value"] for r in rows) or 1
        for r in rows:
            r["start"] = (top - r["value"]) / 2
            r["end"] = r["start"] + r["value"]
            r["middle"] = top / 2
        y = _field("label", sort=order, title=None, axis=_labels(27, ticks=False, domain=False))
        bars = {"mark": {"type": "bar", "color": COLOURS[0], "height": {"band": 0.8}},
                "encoding": {"y": y, "x": _field("start", "quantitative", axis=None, scale={"domain": [0, top]}),
                             "x2": {"field": "end"}, "tooltip": tooltip, **encode}}
        labels = {"mark": {"type": "text", "color": "#111827", "dx": 4, "align": "left", "baseline": "middle"},
                  "encoding": {"y": y, "x": _field("end", "quantitative"), "text": _field("text")}}
        chart = {"layer": [bars, labels], "width": WIDTH, "height": height}
    else:
        y = _field("label", sort=order, title=None, axis=_labels(33))
        extra = {"yOffset": _field("series")} if series else {}
        top = 100 if kind == "percent" else max(r["value"] for r in rows) or 1
        bars = {"mark": {"type": "bar", "color": COLOURS[0]},
                "encoding": {"y": y, "x": _field("value", "quantitative", title=measure_title,
                                                 scale={"domain": [0, top * 1.15], "nice": False}, axis=_axis(kind, top)),
                             "tooltip": tooltip, **encode, **extra}}
        labels = {"mark": {"type": "text", "align": "left", "dx": 4, "color": "#111827"},
                  "encoding": {"y": y, "x": _field("value", "quantitative"), "text": _field("text"), **extra}}
        chart = {"layer": [bars, labels], "width": WIDTH, "height": height}
    return {"$schema": SCHEMA, "data": {"values": rows}, **chart,
            # every drawing WIDTH wide, labels included, so all charts of a dashboard are drawn at one scale
            "autosize": {"type": "fit-x", "contains": "padding"},
            "config": {"view": {"stroke": None},
                       "axis": {"labelFontSize": 12, "titleFontSize": 12, "labelColor": "#1f2937", "titleColor": "#1f2937"}}}


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


def svg_soon(result: Result, link: Callable[[Drill], str] | None = None) -> Future[str | None]:
    """`svg` on the drawing thread, while the caller goes on: a dashboard runs its next report's queries as this one's
    chart is drawn (vl-convert lets go of the interpreter while it draws; its one engine draws one chart at a time)."""
    return _DRAWER.submit(svg, result, link)


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
        return vl_convert.vegalite_to_svg(spec_json)
