"""`tailor run --demo`, the README's main command, as a person runs it: it starts, serves, works, and stops on Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa

from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.db import make_engine
from tests.conftest import CRM, ROOT, free_port


def triaged(engine: sa.Engine, title: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM tasks WHERE title = :t"), {"t": title}).scalar() == 1


def test_tailor_run_demo_starts_everything_and_stops_cleanly(tmp_path):
    web, temporal = free_port(), free_port()
    env = {**os.environ, "TAILOR_DATA_DIR": str(tmp_path / "var"), "TAILOR_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
           "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "run.log"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "tailor"), "run", "--demo", "--port", str(web)], cwd=ROOT, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web}/health", timeout=2) as resp:
                    health = json.load(resp)
                    break
            except OSError:
                time.sleep(0.5)
        assert health == {"status": "ok", "database": "ok", "temporal": "ok"}, log.read_text()[-3000:]
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'tailor.db'}")
        deadline = time.monotonic() + 30
        rows = []
        while time.monotonic() < deadline and len(rows) < 2:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT title, status, group_name FROM tasks ORDER BY title")).all()
            time.sleep(0.5)
        engine.dispose()
        # the demo's lead follow-up, and the support SLA its support request's creation triggered
        assert [tuple(r) for r in rows] == [("Qualify the enquiry: Acme Health – platform upgrade", "open", "sales"),
                                            ("Triage: Reports will not print", "open", "support")]
        assert (tmp_path / "var" / "temporal" / "temporal.db").exists()  # the dev server persists under the data folder

        # a support request whose web request died after its commit: the worker's drainer starts its SLA
        engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'tailor.db'}")
        with engine.begin() as conn:
            records.create_record(conn, compile_model(load([CRM])), "support_request",
                                  {"company": 1, "summary": "Left behind", "description": "-", "category": "question"}, None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not triaged(engine, "Triage: Left behind"):
            time.sleep(0.5)
        assert triaged(engine, "Triage: Left behind"), log.read_text()[-3000:]
        engine.dispose()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    out = log.read_text()
    assert code == 0 and out.rstrip().endswith("stopped"), out[-3000:]
    assert "Traceback" not in out
