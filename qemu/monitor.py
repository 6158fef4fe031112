"""A small synchronous QMP client for the launcher's own monitor socket.

A boot with `--break` gives QEMU two QMP sockets (`Session.qmp_args`): one for the server
(which sends `stop` when a break matches; `mali-vdev continue` makes it send `cont`) and
one for the launcher, which asks `query-status` so that the time the guest spends paused
does not count against `--timeout`, and which `watch` callbacks use (`Live.qmp`). QEMU
serves one client per QMP socket at a time, hence two.

Plain sockets and JSON lines, no event loop: callable from any thread (one lock).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path


class QmpError(RuntimeError):
    """QEMU answered with an error, or the monitor could not be reached."""


class Monitor:
    """`execute("query-status")` → the `return` value; connects on first use."""

    def __init__(self, path: Path | str, timeout: float = 10.0):
        self.path, self.timeout = str(path), timeout
        self._sock: socket.socket | None = None
        self._file = None
        self._lock = threading.Lock()
        self.events: list[dict] = []     # asynchronous events seen (STOP, RESUME, ...)

    def _connect(self) -> None:
        """One attempt (QEMU may not have created the socket yet: callers retry)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise QmpError(f"cannot connect to QMP {self.path}: {e}") from None
        self._sock, self._file = s, s.makefile("rwb")
        greeting = self._read()
        if "QMP" not in greeting:
            self.close()
            raise QmpError(f"no QMP greeting on {self.path}: {greeting}")
        self._call("qmp_capabilities", None)

    def _read(self) -> dict:
        line = self._file.readline()
        if not line:
            raise QmpError(f"QMP {self.path} closed the connection")
        return json.loads(line)

    def _call(self, command: str, arguments: dict | None):
        msg = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self._file.write(json.dumps(msg).encode() + b"\n")
        self._file.flush()
        while True:
            answer = self._read()
            if "event" in answer:
                self.events.append(answer)
                continue
            if "error" in answer:
                e = answer["error"]
                raise QmpError(f"QMP {command}: {e.get('class')}: {e.get('desc')}")
            return answer.get("return")

    def execute(self, command: str, **arguments):
        with self._lock:
            try:
                if self._sock is None:
                    self._connect()
                return self._call(command, arguments or None)
            except (OSError, ValueError) as e:
                self._close()
                raise QmpError(f"QMP {command} on {self.path}: {e}") from None

    def wait_connected(self, timeout: float = 10.0) -> None:
        """Retry until QEMU's socket accepts us (it appears soon after QEMU starts)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.execute("query-status")
                return
            except QmpError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def status(self) -> str:
        """QEMU's run state: "running", "paused", "shutdown", ..."""
        return self.execute("query-status")["status"]

    def _close(self) -> None:
        for c in (self._file, self._sock):
            try:
                if c is not None:
                    c.close()
            except OSError:
                pass
        self._sock = self._file = None

    def close(self) -> None:
        with self._lock:
            self._close()

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
