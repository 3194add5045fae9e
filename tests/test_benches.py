"""The benchmark scripts keep working: each runs at a tiny size (figures come from full runs, in docs/benchmarks.md)."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as the import system does: pydantic resolves a model's string annotations through it
    spec.loader.exec_module(module)
    return module


def test_release_bench_measures_every_node_switching(tmp_path):
    result = asyncio.run(bench("release_bench").main(1, f"sqlite:///{tmp_path / 'bench.db'}", 0.1))
    assert result["rounds"] == 1 and 0 < result["bare_p50"] < 30 and 0 < result["tailor_max"] < 30


def test_index_bench_times_writes_alone_and_during_an_indexed_field_migration():
    results = bench("index_bench").main(["--records", "1500", "--baseline", "0.3", "--no-write"])
    lite = results[0]
    assert lite.dialect == "sqlite" and lite.baseline and lite.transaction > 0 and lite.failed == 0
    assert re.search(r"1,5\d\d records, under a second to build, during which record writes wait \(SQLite has one writer\)",
                     lite.plan_line)  # the 1,500 and the baseline's writes
    for pg in results[1:]:
        assert pg.skipped or ("concurrently after the other changes commit" in pg.plan_line and pg.build > 0)


def test_web_bench_bare_note_does_the_work_of_a_submission(tmp_path):
    """The bare baseline of the web benchmark answers a call note as Tailor's submission does: token checked, the
    company read, one history entry, a repeat of the key given the first answer."""
    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from runtime.db import make_engine

    bare = bench("web_bare")
    engine = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    bare.seed(engine, "tok", 7)
    body = {"record_id": 7, "values": {"direction": "outbound", "subject": "Renewal", "notes": "Quote by Friday.", "minutes": 12}}
    with TestClient(bare.create_app(engine)) as client:
        for route in ("/note", "/note-async"):
            first = client.post(route, json=body, headers={"Authorization": "Bearer tok", "Idempotency-Key": route})
            again = client.post(route, json=body, headers={"Authorization": "Bearer tok", "Idempotency-Key": route})
            assert first.status_code == again.status_code == 201 and first.json() == again.json()
            assert client.post(route, json=body, headers={"Authorization": "Bearer nope", "Idempotency-Key": "x"}).status_code == 401
            assert client.post(route, json={**body, "record_id": 8}, headers={"Authorization": "Bearer tok",
                                                                             "Idempotency-Key": f"{route}-8"}).status_code == 422
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(bare.bare_history)).scalar() == 2


def run_script(*argv: str, timeout: int = 600) -> str:
    done = subprocess.run([sys.executable, str(BENCH / argv[0]), *argv[1:]], cwd=BENCH.parent, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def test_lateness_bench_raises_every_alert_on_both_sides():
    out = run_script("lateness_bench.py", "--tiny", "--no-write")
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("alert lateness, ")]
    assert [r[0] for r in rows] == ["alert lateness, 3 deadlines spread over 1 s", "alert lateness, 5 due in the same second"], out
    assert all("only" not in r[1] and "only" not in r[2] and r[3].endswith("×") for r in rows), out  # every alert raised, a ratio


def test_scale_bench_fills_both_workers_and_runs_one_then_two_on_postgres():
    out = run_script("scale_bench.py", "--open", "10", "--bare", "10", "--postgres", "5", "--no-write")
    result = json.loads(out[out.index("\n{") + 1:])
    assert result["open"]["tailor"]["rows"] == 10 and result["open"]["bare"]["rows"] == 10, out
    assert result["open"]["tailor"]["peak_mib"] > 0 and result["open"]["tailor"]["server_mib"] > 0
    assert [r["workers"] for r in result["postgres"]["runs"]] == [1, 2], out
    assert all(r["n"] == 5 and r["start_rate"] > 0 and r["complete_rate"] > 0 for r in result["postgres"]["runs"]), out


def test_runtime_bench_measures_tailor_and_both_bare_workflows():
    out = run_script("runtime_bench.py", "--tiny", "--no-write")
    assert out.count("process starts/s") == 2 and out.count("task completions/s") == 2, out  # vs each bare baseline
    assert "sqlite: filter" in out and "postgresql: filter" in out, out
