"""Reading the guest's serial console: log every line, pick out our markers.

/init (guest_init.sh) prints `@@MALI-VDEV-INIT@@`, `@@MALI-VDEV-CMD-START@@`, one
`@@MALI-VDEV-OUT@@ <line>` per line of the guest command's output, then
`@@MALI-VDEV-CMD-EXIT <status>@@`; only prefixed lines count as command output.

/init writes them to the second UART (ttyAMA1, `add_listener`) when the machine has one:
the kernel's console writes synchronously and can land in the middle of a line that a
process is writing to the same UART.  Both streams go through the same parser and into
the same log, so a guest without ttyAMA1 still works over the console alone.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from typing import BinaryIO, Callable, TextIO

INIT = "@@MALI-VDEV-INIT@@"
START = "@@MALI-VDEV-CMD-START@@"
OUT = "@@MALI-VDEV-OUT@@ "
EXIT_RE = re.compile(r"@@MALI-VDEV-CMD-EXIT (\d+)@@")
ERROR_RE = re.compile(r"@@MALI-VDEV-ERROR (.*)@@")
PANIC_RE = re.compile(r"Kernel panic - not syncing|---\[ end Kernel panic")


class ConsoleMonitor:
    """Consumes the console stream in a thread; the boot loop waits on `changed`."""

    def __init__(self, stream: BinaryIO, log: TextIO, t0: float,
                 on_output: Callable[[str], None] | None = None,
                 on_line: Callable[[str], None] | None = None):
        self.stream, self.log, self.t0 = stream, log, t0
        self.on_output, self.on_line = on_output, on_line
        self.output: list[str] = []
        self.exit_status: int | None = None
        self.error: str | None = None
        self.panic: str | None = None
        self.eof = False
        self.line_count = 0                 # console lines so far (all of them)
        self.times: dict[str, float] = {}   # event -> seconds since QEMU started
        self.changed = threading.Event()
        self._lock = threading.Lock()       # lines from the two streams, one at a time
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="guest-console", daemon=True)
        self._extra: list[threading.Thread] = []

    def start(self) -> "ConsoleMonitor":
        self._thread.start()
        return self

    def add_listener(self, listener: socket.socket) -> None:
        """Read a second stream (ttyAMA1) from the first connection to `listener`
        (QEMU's `-serial unix:` connects at start-up); the listener is closed after."""
        t = threading.Thread(target=self._run_listener, args=(listener,),
                             name="guest-output", daemon=True)
        self._extra.append(t)
        t.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._closing = True  # a QEMU that never connected: stop waiting for it
        for t in self._extra:
            t.join(timeout)

    def _mark(self, event: str) -> None:
        self.times.setdefault(event, round(time.monotonic() - self.t0, 3))

    def _run(self) -> None:
        try:
            self._read(self.stream)
        finally:
            self.eof = True
            self.changed.set()

    def _run_listener(self, listener: socket.socket) -> None:
        listener.settimeout(0.1)
        try:
            while True:
                last = self._closing or self.eof  # QEMU gone: one more look, then give up
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    if last:
                        return
                    continue
                with conn, conn.makefile("rb") as stream:
                    self._read(stream)
                return
        except OSError:
            pass
        finally:
            listener.close()

    def _read(self, stream: BinaryIO) -> None:
        try:
            for raw in iter(stream.readline, b""):
                self._line(raw.decode(errors="replace").rstrip("\r\n").replace("\r", ""))
        except (OSError, ValueError):
            pass

    def _line(self, line: str) -> None:
        with self._lock:
            self._parse(line)

    def _parse(self, line: str) -> None:
        self.log.write(line + "\n")
        self.log.flush()
        self.line_count += 1
        self._mark("first_console_line")
        if self.on_line:
            self.on_line(line)
        # Markers are searched anywhere in the line: kernel output may precede them.
        if OUT in line:
            text = line.split(OUT, 1)[1]
            self.output.append(text)
            if self.on_output:
                self.on_output(text)
            return
        if INIT in line:
            self._mark("init")
        elif START in line:
            self._mark("cmd_start")
        elif (m := EXIT_RE.search(line)):
            self._mark("cmd_exit")
            self.exit_status = int(m.group(1))
        elif (m := ERROR_RE.search(line)):
            self.error = m.group(1)
        elif PANIC_RE.search(line) and self.panic is None:
            self._mark("panic")
            self.panic = line.strip()
        else:
            return
        self.changed.set()
