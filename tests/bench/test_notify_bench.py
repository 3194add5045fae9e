"""The notification benchmark at a tiny size, so the script keeps working between its real runs."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_notification_benchmark_runs_and_every_assignment_reaches_its_page():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "notify_bench.py"), "--pages", "5", "--assignments", "2", "--idle", "0.5",
                           "--no-postgres", "--no-write"], cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.split()[:1] in (["sqlite"], ["bare"])}
    assert set(rows) == {"sqlite", "bare"}, done.stdout
    assert rows["sqlite"][1:3] == ["5", "2/2"] and rows["bare"][1:3] == ["5", "2/2"], done.stdout  # every new count heard
