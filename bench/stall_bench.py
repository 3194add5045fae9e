"""Stall benchmark: does one slow request hold up everyone else?

A mail merge of 500 companies with a CPU-heavy letter (the slow request) is sent while 100 quick
requests (`GET /health`, which reads the database) are in flight; their latency is compared with
the same 100 requests on an idle server in the same run (the bare baseline). A web app that does
blocking work on its event loop makes every quick request wait for the slow one.

    .venv/bin/python bench/stall_bench.py [--tree OLD_CHECKOUT] [--no-write]

`--tree` also measures another checkout of Tailor (e.g. `git worktree add /tmp/before 35cbec9`), the
same way, for a before/after comparison. Rewrites its section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
import sqlalchemy as sa
from argon2 import PasswordHasher
from report import code_state, load_average, machine_basics, write_section

from engine.compiler import compile_model
from engine.loader import load
from runtime import records
from runtime.schema import metadata as platform
from runtime.schema import users

DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- stall-bench:start -->", "<!-- stall-bench:end -->"
QUICK = 100
LETTER = "{% for c in record.name * 2000 %}{{ c|upper }}{% endfor %}"  # 24,000 loop turns a record
SERVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import uvicorn, sqlalchemy as sa
    from engine.compiler import compile_model
    from engine.loader import load
    try:
        from admin.app import create_app
    except ImportError:  # a checkout from before admin/app.py
        from admin.web import create_app
    from pathlib import Path
    engine = sa.create_engine("sqlite:///" + sys.argv[2])
    app = create_app(engine, compile_model(load([Path(sys.argv[1]) / "definitions" / "crm"])), None, secret_key="bench")
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def seed(path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    compiled = compile_model(load([ROOT / "definitions" / "crm"]))
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(users.insert().values(username="mia", name="Mia", roles=["staff", "sales_manager"],
                                           password_hash=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("mia"),
                                           created_at=dt.datetime.now(dt.UTC)))
        for i in range(500):
            records.create_record(conn, compiled, "company", {"name": f"Company {i:04d}", "status": "customer"}, None)
    engine.dispose()


async def quick_batch(http: httpx.AsyncClient) -> list[float]:
    async def one() -> float:
        t = time.perf_counter()
        r = await http.get("/health")
        r.raise_for_status()
        return time.perf_counter() - t

    return list(await asyncio.gather(*(one() for _ in range(QUICK))))


async def measure(tree: Path, tmp: Path) -> dict:
    db = tmp / f"stall-{abs(hash(str(tree)))}.db"
    seed(db)
    port = free_port()
    log = open(tmp / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(tree), str(db), str(port)], stdout=log, stderr=log,
                            env={**os.environ, "PYTHONPATH": str(tree)})
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            for _ in range(200):
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            page = await http.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            await http.post("/login", data={"csrf_token": token, "username": "mia", "password": "mia"})
            token = re.search(r'name="csrf_token" value="([^"]+)"', (await http.get("/directory/company")).text).group(1)
            await quick_batch(http)  # warm up
            idle = await quick_batch(http)
            t = time.perf_counter()
            slow = asyncio.create_task(http.post("/directory/company/merge", data={"csrf_token": token, "template": LETTER}))
            await asyncio.sleep(0.05)  # the slow request is being worked on
            busy = await quick_batch(http)
            response = await slow
            slow_s = time.perf_counter() - t
        return {"idle": idle, "busy": busy, "slow_s": slow_s, "slow_status": response.status_code,
                "letters": response.text.count('class="card letter"')}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def row(name: str, res: dict) -> str:
    idle50, idle95 = pct(res["idle"], 50) * 1000, pct(res["idle"], 95) * 1000
    busy50, busy95 = pct(res["busy"], 50) * 1000, pct(res["busy"], 95) * 1000
    return (f"| {name} | {idle50:.0f} / {idle95:.0f} ms | {busy50:.0f} / {busy95:.0f} ms | {busy95 / idle95:.1f}x | "
            f"{res['slow_s']:.2f} s ({res['slow_status']}, {res['letters']} letters) |")


async def main_async(args) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("this checkout", ROOT)] + ([(f"`{args.tree}`", Path(args.tree).resolve())] if args.tree else [])
        results = [(name, await measure(tree, Path(tmp))) for name, tree in runs]
    info = machine_basics()
    lines = [
        START, "## Stall: one slow request beside 100 quick ones", "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {info['CPU']}, {info['cores']} cores, {info['memory']}; "
        f"{info['Python']}; {code_state(('admin', 'engine', 'forms', 'runtime'))}; load {load_average('')}.", "",
        f"{QUICK} concurrent `GET /health` (reads the database) on an idle server (the baseline), then the same while a mail merge "
        "of 500 companies with a CPU-heavy letter is being produced (uvicorn, SQLite, the CRM pack, one process).", "",
        "| server | idle p50 / p95 | beside the merge p50 / p95 | p95 ratio | the merge itself |", "|---|---|---|---|---|",
        *(row(name, res) for name, res in results), "", END,
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", help="another checkout to measure the same way")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    section = asyncio.run(main_async(args))
    print(section)
    if not args.no_write:
        write_section(DOCS, START, END, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
