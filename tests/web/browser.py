"""What browser tests share: Debian's Chromium, `tailor run --demo` on free ports, logging in, screenshots of failures."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ROOT, free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")


def launch(playwright) -> Browser:
    """Headless Chromium as the project runs it (nothing downloaded)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


@contextlib.contextmanager
def demo_platform(tmp: Path, packs: str | None = None, env: dict[str, str] | None = None) -> Iterator[tuple[str, Path, Path]]:
    """`tailor run --demo` on free ports under `tmp` (with TAILOR_PACKS=`packs` if given, and any other settings in
    `env`, e.g. TAILOR_SMTP_PORT): (its address, its SQLite file, its log); stopped with Ctrl-C at the end. If it dies or
    never answers, the error is the tail of its log."""
    web, temporal = free_port(), free_port()
    env = {**os.environ, "TAILOR_DATA_DIR": str(tmp / "var"), "TAILOR_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal}", "PYTHONUNBUFFERED": "1",
           **({"TAILOR_PACKS": packs} if packs else {}), **(env or {})}
    log = tmp / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "tailor"), "run", "--demo", "--port", str(web)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{web}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2)
            break
        except OSError:
            assert proc.poll() is None, f"tailor run exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError(f"tailor run did not answer within 90 s:\n{log.read_text()[-3000:]}")
    try:
        yield base, tmp / "var" / "tailor.db", log
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def save_failure(request, pages: list[Page]) -> None:
    """Full-page screenshots of a failed test's pages in test-artifacts/."""
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for i, pg in enumerate(pages):
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}{'-' + str(i) if i else ''}.png"), full_page=True)


def log_in(page: Page, base: str, who: str) -> None:
    """Log in through the login form as `who` (password = user name in the demo) and land on My work."""
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(who)
    page.get_by_label("Password").fill(who)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My work")).to_be_visible()
