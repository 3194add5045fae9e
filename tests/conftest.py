from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CRM = ROOT / "definitions" / "crm"
ACME = ROOT / "definitions" / "examples" / "acme"


class PackWriter:
    """Writes small packs for tests: `packs.write("base", {"pack.yaml": "...", ...})`."""

    def __init__(self, root: Path):
        self.root = root

    def write(self, name: str, files: dict[str, str], version: str = "1.0.0", extends: str = "") -> Path:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        if "pack.yaml" not in files:
            head = f"kind: pack\nname: {name}\nversion: {version}\n" + (f"extends:\n{textwrap.indent(extends, '  ')}\n" if extends else "")
            (folder / "pack.yaml").write_text(head)
        for rel, text in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        return folder


@pytest.fixture
def packs(tmp_path, monkeypatch) -> PackWriter:
    monkeypatch.chdir(tmp_path)  # problems are reported relative to the working directory
    return PackWriter(tmp_path)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can save screenshots of failures."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
