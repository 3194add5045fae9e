"""npm packages for tests that compare with or render through JavaScript tools (ajv, RJSF, JSON Forms).

`tests/js/package.json` pins them and `tests/js/package-lock.json` what they depend on; they are installed once
with `npm ci` into `.cache/npm/<hash of both>/` (git-ignored) and reused while the pins stay the same. Nothing
built is committed.
"""
from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "tests" / "js"
CACHE = ROOT / ".cache" / "npm"


def node() -> str:
    """The node executable; a clear failure (not a skip) when the machine has none."""
    found = shutil.which("node")
    if not found:
        raise RuntimeError("these tests need Node.js 18+ ('node' on PATH; Debian: apt-get install nodejs npm)")
    return found


def packages() -> Path:
    """The folder holding node_modules with the pinned packages, installing them first if they are missing."""
    files = {name: (JS / name).read_bytes() for name in ("package.json", "package-lock.json")}
    folder = CACHE / hashlib.sha256(b"\0".join(files.values())).hexdigest()[:16]
    done = folder / ".installed"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test processes installing at once would trample each other
        if not done.exists():
            for name, content in files.items():
                (folder / name).write_bytes(content)
            npm = shutil.which("npm")
            if not npm:
                raise RuntimeError("these tests need npm to install their packages (Debian: apt-get install npm)")
            result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                                    capture_output=True, text=True, timeout=600, check=False)
            if result.returncode:
                raise RuntimeError(f"npm ci failed in {folder}:\n{result.stdout}\n{result.stderr}")
            done.write_text("ok\n")
    return folder
