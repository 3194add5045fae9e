"""Scheduled reports: a report's `deliver:` rule becomes a Temporal Schedule (as recurring processes do, see
`runtime.recurrence`) whose workflow emails the report, as each recipient may see it, once per occurrence.

The email is HTML with the chart (a PNG the HTML shows inline: mail readers do not draw SVG) and the table, a
plain-text alternative, and the table as a CSV attachment. Each recipient's email of an occurrence has a key
(report, rule, occurrence, user): it is sent only if the key is not recorded yet, recorded once sent, and its
Message-ID is made from it, so a run repeated after a crash sends nothing twice that a mail reader would show.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    import jinja2

    from engine.recurrence import is_occurrence, schedule_plan

SCHEDULED_AT = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
SCOPE = "report_delivery"


@dataclass
class DeliveryInput:
    report: str
    index: int                  # which of the report's `deliver:` rules
    rrule: str | None = None    # set only for rules the schedule runs as a superset: the workflow keeps the occurrences
    starts: str | None = None
    timezone: str = "UTC"


@workflow.defn(name="TailorReportDelivery")
class ReportDeliveryWorkflow:
    @workflow.run
    async def run(self, inp: DeliveryInput) -> int:
        at = workflow.info().typed_search_attributes.get(SCHEDULED_AT) or workflow.now()
        if inp.rrule:
            with workflow.unsafe.sandbox_unrestricted():
                if not is_occurrence(inp.rrule, inp.starts, inp.timezone, at):
                    return 0
        return await workflow.execute_activity("tailor.deliver_report", {"report": inp.report, "index": inp.index, "at": at.isoformat()},
                                               start_to_close_timeout=dt.timedelta(minutes=10))


class DeliveryActivities:
    """Emailing a scheduled report: bound to the database, the compiled model and the mail server."""

    def __init__(self, engine, compiled, mail):
        self.engine, self.compiled, self.mail = engine, compiled, mail

    @activity.defn(name="tailor.deliver_report")
    def deliver(self, req: dict) -> int:
        """Email the report of this occurrence to each recipient not emailed yet; returns how many were emailed now."""
        return deliver(self.engine, self.compiled, self.mail, req["report"], req["index"], dt.datetime.fromisoformat(req["at"]))


def deliver(engine, compiled, mail, name: str, index: int, at: dt.datetime) -> int:
    """The delivery of report `name`'s rule `index` for the occurrence at `at` (what the activity does)."""
    import sqlalchemy as sa

    from . import db
    from .keyed import insert_new
    from .schema import idempotency_keys

    report = compiled.model.reports.get(name)
    if report is None or index >= len(report.deliveries):
        return 0  # the definition changed since the schedule was made
    sent = 0
    occurrence = at.astimezone(dt.UTC).strftime("%Y%m%dT%H%MZ")
    with engine.connect() as conn:
        people = recipients(conn, compiled.model, report, report.deliveries[index])
    for user in people:
        key = f"report-{name}-{index}-{occurrence}-{user['id']}"
        with engine.connect() as conn:
            if conn.execute(sa.select(idempotency_keys.c.key).where(idempotency_keys.c.key == key)).first():
                continue
            subject, text, html, attachments = report_email(conn, compiled, report, user, at, mail.base_url)
        mail.send([user["email"]], subject, text, key=f"tailor-{key}", html=html, attachments=attachments)
        with db.writing(engine) as conn:
            insert_new(conn, idempotency_keys, {"key": key, "scope": SCOPE, "result": {"user_id": user["id"], "at": at.isoformat()},
                                                "created_at": dt.datetime.now(dt.UTC)}, ("key",))
        sent += 1
    return sent


def _permissions(model, roles: set[str]) -> set[str]:
    return {p for r in roles if r in model.roles for p in model.roles[r].permissions}


def recipients(conn, model, report, delivery) -> list[dict]:
    """The active staff the rule names (by role, their own or their groups', or by group) who may see the report and
    have an email address, in id order."""
    import sqlalchemy as sa

    from engine.reports import may_see

    from .schema import group_members, users

    members: dict[int, set[str]] = {}
    for uid, group in conn.execute(sa.select(group_members.c.user_id, group_members.c.group_name)):
        members.setdefault(uid, set()).add(group)
    out = []
    for user in conn.execute(sa.select(users).where(users.c.active).order_by(users.c.id)).mappings():
        groups = members.get(user["id"], set())
        roles = set(user["roles"] or []) | {r for g in groups if g in model.groups for r, _ in model.groups[g].roles}
        perms = _permissions(model, roles)
        if not user["email"] or not ({"access", "admin"} & perms):
            continue
        if may_see(delivery.to, roles, groups) and may_see(report.audience, roles, groups):
            out.append(dict(user))
    return out


def report_email(conn, compiled, report, user: dict, at: dt.datetime, base_url: str):
    """(subject, text, html, attachments) of the report as `user` sees it at `at`."""
    import vl_convert

    from . import charts, reports
    from .mail import Attachment

    perms = _permissions(compiled.model, set(user["roles"] or []))
    viewer = reports.viewer(conn, compiled.model, user, monitor=bool({"monitor_tasks", "admin"} & perms))
    ask = reports.read_ask(report, {}, at.astimezone(viewer.zone).date())
    result = reports.run(conn, compiled, report, viewer, ask, now=at)
    link = f"{base_url}/reports/{report.name}"
    svg = charts.svg(result, lambda d: base_url + d.url())
    attachments = []
    if svg:
        attachments.append(Attachment("chart.png", vl_convert.svg_to_png(svg, scale=2), "image/png", inline_id="chart"))
    out = io.StringIO()
    csv.writer(out).writerows(reports.csv_rows(result))
    attachments.append(Attachment(f"{report.name.replace('_', '-')}.csv", out.getvalue().encode("utf-8"), "text/csv"))
    subject = f"[Tailor] {report.label}" + (f" – {result.period_text}" if result.period_text else "")
    widths = [max(len(c.label), *(len(r.cells[i].text) for r in result.rows)) if result.rows else len(c.label)
              for i, c in enumerate(result.columns)]
    lines = [report.label, result.period_text, "", "  ".join(c.label.ljust(w) for c, w in zip(result.columns, widths))]
    lines += ["  ".join(cell.text.ljust(w) for cell, w in zip(row.cells, widths)) for row in result.rows]
    if not result.rows:
        lines.append("Nothing to count in this period.")
    text = "\n".join(lines + ["", f"Open it in Tailor: {link}", "The table is attached as a CSV file."]) + "\n"
    html = _EMAIL.render(report=report, result=result, chart=bool(svg), summary=charts.summary(result), link=link,
                         links=[base_url + r.drill.url() if r.drill else None for r in result.rows])
    return subject, text, html, attachments


_EMAIL = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ report.label }}</title></head>
<body style="font-family: system-ui, sans-serif; color: #111827; max-width: 42rem">
<h1 style="font-size: 1.3rem">{{ report.label }}</h1>
{% if result.period_text %}<p style="color: #4b5563">{{ result.period_text }}</p>{% endif %}
{% if report.description %}<p>{{ report.description }}</p>{% endif %}
{% if chart %}<p><img src="cid:chart" alt="{{ summary }}" style="max-width: 100%"></p>{% endif %}
{% if result.rows %}<table style="border-collapse: collapse; font-size: .9rem">
<caption style="text-align: left; font-weight: 600">{{ report.label }}</caption>
<thead><tr>{% for c in result.columns %}<th scope="col" style="text-align: {{ 'left' if c.kind == 'dimension' else 'right' }}; border-bottom: 1px solid #d1d5db; padding: .3rem .6rem">{{ c.label }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in result.rows %}{% set link = links[loop.index0] %}<tr>{% for cell in row.cells %}{% set c = result.columns[loop.index0] %}
{% if loop.first %}<th scope="row" style="text-align: left; padding: .3rem .6rem">{% if link %}<a href="{{ link }}">{{ cell.text }}</a>{% else %}{{ cell.text }}{% endif %}</th>
{% else %}<td style="text-align: {{ 'left' if c.kind == 'dimension' else 'right' }}; padding: .3rem .6rem">{{ cell.text }}</td>{% endif %}{% endfor %}</tr>{% endfor %}</tbody>
</table>{% else %}<p>Nothing to count in this period.</p>{% endif %}
<p><a href="{{ link }}">Open it in Tailor</a> · the table is attached as a CSV file.</p>
</body></html>
""")


async def sync_report_schedules(client, compiled, task_queue: str) -> list[str]:
    """Create or update one Temporal Schedule per report delivery rule; returns their ids."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleUpdate,
    )

    from engine.reporting import delivery_zone

    from .recurrence import schedule_spec

    tz = delivery_zone(compiled.model)
    ids = []
    for name, report in sorted(compiled.model.reports.items()):
        for i, d in enumerate(report.deliveries):
            plan = schedule_plan(d.rrule, d.starts, tz)
            rule = {} if plan.exact else {"rrule": d.rrule, "starts": d.starts}
            schedule = Schedule(action=ScheduleActionStartWorkflow(ReportDeliveryWorkflow.run, DeliveryInput(name, i, timezone=tz, **rule),
                                                                   id=f"tailor-report-delivery-{name}-{i}", task_queue=task_queue),
                                spec=schedule_spec(plan))
            sid = f"tailor-report-{name}-{i}"
            try:
                await client.create_schedule(sid, schedule)
            except ScheduleAlreadyRunningError:
                await client.get_schedule_handle(sid).update(lambda _, s=schedule: ScheduleUpdate(schedule=s))
            ids.append(sid)
    return ids
