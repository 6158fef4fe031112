"""A small synchronous QMP client for the launcher's own monitor socket.

A boot with `--break` gives QEMU two QMP sockets (`Session.qmp_args`): one for the server
(which sends `stop` when a break matches; `mali-vdev continue` makes it send `cont`) and
one for the launcher, which asks `query-status` so that the time the guest spends paused
does not count against `--timeout`, and which `watch` callbacks use (`Live.qmp`). QEMU
serves one client per QMP socket at a time, hence two.

Built on QEMU's own `qemu.qmp` library; callable from any thread (one lock).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from qemu.qmp import ExecuteError, QMPClient, QMPError


class QmpError(RuntimeError):
    """QEMU answered with an error, or the monitor could not be reached."""


class Monitor:
    """`execute("query-status")` → the `return` value; connects on first use.

    qemu.qmp is asynchronous; the launcher and `watch` callbacks are threads. So the client
    lives on one event loop in its own thread, and every call is handed to it with a timeout.
    """

    def __init__(self, path: Path | str, timeout: float = 10.0):
        self.path, self.timeout = str(path), timeout
        self.events: list[dict] = []     # asynchronous events seen (STOP, RESUME, ...)
        self._client: QMPClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self, coro):
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="qmp-monitor", daemon=True)
            self._thread.start()
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, self.timeout), self._loop)
        return future.result()

    async def _connect(self) -> None:
        client = QMPClient("mali-vdev-launcher")
        try:
            await client.connect(self.path)
        except BaseException:
            await client.disconnect()
            raise
        self._client = client

    async def _execute(self, command: str, arguments: dict):
        if self._client is None:
            await self._connect()
        result = await self._client.execute(command, arguments or None)
        while not self._client.events.empty():
            self.events.append(dict(await self._client.events.get()))
        return result

    def execute(self, command: str, **arguments):
        with self._lock:
            try:
                return self._run(self._execute(command, arguments))
            except ExecuteError as e:
                raise QmpError(f"QMP {command}: {e.error_class}: {e}") from None
            except (OSError, QMPError, asyncio.TimeoutError, EOFError) as e:
                what = f"QMP {command} on" if self._client is not None else "cannot connect to QMP"
                self._disconnect()
                raise QmpError(f"{what} {self.path}: {e or type(e).__name__}") from None

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

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is not None:
            try:
                self._run(client.disconnect())
            except Exception:  # already gone
                pass

    def close(self) -> None:
        with self._lock:
            self._disconnect()
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(5)
                self._loop.close()
                self._loop = self._thread = None

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
