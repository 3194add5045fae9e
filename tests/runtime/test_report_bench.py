"""bench/report_bench.py on a few hundred rows: its data is what the reports read, and every measure runs."""
from __future__ import annotations

import datetime as dt
import importlib.util

import sqlalchemy as sa

from runtime.schema import alerts, audit_log, tasks
from tests.conftest import ROOT

from .conftest import compiled_packs


def bench():
    spec = importlib.util.spec_from_file_location("report_bench", ROOT / "bench" / "report_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_report_benchmark_seeds_and_measures_a_small_data_set(tmp_path):
    report_bench = bench()
    compiled = compiled_packs(ROOT / "definitions" / "crm")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'bench.db'}")
    made = report_bench.seed(engine, compiled, 900, 300, dt.datetime.now(dt.UTC))
    with engine.connect() as conn:
        counts = [conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in (tasks, alerts)]
        changes = conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(audit_log.c.entity == "opportunity")).scalar()
    assert counts == [900, made["alerts"]] and made["alerts"] > 0 and changes == made["changes"] > 300
    figures = report_bench.measure(engine, compiled, runs=1)
    assert {name: len(values) for name, values in figures.items()} == dict.fromkeys(figures, 1)
