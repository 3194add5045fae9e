"""What every benchmark script shares: the machine it ran on, the code it measured, its section of docs/benchmarks.md."""
from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_HEAD = ("# Benchmarks\n\nEach benchmark script under `bench/` rewrites its own section of this page, "
             "between its `<!-- NAME:start -->` and `<!-- NAME:end -->` markers.\n")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


def machine_basics() -> dict[str, str]:
    """CPU, cores, memory, Python and OS of this machine."""
    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    osname = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', _read("/etc/os-release"), re.M)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "CPU": cpu.group(1).strip() if cpu else platform.processor() or platform.machine(),
        "cores": f"{os.cpu_count()} ({usable} usable by this process)",
        "memory": f"{int(mem.group(1)) / 1024 ** 2:.1f} GiB" if mem else "unknown",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": f"{osname.group(1) if osname else platform.system()} (kernel {platform.release()}, {platform.machine()})",
    }


def code_state(folders: tuple[str, ...]) -> str:
    """'commit abc123', noting uncommitted changes in the folders the benchmark measures."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", *folders], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not commit:
        return "unknown"
    return f"commit {commit}" + (f" with uncommitted changes in {', '.join(f + '/' for f in folders)}" if dirty else "")


def load_average(note: str) -> str:
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + f" (1 / 5 / 15 min, when the run ended{note})"


def write_section(path: Path, start: str, end: str, section: str) -> None:
    """Replace one benchmark's section of the benchmarks page, leaving the other sections alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else PAGE_HEAD
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section.rstrip("\n") + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
