"""How long after an activation every node runs the new release: two web apps and two workers' followers on one
database (PostgreSQL by default), each switching when it sees the new activation.

Baseline, in the same run: a bare loop polling the same one-row version at the same interval, doing nothing when it
changes (the least any polling design costs). Tailor's switch adds loading and compiling the release.

    python bench/release_bench.py [--rounds 10] [--url postgresql://postgres@127.0.0.1:5432/test] [--poll 0.5]
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime import releases  # noqa: E402
from runtime.db import make_engine, upgrade  # noqa: E402

CRM = Path(__file__).resolve().parent.parent / "definitions" / "crm"
FORM = "kind: form\nname: bench_{n}\nlabel: Bench {n}\nentity: company\ncontact: true\nfields:\n  note: text\n"


def engine_for(url: str) -> tuple[sa.Engine, callable]:
    if url.startswith("sqlite"):
        return make_engine(url), lambda: None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"}, poolclass=sa.pool.NullPool)

    def drop():
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()

    return engine, drop


async def main(rounds: int, url: str, poll: float) -> dict:
    tmp = Path(tempfile.mkdtemp())
    crm = tmp / "crm"
    shutil.copytree(CRM, crm)
    engine, drop = engine_for(url)
    try:
        with engine.begin() as conn:
            upgrade(conn)
            releases.adopt_disk(conn, [crm], tmp / "releases")
        switched: dict[str, float] = {}
        seen_bare: dict[str, float] = {}
        followers = [releases.Follower(engine, tmp / f"releases-{n}", lambda c, row, n=n: switched.__setitem__(n, time.perf_counter()),
                                       seen=1, poll=poll, name=n) for n in ("web app 1", "web app 2", "worker 1", "worker 2")]

        def read() -> int | None:
            with engine.connect() as conn:
                return releases.version(conn)

        async def bare(name: str):
            last = 1
            while True:
                now = await asyncio.to_thread(read)
                if now != last:
                    last = now
                    seen_bare[name] = time.perf_counter()
                await asyncio.sleep(poll)

        tasks = [asyncio.create_task(f.run()) for f in followers] + [asyncio.create_task(bare(f"bare {i}")) for i in range(4)]
        await asyncio.sleep(poll * 2)
        tailor, base = [], []
        for n in range(rounds):
            switched.clear()
            seen_bare.clear()
            (crm / "forms" / "contact" / f"bench_{n}.yaml").write_text(FORM.format(n=n))
            files, packs = releases.snapshot([crm])

            def activate():
                with engine.begin() as conn:
                    releases.switch_to(conn, releases.create(conn, files, packs), tmp / "releases", reason="bench")
                return time.perf_counter()

            at = await asyncio.to_thread(activate)
            deadline = time.perf_counter() + 30
            while (len(switched) < 4 or len(seen_bare) < 4) and time.perf_counter() < deadline:
                await asyncio.sleep(0.02)
            tailor.append(max(switched.values()) - at)
            base.append(max(seen_bare.values()) - at)
        for t in tasks:
            t.cancel()
        return {"rounds": rounds, "tailor_p50": statistics.median(tailor), "tailor_max": max(tailor),
                "bare_p50": statistics.median(base), "bare_max": max(base)}
    finally:
        drop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--poll", type=float, default=releases.POLL_SECONDS)
    args = parser.parse_args()
    r = asyncio.run(main(args.rounds, args.url, args.poll))
    print(f"{r['rounds']} activations, 4 nodes each (2 web apps, 2 workers), poll {args.poll} s, {args.url.split(':')[0]}")
    print(f"all four switched: median {r['tailor_p50']:.2f} s, worst {r['tailor_max']:.2f} s")
    print(f"bare poll saw it:  median {r['bare_p50']:.2f} s, worst {r['bare_max']:.2f} s  "
          f"(ratio {r['tailor_p50'] / r['bare_p50']:.2f}x median)")
