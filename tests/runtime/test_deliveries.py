"""Scheduled reports: emailed once per occurrence to the people the rule names, as HTML with the chart and the table,
and the table as a CSV attachment; a real SMTP server (aiosmtpd) receives them."""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import email
import email.policy
import io
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from temporalio.client import Client, ScheduleBackfill, ScheduleOverlapPolicy

from runtime import deliveries, records
from runtime.devserver import DevServer
from runtime.mail import MailSettings
from runtime.schema import metadata as platform
from runtime.schema import users
from runtime.worker import make_worker
from tests.conftest import CRM, free_port

from .conftest import Store, add_user, compiled_packs

MONDAY = dt.datetime(2026, 4, 6, 7, 0, tzinfo=dt.UTC)  # 08:00 in London: the CRM pack's weekly delivery of the funnel


def opportunities(conn, compiled, owner: int) -> None:
    acme = records.create_record(conn, compiled, "company", {"name": "Acme"}, owner)
    for name, stage in (("Upgrade", "lead"), ("Tills", "proposal")):
        rec = records.create_record(conn, compiled, "opportunity", {"name": name, "company": acme.id, "value": "1000.00"}, owner,
                                    at=MONDAY - dt.timedelta(days=10))
        if stage != "lead":
            records.update_record(conn, compiled, "opportunity", rec.id, {"stage": stage}, owner, at=MONDAY - dt.timedelta(days=5))


def test_a_scheduled_report_is_emailed_once_per_occurrence_with_its_chart_and_csv(store: Store, smtp):
    inbox, port = smtp
    with store.begin() as conn:
        mia = add_user(conn, "mia", roles=("staff", "sales_manager"))
        add_user(conn, "lee", roles=("staff", "support_lead"))  # not a sales manager: not a recipient
        add_user(conn, "quiet", roles=("sales_manager",))
        conn.execute(users.update().where(users.c.username == "quiet").values(email=None))  # no address: nothing to send to
        opportunities(conn, store.compiled, mia)
    mail = MailSettings(port=port, sender="reports@crm.example.com", base_url="https://crm.example.com")
    sent = [deliveries.deliver(store.engine, store.compiled, mail, "pipeline_funnel", 0, MONDAY) for _ in range(2)]
    next_week = deliveries.deliver(store.engine, store.compiled, mail, "pipeline_funnel", 0, MONDAY + dt.timedelta(days=7))
    assert (sent, next_week) == ([1, 0], 1)  # the second run of the same occurrence sends nothing
    assert [rcpt for rcpt, _ in inbox.messages] == [["mia@example.com"], ["mia@example.com"]]

    message = email.message_from_string(inbox.messages[0][1], policy=email.policy.default)
    assert message["Subject"] == "[Tailor] Pipeline funnel – 7 Jan – 6 Apr 2026"  # the last 90 days, in London
    assert message["Message-ID"] == f"<tailor-report-pipeline_funnel-0-20260406T0700Z-{mia}@crm.example.com>"
    parts = {part.get_content_type(): part for part in message.walk()}
    assert set(parts) >= {"text/plain", "text/html", "image/png", "text/csv"}
    text = parts["text/plain"].get_payload(decode=True).decode()
    assert "Lead" in text and "Open it in Tailor: https://crm.example.com/reports/pipeline_funnel" in text
    html = parts["text/html"].get_payload(decode=True).decode()
    assert '<img src="cid:chart" alt="Pipeline funnel, reached: Lead: 2; Qualified: 1; Proposal: 1; Negotiation: 0;' in html
    assert '<a href="https://crm.example.com/directory/opportunity?f1=stage&amp;o1=eq&amp;v1=Proposal&amp;' in html
    assert parts["image/png"]["Content-ID"] == "<chart>" and parts["image/png"].get_payload(decode=True)[:4] == b"\x89PNG"
    table = list(csv.reader(io.StringIO(parts["text/csv"].get_payload(decode=True).decode())))
    assert parts["text/csv"].get_filename() == "pipeline-funnel.csv"
    assert table[:3] == [["Stage", "Now in stage", "Value now", "Reached", "Went on (%)", "Dropped off (%)"],
                         ["Lead", "1", "1000.00", "2", "50.00", "50.00"], ["Qualified", "0", "", "1", "100.00", "0.00"]]


def test_the_schedule_fires_on_the_rule_and_a_repeated_run_sends_nothing_twice(tmp_path, smtp):
    """The CRM pack's weekly funnel (Mondays 08:00 London) over three weeks of April 2026, backfilled twice."""
    inbox, port = smtp
    compiled = compiled_packs(CRM)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    with engine.begin() as conn:
        mia = add_user(conn, "mia", roles=("staff", "sales_manager"))
        opportunities(conn, compiled, mia)
    london = ZoneInfo("Europe/London")
    mail = MailSettings(port=port, sender="reports@crm.example.com")

    async def scenario() -> int:
        with DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port()) as server:
            client = await Client.connect(server.address)
            with ThreadPoolExecutor(4) as pool:
                async with make_worker(client, engine, compiled, "reports", mail, pool):
                    sids = await deliveries.sync_report_schedules(client, compiled, "reports")
                    assert sids == ["tailor-report-pipeline_funnel-0", "tailor-report-sla_by_agent-0"]
                    handle = client.get_schedule_handle(sids[0])
                    await handle.pause()  # only the backfills below run
                    window = ScheduleBackfill(dt.datetime(2026, 4, 5, tzinfo=london), dt.datetime(2026, 4, 26, tzinfo=london),
                                              overlap=ScheduleOverlapPolicy.ALLOW_ALL)
                    await handle.backfill(window)
                    runs = 0
                    for _ in range(240):
                        runs = len([w async for w in client.list_workflows("WorkflowType = 'TailorReportDelivery' AND ExecutionStatus = 'Completed'")])
                        if runs >= 3 and len(inbox.messages) >= 3:
                            break
                        await asyncio.sleep(0.5)
                    await handle.backfill(window)  # the same occurrences again: a worker replaying them, say
                    for _ in range(240):
                        runs = len([w async for w in client.list_workflows("WorkflowType = 'TailorReportDelivery' AND ExecutionStatus = 'Completed'")])
                        if runs >= 6:
                            break
                        await asyncio.sleep(0.5)
                    for sid in sids:
                        await client.get_schedule_handle(sid).delete()
                    return runs

    runs = asyncio.run(scenario())
    assert runs == 6
    ids = sorted(email.message_from_string(m)["Message-ID"] for _, m in inbox.messages)
    assert ids == [f"<tailor-report-pipeline_funnel-0-202604{d}T0700Z-{mia}@crm.example.com>" for d in ("06", "13", "20")]
