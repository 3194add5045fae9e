"""The benchmark scripts keep working: each runs at a tiny size (figures come from full runs, in docs/benchmarks.md)."""
from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_release_bench_measures_every_node_switching(tmp_path):
    result = asyncio.run(bench("release_bench").main(1, f"sqlite:///{tmp_path / 'bench.db'}", 0.1))
    assert result["rounds"] == 1 and 0 < result["bare_p50"] < 30 and 0 < result["tailor_max"] < 30
