"""Framing of vfio-user messages on a unix stream socket, with SCM_RIGHTS file descriptors.

Used by both ends (server and client). A message is sent with one `sendmsg` of the whole
buffer, fds attached to its first byte: QEMU reads a header in a single non-blocking read and
treats a short header as fatal.
"""

from __future__ import annotations

import array
import errno
import os
import select
import socket
import struct
from dataclasses import dataclass, field

from . import protocol as P

# Plain ints: the socket module's IntFlag members make every `&` an enum operation.
_MSG_CTRUNC = int(socket.MSG_CTRUNC)
_MSG_DONTWAIT = int(socket.MSG_DONTWAIT)
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


def fds_from_ancillary(ancdata, fds: list[int]) -> bool:
    """Collect SCM_RIGHTS fds; return True if the kernel truncated them."""
    truncated = False
    for level, kind, data in ancdata:
        if level == _SOL_SOCKET and kind == _SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            truncated |= usable != len(data)
            fds.extend(array.array("i", data[:usable]))
    return truncated


def bind_private(sock: socket.socket, path: str) -> None:
    """Bind a unix socket readable and writable by its owner only (0600), whatever the umask:
    whoever can connect can drive the device and read guest memory. The mode is set before
    listen(), and until then a connect is refused, so no one gets in through a wider mode."""
    sock.bind(path)
    os.chmod(path, 0o600)


# accept() failures that mean "no fds or memory right now": wait and go on, never give up.
TRANSIENT_ACCEPT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


_HEADER = P.HEADER.struct  # header fields as a plain tuple: no record per message
_HEADER_SIZE = P.HEADER_SIZE
RECV_BUFFER = 1 << 16  # grows for a larger message


class Connection:
    """One vfio-user connection: receive and send whole messages.

    Every call passes MSG_DONTWAIT and this class waits (poll) only when a call would block:
    a Python socket with a timeout polls before every recv and send, which doubled the
    system calls, and the GIL hand-offs, of each MMIO round trip. The socket itself stays
    blocking with SO_RCVTIMEO = `wait_s`, so `read_available(wait=True)` can wait for the
    next message inside recvmsg itself (a server loop's one system call per message)."""

    def __init__(self, sock: socket.socket, max_fds: int = 16, max_msg_size: int = 1 << 21,
                 io_timeout: float | None = 10.0, wait_s: float = 0.02):
        self.sock = sock
        self.max_fds = max_fds
        self.max_msg_size = max_msg_size
        # A peer that starts a message must finish it: a stalled half message is dropped
        # with the connection instead of wedging the server.
        self.io_timeout = io_timeout
        self._timeout_ms = None if io_timeout is None else max(0, int(io_timeout * 1000))
        sock.setblocking(True)
        usec = max(1, int(wait_s * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", usec // 1_000_000, usec % 1_000_000))
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        self._polling_out = False
        self._anc_size = socket.CMSG_SPACE(max_fds * 4)
        self._buf = bytearray(RECV_BUFFER)
        self._view = memoryview(self._buf)
        self._start = self._end = 0  # unread bytes: _buf[_start:_end]
        self._base = 0               # stream offset of _buf[0]
        self._fds: list[tuple[int, list[int], bool]] = []  # (stream offset past the read, fds, truncated)

    def _wait(self, writing: bool) -> bool:
        """Block until the socket is readable (writable), up to io_timeout; False on timeout."""
        if writing != self._polling_out:
            self._poll.modify(self.sock.fileno(), select.POLLOUT if writing else select.POLLIN)
            self._polling_out = writing
        return bool(self._poll.poll(self._timeout_ms))

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        for _, fds, _ in self._fds:  # received with a message never handed out
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fds.clear()
        try:
            self.sock.close()
        except OSError:
            pass

    # -- receiving ------------------------------------------------------------------------
    #
    # One recvmsg takes whatever has arrived (a message and its payload, or a run of posted
    # writes) into a buffer that messages are then cut from. File descriptors are matched to
    # messages by what the kernel guarantees for unix stream sockets: each sender's sendmsg
    # attaches them to its first byte, and a read that picks up fds stops at the end of the
    # buffer that carried them. So fds that arrive with a read belong to the message holding
    # the last byte of that read.

    def pending(self) -> bool:
        """A whole message is already buffered (the socket may not be readable for it)."""
        avail = self._end - self._start
        if avail < _HEADER_SIZE:
            return False
        return avail >= _HEADER.unpack_from(self._buf, self._start)[2]

    def _make_room(self, need: int) -> None:
        if len(self._buf) - self._start < need:  # make room: move the unread part to the front
            rest = self._end - self._start
            if len(self._buf) < need:
                self._view.release()  # a bytearray with a view cannot grow
                self._buf.extend(bytes(need - len(self._buf)))
            self._buf[:rest] = self._buf[self._start:self._end]
            self._base += self._start
            self._start, self._end = 0, rest
            self._view = memoryview(self._buf)

    def _recv_once(self, need: int, flags: int = _MSG_DONTWAIT) -> bool:
        """One recvmsg into the buffer; False if nothing was there to read (without
        MSG_DONTWAIT in `flags`: nothing came within SO_RCVTIMEO)."""
        try:
            n, anc, flags, _ = self.sock.recvmsg_into([self._view[self._end:]], self._anc_size, flags)
        except BlockingIOError:
            return False
        except (ConnectionResetError, BrokenPipeError) as e:
            raise PeerClosed(str(e)) from e
        if n == 0:
            if self._end == self._start:
                raise PeerClosed("EOF")
            raise ProtocolError(f"EOF in the middle of a message ({self._end - self._start}/{need} bytes)")
        self._end += n
        if anc or flags:
            fds: list[int] = []
            truncated = fds_from_ancillary(anc, fds) or bool(flags & _MSG_CTRUNC)
            self._fds.append((self._base + self._end, fds, truncated))
        return True

    def _need(self) -> int:
        """Bytes the next whole message takes (the header's size once it is here)."""
        if self._end - self._start < _HEADER_SIZE:
            return _HEADER_SIZE
        msg_size = _HEADER.unpack_from(self._buf, self._start)[2]
        if msg_size < _HEADER_SIZE:
            raise ProtocolError(f"msg_size {msg_size} is smaller than the header")
        if msg_size > self.max_msg_size:
            raise ProtocolError(f"msg_size {msg_size} exceeds the limit {self.max_msg_size}")
        return msg_size

    def _fill(self, need: int) -> None:
        """Read until `need` bytes are buffered past _start, waiting up to io_timeout."""
        self._make_room(need)
        while self._end - self._start < need:
            if not self._recv_once(need) and not self._wait(False):
                raise ProtocolError(f"peer stalled in the middle of a message "
                                    f"({self._end - self._start}/{need} bytes)")

    def read_available(self, wait: bool = False) -> bool:
        """Read what has arrived (one recvmsg), without waiting or, with `wait`, up to
        SO_RCVTIMEO for something to arrive: a server loop that must not block on a
        half-sent message calls this, and recv() only once pending() says a message is
        whole. False if nothing was read."""
        need = self._need() if self._end - self._start >= _HEADER_SIZE else _HEADER_SIZE
        if self._end - self._start >= need:
            return False  # a whole message is here already (and maybe no room to read into)
        if len(self._buf) - self._start < need:
            self._make_room(need)
        if not self._recv_once(need, 0 if wait else _MSG_DONTWAIT):
            return False
        if self._end - self._start >= _HEADER_SIZE:
            self._need()  # a bad header fails at once, before more of it is buffered
        return True

    def partial(self) -> bool:
        """Part of a message is buffered and the rest has not arrived."""
        return self._end > self._start and not self.pending()

    def recv(self) -> Message:
        """Read one whole message. Raises PeerClosed on EOF, ProtocolError if unframeable."""
        if self._end - self._start < _HEADER_SIZE:
            self._fill(_HEADER_SIZE)
        msg_id, command, msg_size, flags, error = _HEADER.unpack_from(self._buf, self._start)
        if msg_size < _HEADER_SIZE:
            raise ProtocolError(f"msg_size {msg_size} is smaller than the header")
        if msg_size > self.max_msg_size:
            raise ProtocolError(f"msg_size {msg_size} exceeds the limit {self.max_msg_size}")
        if self._end - self._start < msg_size:
            self._fill(msg_size)
        start = self._start
        body = self._buf[start + _HEADER_SIZE:start + msg_size]
        self._start = start + msg_size
        if self._start == self._end:
            self._base += self._end
            self._start = self._end = 0
        fds: list[int] = []
        truncated = False
        if self._fds:
            last = self._base + self._start  # the stream offset just past this message
            while self._fds and self._fds[0][0] <= last:
                _, got, trunc = self._fds.pop(0)
                fds.extend(got)
                truncated |= trunc
        return Message(msg_id, command, flags, error, body, fds, truncated)

    def send(self, msg_id: int, command: int, flags: int, error: int = 0,
             payload: bytes | bytearray = b"", fds: list[int] | tuple = ()) -> None:
        """One message, in one send (or sendmsg with the fds) unless the socket buffer is full."""
        buf = _HEADER.pack(msg_id, command, _HEADER_SIZE + len(payload), flags, error) + payload
        sock = self.sock
        sent, size = 0, len(buf)
        if not fds:  # the common case: a message that fits the socket buffer, one call
            try:
                sent = sock.send(buf, _MSG_DONTWAIT)
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError) as e:
                raise PeerClosed(str(e)) from e
            if sent == size:
                return
        anc = [(_SOL_SOCKET, _SCM_RIGHTS, array.array("i", fds))] if fds else None
        try:
            while sent < size:
                try:
                    if anc is not None:  # the fds go with the first byte, once
                        n = sock.sendmsg([buf], anc, _MSG_DONTWAIT)
                        anc = None
                    else:
                        n = sock.send(memoryview(buf)[sent:] if sent else buf, _MSG_DONTWAIT)
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
