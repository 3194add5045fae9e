"""The embedded dev server: a server left behind by a run that was killed outright does not block the next run."""
from __future__ import annotations

from runtime.devserver import DevServer
from tests.conftest import free_port


def test_a_leftover_dev_server_on_the_same_data_is_stopped_before_a_new_one_starts(tmp_path):
    port, ui = free_port(), free_port()
    leftover = DevServer(tmp_path / "temporal", port=port, ui_port=ui).start()
    try:
        # a new run knows nothing of the old process but its pid file; the old one holds the port and the database
        fresh = DevServer(tmp_path / "temporal", port=port, ui_port=ui).start()
        try:
            assert leftover.proc.wait(timeout=30) is not None
            assert fresh.proc.poll() is None
            assert (tmp_path / "temporal" / "temporal.pid").read_text() == str(fresh.proc.pid)
        finally:
            fresh.stop()
        assert not (tmp_path / "temporal" / "temporal.pid").exists()
    finally:
        leftover.stop()


def test_a_pid_file_naming_some_other_process_is_left_alone(tmp_path):
    import subprocess
    import sys

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "temporal").mkdir()
        (tmp_path / "temporal" / "temporal.pid").write_text(str(other.pid))
        server = DevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port()).start()
        server.stop()
        assert other.poll() is None  # a reused pid is not ours to stop
    finally:
        other.kill()
        other.wait()
