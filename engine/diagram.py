"""A process drawn as SVG, on the server: its steps in order, parallel branches side by side, the conditions on the
arrows, approvals, and each step's escalation ladder under it.

Pure: a `Process` in, SVG text out (`svg`), and the same content as an outline for a text list beside the drawing
(`outline`), since a drawing with `role="img"` is one image to a screen reader. Text is measured by a fixed width
per character (the drawing is laid out without a browser), wrapped, and shortened with an ellipsis where it would
not fit; the whole text is always in the element's <title> (a tooltip) and in the outline.
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from html import escape

from .build import humanise
from .model import ApprovalStep, Escalation, ParallelStep, Party, Process, Step, TaskStep

BOX = 264            # width of a task's box
PAD = 10             # inside a box
LINE = 17            # height of a line of text
CHAR = 0.56          # width of a character, times the font size (sans-serif, on average; bold a little wider)
WHEN_ROOM = 170      # to the right of the steps: where the conditions of the main line's arrows are written
GAP = 26             # the arrow between two boxes, without a condition
BRANCH_GAP = 24      # between branches side by side
MARGIN = 16
INK, MUTED, LINE_COLOUR, ACCENT, WARN, WARN_TINT, TINT = "#17202e", "#535d6e", "#747f91", "#1b58c4", "#7f5300", "#fdf1d8", "#e7eefb"


# -- words ------------------------------------------------------------------------------------------
def party_text(p: Party | None) -> str:
    """Who a party is, in words: 'group Sales', 'the record's owner', 'whoever did Deliver'."""
    if p is None:
        return "nobody yet"
    fixed = {"owner": "the record's owner", "assignee": "the assignee", "manager": "the assignee's manager",
             "project_manager": "the project manager", "starter": "whoever started it"}
    if p.kind in fixed and not p.name:
        return fixed[p.kind]
    if p.kind == "completer":
        return f"whoever did {humanise(p.name or '')}"
    return f"{p.kind} {humanise(p.name or '')}" if p.kind in ("group", "role") else f"{p.kind} {p.name}"


def title_text(source: str) -> str:
    """A step title without its template syntax: 'Qualify the enquiry: ‹name›'."""
    return re.sub(r"\{\{\s*(.*?)\s*\}\}", lambda m: "‹" + m.group(1).split("|")[0].strip().split(".")[-1].replace("_", " ") + "›",
                  source).strip()


def escalation_text(e: Escalation) -> str:
    at = "at the due time" if e.after_due is None else f"{e.after_due.text} after due"
    what = []
    if e.alert:
        what.append("alert " + ", ".join(party_text(p) for p in e.alert))
    if e.reassign:
        what.append("hand to " + party_text(e.reassign))
    return f"{at[:1].upper()}{at[1:]}: {'; '.join(what) or 'nothing'}"


def task_lines(s: TaskStep | ApprovalStep) -> list[str]:
    """What a task's (or an approval's) box says under its title."""
    if isinstance(s, ApprovalStep):
        who = ", ".join(party_text(p) for p in s.approvers)
        lines = [f"Approves: {humanise(s.approve)}", f"Who: {who}" + (" (each of them)" if s.decide == "all" and len(s.approvers) else "")]
    else:
        lines = [f"Who: {party_text(s.assign)}" + (" (least busy)" if s.strategy == "least_busy" else "")] if s.assign else []
    if s.due and s.due.duration:
        lines.append(f"Due: {s.due.duration.text}" + (f" after {humanise(s.due.start)}" if s.due.start != "start" else ""))
    if getattr(s, "form", None):
        lines.append(f"Form: {humanise(s.form)}")
    if s.reminders:
        lines.append("Reminders: " + ", ".join(r.text for r in s.reminders) + " before")
    return lines


@dataclass(frozen=True)
class Item:
    """One entry of the outline: a step (its words and escalation levels) or a parallel block (its branches)."""

    id: str
    kind: str                     # task, parallel
    title: str
    when: str = ""
    lines: tuple[str, ...] = ()
    escalations: tuple[str, ...] = ()
    branches: tuple[tuple[str, tuple[Item, ...]], ...] = ()


def outline(p: Process) -> list[Item]:
    """The process as a list, for the text beside the drawing."""
    return [_item(s) for s in p.steps]


def _item(s: Step) -> Item:
    when = s.when.source if s.when else ""
    if isinstance(s, ParallelStep):
        return Item(s.id, "parallel", f"In parallel: {humanise(s.id)}", when,
                    branches=tuple((humanise(n), tuple(_item(x) for x in b)) for n, b in s.branches))
    return Item(s.id, "approval" if isinstance(s, ApprovalStep) else "task", title_text(s.title.source), when, tuple(task_lines(s)),
                tuple(escalation_text(e) for e in s.escalate))


def trigger_text(p: Process) -> str:
    """How the process starts, in a few words."""
    words = []
    for t in p.triggers:
        words.append({"form": lambda t: f"when the form {humanise(t.form)} is sent",
                      "record": lambda t: f"when a {humanise(t.entity).lower()} is {' or '.join(t.on)}",
                      "schedule": lambda t: "on a schedule", "manual": lambda t: "by hand"}[t.kind](t))
    return "Starts " + (", or ".join(words) if words else "when a form starts it")


# -- drawing ----------------------------------------------------------------------------------------
def _wrap(text: str, width: float, most: int, size: float = 12.5, bold: bool = False) -> list[str]:
    """`text` in lines of at most `width` pixels, at most `most` of them (the last one shortened with '…')."""
    chars = max(8, int(width / (size * CHAR * (1.1 if bold else 1.0))))
    lines = textwrap.wrap(text, chars, break_long_words=True) or [""]
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = lines[-1][: chars - 1].rstrip() + "…"
    return lines


def _text(x: float, y: float, lines: list[str], *, size: float = 12.5, weight: str = "400", fill: str = INK, cls: str = "",
          anchor: str = "start") -> str:
    spans = "".join(f'<tspan x="{x:.0f}" dy="{0 if i == 0 else LINE}">{escape(line)}</tspan>' for i, line in enumerate(lines))
    klass = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" font-weight="{weight}" fill="{fill}" text-anchor="{anchor}"'
            f'{klass}>{spans}</text>')


@dataclass
class Block:
    """A laid-out piece of the drawing: its size, and how to draw it with its top-left corner at (x, y)."""

    width: float
    height: float
    parts: list = field(default_factory=list)  # (dx, dy, callable(x, y) -> str)

    def draw(self, x: float, y: float) -> str:
        return "".join(fn(x + dx, y + dy) for dx, dy, fn in self.parts)


def _arrow(height: float, when: str, width: float, room: float = 0) -> tuple[Block, float]:
    """The arrow down into a step, with its condition beside it (the block is `width` wide, the arrow in its middle;
    `room` more to its right may be written in)."""
    lines = _wrap(f"if {when}", width / 2 - 14 + room, 3, 11.5) if when else []
    h = max(height, GAP + LINE * len(lines)) if lines else height
    block = Block(width, h)
    mid = width / 2

    def draw(x: float, y: float) -> str:
        out = (f'<line x1="{x + mid:.0f}" y1="{y:.0f}" x2="{x + mid:.0f}" y2="{y + h - 2:.0f}" stroke="{LINE_COLOUR}" stroke-width="1.5" '
               f'marker-end="url(#arrow)"/>')
        if lines:
            out += (f'<g class="when"><title>{escape("Only if " + when)}</title>'
                    + _text(x + mid + 8, y + (h - LINE * len(lines)) / 2 + 12, lines, size=11.5, fill=WARN, cls="when-text") + "</g>")
        return out

    block.parts.append((0, 0, draw))
    return block, h


def _task(s: TaskStep | ApprovalStep) -> Block:
    heading = _wrap(title_text(s.title.source), BOX - 2 * PAD, 2, 13, bold=True)
    details = [w for line in task_lines(s) for w in _wrap(line, BOX - 2 * PAD, 2, 12)]
    box_h = PAD + LINE * len(heading) + 4 + LINE * len(details) + PAD + 12
    ladder = [_wrap(f"{i}. {escalation_text(e)}", BOX - 2 * PAD - 16, 3, 11.5) for i, e in enumerate(s.escalate, start=1)]
    ladder_h = sum(LINE * len(lines) + 10 for lines in ladder) + (22 if ladder else 0)
    block = Block(BOX, box_h + ladder_h)
    tooltip = f"Step {s.id}: {s.title.source}. " + ". ".join(task_lines(s))

    def draw(x: float, y: float) -> str:
        approval = isinstance(s, ApprovalStep)
        kind = "approval" if approval else "task"
        fill = TINT if approval else "#ffffff"
        out = (f'<g class="step {kind}" data-step="{escape(s.id)}"><title>{escape(tooltip)}</title>'
               f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX}" height="{box_h:.0f}" rx="8" fill="{fill}" stroke="{ACCENT if approval else LINE_COLOUR}" '
               f'stroke-width="{2 if approval else 1.2}"/>'
               + _text(x + PAD, y + PAD + 12, heading, size=13, weight="700")
               + _text(x + PAD, y + PAD + 12 + LINE * len(heading) + 4, details, size=12, fill=MUTED)
               + (f'<text x="{x + BOX - PAD:.0f}" y="{y + box_h - 7:.0f}" font-size="10.5" fill="{MUTED}" text-anchor="end" '
                  f'font-family="monospace">{escape(s.id)}</text>')
               + "</g>")
        if ladder:
            top = y + box_h
            out += (f'<line x1="{x + 18:.0f}" y1="{top:.0f}" x2="{x + 18:.0f}" y2="{top + ladder_h - 6:.0f}" stroke="{WARN}" '
                    f'stroke-dasharray="3 3" stroke-width="1.2"/>'
                    + _text(x + 26, top + 15, ["If it is late"], size=11, weight="700", fill=WARN))
            row_y = top + 22
            for level, (e, lines) in enumerate(zip(s.escalate, ladder), start=1):
                h = LINE * len(lines) + 6
                out += (f'<g class="escalation" data-step="{escape(s.id)}" data-level="{level}"><title>{escape(escalation_text(e))}</title>'
                        f'<rect x="{x + 26:.0f}" y="{row_y:.0f}" width="{BOX - 26:.0f}" height="{h:.0f}" rx="5" fill="{WARN_TINT}" '
                        f'stroke="{WARN}" stroke-width="1"/>' + _text(x + 34, row_y + 15, lines, size=11.5, fill=INK) + "</g>")
                row_y += h + 4
        return out

    block.parts.append((0, 0, draw))
    return block


def _parallel(s: ParallelStep) -> Block:
    columns = []
    for name, steps in s.branches:
        body = _sequence(steps, entry_arrow=True)
        columns.append((name, body))
    width = sum(max(b.width, BOX) for _, b in columns) + BRANCH_GAP * (len(columns) - 1)
    label = _wrap(f"In parallel: {humanise(s.id)}", width, 1)
    head_h, name_h, tail_h = 30, LINE + 6, 26
    body_h = max((b.height for _, b in columns), default=0)
    block = Block(width, head_h + name_h + body_h + tail_h)

    def draw(x: float, y: float) -> str:
        out = [f'<g class="parallel" data-step="{escape(s.id)}"><title>{escape(f"Step {s.id}: the branches run at the same time; it is done when all are")}</title>',
               _text(x + width / 2, y + 14, label, size=12, weight="700", fill=INK, anchor="middle")]
        cx = x
        centres = []
        for name, body in columns:
            w = max(body.width, BOX)
            centres.append(cx + w / 2)
            cx += w + BRANCH_GAP
        bar_y, join_y = y + head_h - 6, y + head_h + name_h + body_h + 6
        out.append(f'<rect x="{centres[0] - 20:.0f}" y="{bar_y:.0f}" width="{centres[-1] - centres[0] + 40:.0f}" height="5" rx="2" fill="{INK}"/>')
        cx = x
        for (name, body), centre in zip(columns, centres):
            w = max(body.width, BOX)
            out.append(f'<g class="branch" data-branch="{escape(name)}"><title>{escape(f"Branch {name}")}</title>'
                       + _text(centre, y + head_h + 13, [f"Branch: {humanise(name)}"], size=11.5, weight="700", fill=MUTED, anchor="middle")
                       + body.draw(cx + (w - body.width) / 2, y + head_h + name_h)
                       + f'<line x1="{centre:.0f}" y1="{y + head_h + name_h + body.height:.0f}" x2="{centre:.0f}" y2="{join_y:.0f}" '
                         f'stroke="{LINE_COLOUR}" stroke-width="1.5"/></g>')
            cx += w + BRANCH_GAP
        out.append(f'<rect x="{centres[0] - 20:.0f}" y="{join_y:.0f}" width="{centres[-1] - centres[0] + 40:.0f}" height="5" rx="2" fill="{INK}"/>')
        out.append("</g>")
        return "".join(out)

    block.parts.append((0, 0, draw))
    return block


def _step(s: Step) -> Block:
    return _parallel(s) if isinstance(s, ParallelStep) else _task(s)


def _sequence(steps, *, entry_arrow: bool = False, room: float = 0) -> Block:
    """Steps one under the other, centred, each with the arrow (and condition) that leads into it."""
    blocks = [_step(s) for s in steps]
    width = max([b.width for b in blocks] + [BOX])
    seq = Block(width, 0)
    y = 0.0
    for i, (s, b) in enumerate(zip(steps, blocks)):
        if i > 0 or entry_arrow:
            arrow, h = _arrow(GAP, s.when.source if s.when else "", width, room)
            seq.parts.append((0, y, arrow.draw))
            y += h
        seq.parts.append(((width - b.width) / 2, y, b.draw))
        y += b.height
    seq.height = y
    return seq


def _pill(text: str, width: float, tooltip: str) -> Block:
    lines = _wrap(text, BOX - 30, 2)
    h = LINE * len(lines) + 14
    block = Block(width, h)

    def draw(x: float, y: float) -> str:
        left = x + (width - BOX) / 2
        return (f'<g class="terminal"><title>{escape(tooltip)}</title><rect x="{left:.0f}" y="{y:.0f}" width="{BOX}" height="{h:.0f}" '
                f'rx="{h / 2:.0f}" fill="{INK}"/>' + _text(x + width / 2, y + 19, lines, size=12.5, weight="700", fill="#ffffff", anchor="middle")
                + "</g>")

    block.parts.append((0, 0, draw))
    return block


def svg(p: Process, *, id_prefix: str = "diagram") -> str:
    """The process as an SVG drawing (self-contained: colours as attributes, no scripts)."""
    room = WHEN_ROOM if any(s.when for s in p.steps) else 0
    body = _sequence(p.steps, entry_arrow=True, room=room)
    width = body.width
    start = _pill(trigger_text(p), width, trigger_text(p))
    end = _pill("Done", width, "The process is done when its last step is")
    arrow, arrow_h = _arrow(GAP, "", width)
    total_w = width + room + 2 * MARGIN
    total_h = MARGIN + start.height + body.height + arrow_h + end.height + MARGIN
    tid, did = f"{id_prefix}-title", f"{id_prefix}-desc"
    count = _count(p.steps)
    label = f"Diagram of the process {p.label}: {count} step{'s' if count != 1 else ''}"
    y0 = MARGIN + start.height
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="process-diagram" role="img" aria-label="{escape(label)}" '
            f'aria-labelledby="{tid} {did}" width="{total_w:.0f}" height="{total_h:.0f}" viewBox="0 0 {total_w:.0f} {total_h:.0f}" '
            f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">'
            f'<title id="{tid}">{escape(label)}</title>'
            f'<desc id="{did}">{escape(_description(p))}</desc>'
            f'<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{LINE_COLOUR}"/></marker></defs>'
            + start.draw(MARGIN, MARGIN) + body.draw(MARGIN, y0) + arrow.draw(MARGIN, y0 + body.height)
            + end.draw(MARGIN, y0 + body.height + arrow_h) + "</svg>")


def _count(steps) -> int:
    return sum(_count(x) for s in steps for _, x in (s.branches if isinstance(s, ParallelStep) else ())) + \
        sum(1 for s in steps if isinstance(s, (TaskStep, ApprovalStep)))


def _description(p: Process) -> str:
    parts = []
    for item in outline(p):
        parts.append(_describe(item))
    return f"{trigger_text(p)}. " + " Then ".join(parts) + " Done."


def _describe(item: Item) -> str:
    cond = f" (only if {item.when})" if item.when else ""
    if item.kind == "parallel":
        return (f"{item.title}{cond}: " + "; ".join(f"branch {name}: " + ", then ".join(_describe(x) for x in steps)
                                                 for name, steps in item.branches) + ".")
    ladder = f" If it is late: {'; '.join(item.escalations)}." if item.escalations else ""
    return f"{item.title}{cond}. {'. '.join(item.lines)}.{ladder}"
