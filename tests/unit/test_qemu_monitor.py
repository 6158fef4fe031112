"""qemu.monitor.Monitor against a stand-in QMP server (no QEMU)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from qemu.monitor import Monitor, QmpError


def _json_objects(conn):
    decoder, buf = json.JSONDecoder(), ""
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            return
        buf += chunk.decode()
        while buf.strip():
            try:
                obj, end = decoder.raw_decode(buf.lstrip())
            except ValueError:
                break
            buf = buf.lstrip()[end:]
            yield obj


class FakeQmp:
    """Greeting, qmp_capabilities, query-status; `stop`/`cont` change the state and emit
    STOP/RESUME events before the answer, as QEMU does. One client at a time."""

    def __init__(self, path):
        self.path = str(path)
        self.state = "running"
        self.commands: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        self.sock.listen(1)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                send = lambda o: (f.write(json.dumps(o).encode() + b"\r\n"), f.flush())  # noqa: E731
                send({"QMP": {"version": {"qemu": {"micro": 3, "minor": 1, "major": 11}, "package": ""},
                              "capabilities": []}})
                for msg in _json_objects(conn):  # QMP is a stream of JSON objects, not lines
                    cmd = msg["execute"]
                    tag = {"id": msg["id"]} if "id" in msg else {}  # QEMU echoes the request id
                    self.commands.append(cmd)
                    if cmd == "stop":
                        self.state = "paused"
                        send({"event": "STOP", "timestamp": {}})
                    elif cmd == "cont":
                        self.state = "running"
                        send({"event": "RESUME", "timestamp": {}})
                    if cmd == "query-status":
                        send({"return": {"status": self.state, "running": self.state == "running"}, **tag})
                    elif cmd in ("qmp_capabilities", "stop", "cont"):
                        send({"return": {}, **tag})
                    else:
                        send({"error": {"class": "CommandNotFound",
                                        "desc": f"The command {cmd} has not been found"}, **tag})

    def close(self):
        self.sock.close()


def test_commands_events_and_errors(tmp_path):
    q = FakeQmp(tmp_path / "qmp.sock")
    m = Monitor(tmp_path / "qmp.sock", timeout=5)
    try:
        assert m.status() == "running"
        assert q.commands[:2] == ["qmp_capabilities", "query-status"]  # negotiated first
        m.execute("stop")
        assert m.status() == "paused"
        m.execute("cont")
        assert [e["event"] for e in m.events] == ["STOP", "RESUME"]
        with pytest.raises(QmpError, match="CommandNotFound"):
            m.execute("no-such-command")
        assert m.status() == "running"       # still usable after an error answer
    finally:
        m.close()
        q.close()


def test_no_socket_fails_at_once_and_wait_connected_retries(tmp_path):
    path = tmp_path / "late.sock"
    m = Monitor(path, timeout=5)
    t = time.monotonic()
    with pytest.raises(QmpError, match="cannot connect"):
        m.status()
    assert time.monotonic() - t < 1
    holder = {}
    threading.Timer(0.3, lambda: holder.setdefault("q", FakeQmp(path))).start()
    m.wait_connected(timeout=5)
    assert m.status() == "running"
    m.close()
    holder["q"].close()
    t = time.monotonic()
    with pytest.raises(QmpError, match="cannot connect"):
        Monitor(tmp_path / "never.sock").wait_connected(timeout=0.3)
    assert 0.3 <= time.monotonic() - t < 2


def test_threads_share_one_connection(tmp_path):
    q = FakeQmp(tmp_path / "qmp.sock")
    m = Monitor(tmp_path / "qmp.sock", timeout=5)
    errors = []

    def ask():
        try:
            for _ in range(20):
                assert m.status() == "running"
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and q.commands.count("qmp_capabilities") == 1
    m.close()
    q.close()
