from __future__ import annotations

import random
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


_HANDED_OUT: set[int] = set()  # ports free_port() gave this test process: never twice, though each is closed again at once


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port nothing listens on right now, below the kernel's ephemeral range.

    The kernel hands ports of that range to every outgoing connection and every bind to port 0 (the Temporal dev
    server picks its internal ports so), and any of them may take a port between our check and its use; below the
    range, only a program choosing the same number by chance can. What remains is caught where a server starts
    (`dev_server` chooses again when its log says a port was taken).
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 20000), low)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:  # nothing free below the range: take the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dev_server(data_dir: Path, attempts: int = 5, **options):
    """A started Temporal dev server on ports free a moment ago, chosen again if another program took one meanwhile."""
    from runtime.devserver import DevServer, DevServerFailed

    for attempt in range(attempts):
        server = DevServer(data_dir, port=free_port(), ui_port=free_port(), **options)
        try:
            return server.start()
        except DevServerFailed as exc:
            if exc.port_in_use is None or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can save screenshots of failures."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
