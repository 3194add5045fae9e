"""The embedded dev server: a server left behind by a run that was killed outright does not block the next run, and a
server that cannot start says why at once."""
from __future__ import annotations

import socket

import pytest

from runtime.devserver import DevServer, DevServerFailed
from tests.conftest import dev_server, free_port


def test_a_leftover_dev_server_on_the_same_data_is_stopped_before_a_new_one_starts(tmp_path):
    leftover = dev_server(tmp_path / "temporal")
    port, ui = leftover.port, leftover.ui_port
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


@pytest.mark.parametrize("which", ["port", "ui_port"])
def test_a_port_another_program_holds_is_named_at_once_not_waited_for(tmp_path, which):
    """The server exits at once when its port is taken; waiting for it to serve would last the whole timeout (ten
    minutes here) and then say only that nothing answered."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()  # a port that accepts connections, as another program's server would
        taken = holder.getsockname()[1]
        ports = {"port": free_port(), "ui_port": free_port(), which: taken}
        server = DevServer(tmp_path / "temporal", **ports)
        with pytest.raises(DevServerFailed) as failed:
            server.start(timeout=600)
    message = str(failed.value)
    assert f"bind: address already in use — port {taken} is taken by another program" in message
    assert failed.value.port_in_use == taken
    assert server.proc is None and not (tmp_path / "temporal" / "temporal.pid").exists()  # nothing left behind


def test_the_embedded_servers_store_keeps_a_write_ahead_log(tmp_path):
    """The server's SQLite file in WAL mode, as Tailor's own database: with its default rollback journal every
    persistence write cost several fsyncs, and a burst of deadlines waited on them (docs/benchmarks.md)."""
    server = dev_server(tmp_path / "temporal")
    try:
        header = (tmp_path / "temporal" / "temporal.db").read_bytes()[:100]
        assert header[18:20] == b"\x02\x02"  # the file format's read and write versions: 2 is WAL, 1 the rollback journal
        assert (tmp_path / "temporal" / "temporal.db-wal").exists()
    finally:
        server.stop()
