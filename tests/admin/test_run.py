"""`tailor run --demo`, the README's main command, as a person runs it: it starts, serves, works, and stops on Ctrl-C."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.db import make_engine
from tests.conftest import CRM, ROOT, free_port


def children(pid: int) -> dict[int, str]:
    """The child processes of `pid` and their command lines."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                out[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie has exited; only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return False


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return predicate()


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path, int]:
    """`tailor run ARGS` on free ports, once its web app answers /health."""
    web, temporal = free_port(), free_port()
    env = {**os.environ, "TAILOR_DATA_DIR": str(tmp_path / "var"), "TAILOR_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}",
           "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "run.log"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "tailor"), "run", *args, "--port", str(web)], cwd=ROOT, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{web}/health", timeout=2):
                return True
        except OSError:
            return proc.poll() is not None

    assert wait_for(healthy, 90) and proc.poll() is None, log.read_text()[-3000:]
    return proc, log, web


def worker_of(proc: subprocess.Popen, log: Path) -> int:
    """The pid of the `tailor worker` child, once it says it runs."""
    assert wait_for(lambda: "[worker] worker running" in log.read_text(), 60), log.read_text()[-3000:]
    [pid] = [pid for pid, cmd in children(proc.pid).items() if "admin.cli worker" in cmd]
    return pid


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
                # the open ones: the demo's past (definitions/crm/demo/history.yaml) holds finished tasks for the reports
                rows = conn.execute(sa.text("SELECT title, status, group_name FROM tasks WHERE status = 'open' ORDER BY title")).all()
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
    assert "[worker] worker running on task queue 'tailor'" in out  # the worker is a process of its own, its output shown
    assert "demo data loaded: crm 1.0.0" in out


def test_a_broken_demo_file_stops_tailor_run_demo_before_anything_starts(tmp_path):
    """Every problem at its line; no Temporal server, no worker, and nothing of any pack's demo in the database."""
    import shutil

    from tests.conftest import ACME

    acme = shutil.copytree(ACME, tmp_path / "acme")
    (acme / "demo" / "acme.yaml").write_text("users:\n  - {username: carl, roles: [wizard]}\nrecords:\n  spaceship: []\n")
    env = {**os.environ, "TAILOR_DATA_DIR": str(tmp_path / "var"), "TAILOR_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
           "TAILOR_PACKS": f"{CRM},{acme}"}
    result = subprocess.run([str(Path(sys.executable).parent / "tailor"), "run", "--demo", "--port", str(free_port())], check=False, cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{acme}/demo/acme.yaml:2:30: no role 'wizard'" in result.stderr
    assert f"{acme}/demo/acme.yaml:4:3: no entity 'spaceship'" in result.stderr
    assert result.stderr.rstrip().endswith("2 problems found") and "Traceback" not in result.stderr
    assert "Temporal" not in result.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'tailor.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar() == 0
    engine.dispose()


@pytest.mark.parametrize("how", ["SIGTERM to tailor run", "the worker dies", "tailor run is killed"])
def test_the_worker_process_stops_with_tailor_run_and_tailor_run_with_the_worker(tmp_path, how):
    proc, log, _ = start(tmp_path)
    worker = worker_of(proc, log)
    dev = [pid for pid, cmd in children(proc.pid).items() if "temporal" in cmd]
    try:
        if how == "SIGTERM to tailor run":
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
            assert log.read_text().rstrip().endswith("stopped") and "[worker] stopped" in log.read_text()
        elif how == "the worker dies":
            os.kill(worker, signal.SIGKILL)
            assert proc.wait(timeout=60) == 1  # nobody would run the processes: everything stops, and says why
            assert "error: the worker stopped with exit code -9; everything was stopped" in log.read_text()
        else:
            proc.kill()  # no chance to stop anything: the worker notices it is orphaned and stops itself
            proc.wait(timeout=10)
            assert wait_for(lambda: not alive(worker), 30), log.read_text()[-3000:]
            assert "[worker] stopped" in log.read_text()
            assert dev and wait_for(lambda: not any(alive(pid) for pid in dev), 30)  # the dev server dies with its parent
        assert not alive(worker)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in dev:  # whatever went wrong above, leave no server behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
