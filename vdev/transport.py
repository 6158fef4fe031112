"""Framing of vfio-user messages on a unix stream socket, with SCM_RIGHTS file descriptors.

Used by both ends (server and client). A message is sent with one `sendmsg` of the whole
buffer, fds attached to its first byte: QEMU reads a header in a single non-blocking read and
treats a short header as fatal.
"""

from __future__ import annotations

import array
import os
import select
import socket
from dataclasses import dataclass, field

from . import protocol as P

# Plain ints: the socket module's IntFlag members make every `&` an enum operation.
_MSG_CTRUNC = int(socket.MSG_CTRUNC)
_SOL_SOCKET = int(socket.SOL_SOCKET)
_SCM_RIGHTS = int(socket.SCM_RIGHTS)


class ProtocolError(Exception):
    """The byte stream cannot be framed any more: the connection must be closed."""


class PeerClosed(Exception):
    """The peer closed its end (EOF) or the connection was reset."""


@dataclass(slots=True)
class Message:
    msg_id: int
    command: int
    flags: int
    error: int
    payload: bytes | bytearray | memoryview = b""
    fds: list[int] = field(default_factory=list)
    fds_truncated: bool = False

    @property
    def type(self) -> int:
        return self.flags & P.FLAG_TYPE_MASK

    @property
    def no_reply(self) -> bool:
        return bool(self.flags & P.FLAG_NO_REPLY)

    def close_fds(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()


def _fds_from_ancillary(ancdata, fds: list[int]) -> bool:
    """Collect SCM_RIGHTS fds; return True if the kernel truncated them."""
    truncated = False
    for level, kind, data in ancdata:
        if level == _SOL_SOCKET and kind == _SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            truncated |= usable != len(data)
            fds.extend(array.array("i", data[:usable]))
    return truncated


_HEADER = P.HEADER.struct  # header fields as a plain tuple: no record per message
_HEADER_SIZE = P.HEADER_SIZE


class Connection:
    """One vfio-user connection: receive and send whole messages.

    The socket is non-blocking and this class waits (poll) only when a call would block: a
    Python socket with a timeout polls before every recv and send, which doubled the
    system calls, and the GIL hand-offs, of each MMIO round trip."""

    def __init__(self, sock: socket.socket, max_fds: int = 16, max_msg_size: int = 1 << 21,
                 io_timeout: float | None = 10.0):
        self.sock = sock
        self.max_fds = max_fds
        self.max_msg_size = max_msg_size
        # A peer that starts a message must finish it: a stalled half message is dropped
        # with the connection instead of wedging the server.
        self.io_timeout = io_timeout
        self._timeout_ms = None if io_timeout is None else max(0, int(io_timeout * 1000))
        sock.setblocking(False)
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        self._polling_out = False
        self._anc_size = socket.CMSG_SPACE(max_fds * 4)
        self._header = bytearray(_HEADER_SIZE)
        self._header_view = memoryview(self._header)

    def _wait(self, writing: bool) -> bool:
        """Block until the socket is readable (writable), up to io_timeout; False on timeout."""
        if writing != self._polling_out:
            self._poll.modify(self.sock.fileno(), select.POLLOUT if writing else select.POLLIN)
            self._polling_out = writing
        return bool(self._poll.poll(self._timeout_ms))

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv_exact(self, view: memoryview, fds: list[int]) -> bool:
        truncated = False
        got = 0
        while got < len(view):
            try:
                n, anc, flags, _ = self.sock.recvmsg_into([view[got:] if got else view], self._anc_size)
            except BlockingIOError:
                if not self._wait(False):
                    raise ProtocolError(f"peer stalled in the middle of a message ({got}/{len(view)} bytes)") from None
                continue
            except (ConnectionResetError, BrokenPipeError) as e:
                raise PeerClosed(str(e)) from e
            if anc or flags:
                truncated |= _fds_from_ancillary(anc, fds) or bool(flags & _MSG_CTRUNC)
            if n == 0:
                if got == 0 and view.obj is self._header:
                    raise PeerClosed("EOF")
                raise ProtocolError(f"EOF in the middle of a message ({got}/{len(view)} bytes)")
            got += n
        return truncated

    def recv(self) -> Message:
        """Read one whole message. Raises PeerClosed on EOF, ProtocolError if unframeable."""
        fds: list[int] = []
        try:
            truncated = self._recv_exact(self._header_view, fds)
            msg_id, command, msg_size, flags, error = _HEADER.unpack_from(self._header)
            if msg_size < _HEADER_SIZE:
                raise ProtocolError(f"msg_size {msg_size} is smaller than the header")
            if msg_size > self.max_msg_size:
                raise ProtocolError(f"msg_size {msg_size} exceeds the limit {self.max_msg_size}")
            body = bytearray(msg_size - _HEADER_SIZE)
            if body:
                # A message's fds come with its first byte, so with the header; the body is
                # read without ancillary data unless it arrives in pieces.
                try:
                    n = self.sock.recv_into(body)
                except (BlockingIOError, ConnectionResetError, BrokenPipeError):
                    n = 0
                if n < len(body):
                    truncated |= self._recv_exact(memoryview(body)[n:], fds)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return Message(msg_id, command, flags, error, body, fds, truncated)

    def send(self, msg_id: int, command: int, flags: int, error: int = 0,
             payload: bytes | bytearray = b"", fds: list[int] | tuple = ()) -> None:
        """One message, in one send (or sendmsg with the fds) unless the socket buffer is full."""
        buf = _HEADER.pack(msg_id, command, _HEADER_SIZE + len(payload), flags, error) + payload
        anc = [(_SOL_SOCKET, _SCM_RIGHTS, array.array("i", fds))] if fds else None
        sent, size = 0, len(buf)
        sock = self.sock
        try:
            while sent < size:
                try:
                    if anc is not None:  # the fds go with the first byte, once
                        n = sock.sendmsg([buf], anc)
                        anc = None
                    else:
                        n = sock.send(memoryview(buf)[sent:] if sent else buf)
                except BlockingIOError:
                    if not self._wait(True):
                        raise ProtocolError("peer stopped reading") from None
                    continue
                sent += n
        except (BrokenPipeError, ConnectionResetError) as e:
            raise PeerClosed(str(e)) from e

    def reply(self, request: Message, payload: bytes | bytearray = b"", fds=()) -> None:
        self.send(request.msg_id, request.command, P.TYPE_REPLY, 0, payload, fds)

    def reply_error(self, request: Message, errno_: int) -> None:
        self.send(request.msg_id, request.command, P.TYPE_REPLY | P.FLAG_ERROR, errno_)
