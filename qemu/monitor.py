"""A small synchronous QMP client for the launcher's own monitor socket.

A boot with `--break` gives QEMU two QMP sockets (`Session.qmp_args`): one for the server
(which sends `stop` when a break matches; `mali-vdev continue` makes it send `cont`) and
one for the launcher, which asks `query-status` so that the time the guest spends paused
does not count against `--timeout`, and which `watch` callbacks use (`Live.qmp`). QEMU
serves one client per QMP socket at a time, hence two.

Built on QEMU's own `qemu.qmp` library (its synchronous `legacy` client); callable from any
thread (one lock).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from qemu.qmp import ExecuteError, QMPError
from qemu.qmp.legacy import QEMUMonitorProtocol


class QmpError(RuntimeError):
    """QEMU answered with an error, or the monitor could not be reached."""


class Monitor:
    """`execute("query-status")` → the `return` value; connects on first use.

    A thin, lock-protected layer over qemu.qmp's synchronous client (QEMU's own library)."""

    def __init__(self, path: Path | str, timeout: float = 10.0):
        self.path, self.timeout = str(path), timeout
        self._qmp: QEMUMonitorProtocol | None = None
        self._lock = threading.Lock()
        self.events: list[dict] = []     # asynchronous events seen (STOP, RESUME, ...)

    def _connect(self) -> None:
        """One attempt (QEMU may not have created the socket yet: callers retry)."""
        qmp = QEMUMonitorProtocol(self.path)
        try:
            qmp.connect(negotiate=True)
        except (OSError, QMPError) as e:
            qmp.close()
            raise QmpError(f"cannot connect to QMP {self.path}: {e}") from None
        self._qmp = qmp

    def execute(self, command: str, **arguments):
        with self._lock:
            try:
                if self._qmp is None:
                    self._connect()
                result = self._qmp.cmd(command, **arguments)
                self.events.extend(self._qmp.get_events(wait=False))
                self._qmp.clear_events()
                return result
            except ExecuteError as e:
                raise QmpError(f"QMP {command}: {e.error_class}: {e}") from None
            except (OSError, QMPError, ValueError) as e:
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
        if self._qmp is not None:
            try:
                self._qmp.close()
            except (OSError, QMPError):
                pass
        self._qmp = None

    def close(self) -> None:
        with self._lock:
            self._close()

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
