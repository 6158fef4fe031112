"""`mali-vdev shell`: the guest's interactive root shell in the user's terminal.

In shell mode (`mali.shell=1`) /init gives the second UART (ttyAMA1) to a login shell in a
session of its own, so ttyAMA1 is its controlling terminal and the guest's line discipline
does the echo, line editing and signals: the host only moves bytes. QEMU connects that
UART to a unix socket we listen on; the user's terminal is put in raw mode, so Ctrl-C, Ctrl-Z
and Ctrl-D reach the guest as bytes. The escape byte (Ctrl-], as in telnet and virsh) quits:
QEMU and the server are torn down. The terminal is restored however the session ends.
The kernel's console (ttyAMA0) goes to the boot's log, as in every boot.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import termios
import tty
from typing import Callable, Iterator

ESCAPE = 0x1D            # Ctrl-]
ESCAPE_NAME = "Ctrl-]"
POLL_S = 0.2


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """`fd` in raw mode while the block runs (if it is a terminal); restored after."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)


def setup_commands(fd: int) -> str:
    """Shell lines run before the prompt: the guest tty gets the user's window size
    (a serial line cannot tell it)."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        size = shutil.get_terminal_size()
    return f"stty rows {size.lines} cols {size.columns} 2>/dev/null\n"


def bridge(conn: socket.socket, stdin: int, stdout: int,
           alive: Callable[[], bool]) -> str:
    """Copy the guest's tty to `stdout` and `stdin` to the guest until the guest side
    closes ("closed"), the user types the escape byte ("escape"), `stdin` ends ("eof")
    or `alive()` turns false ("gone")."""
    conn.setblocking(False)
    while True:
        if not alive():
            return "gone"
        readable, _, _ = select.select([conn, stdin], [], [], POLL_S)
        if conn in readable:
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                data = None
            except OSError:
                return "closed"
            if data == b"":
                return "closed"
            if data:
                _write_all(stdout, data)
        if stdin in readable:
            data = os.read(stdin, 4096)
            if not data:
                return "eof"
            cut = data.find(bytes([ESCAPE]))
            if cut >= 0:
                _send_all(conn, data[:cut])
                return "escape"
            _send_all(conn, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _send_all(conn: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = conn.send(view)
        except BlockingIOError:
            select.select([], [conn], [], POLL_S)
            continue
        view = view[n:]
