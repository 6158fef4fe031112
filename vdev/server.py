"""The vfio-user server: one listening unix socket (0600), one client at a time, one device.

Messages are handled strictly in arrival order (QEMU relies on it to post MMIO writes).
A message that cannot be understood gets an error reply (or, with NO_REPLY, a log line);
a byte stream that can no longer be framed closes that connection. Either way the device
keeps its state and the server waits for the next client. A second client's first message
is answered EBUSY; a client that does not negotiate, or stalls inside a message, is dropped
after a timeout, so no client keeps the device, the engine or QEMU waiting.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import select
import socket
import stat
import threading
import time

from . import protocol as P
from .device import Device, DeviceHost
from .dma import DmaMapError, DmaSpace
from .irq import UNMASK_QUIET_S, Interrupts, IrqError
from .pci import COMMAND_INTX_DISABLE, CONFIG_SIZE, PciConfigSpace, config_register_name
from .ratelimit import RateLimitedLog
from .timing import ServerTiming
from .transport import (
    TRANSIENT_ACCEPT_ERRNOS,
    Connection,
    Message,
    PeerClosed,
    ProtocolError,
    bind_private,
    fds_from_ancillary,
)

log = logging.getLogger("vdev.server")

MAX_DATA_XFER = 1 << 20
_REGION_ACCESS = P.REGION_ACCESS.struct  # offset, region, count as a plain tuple
# Module constants as plain globals: the register-access path reads them per message.
_REGION_READ, _REGION_WRITE = int(P.Command.REGION_READ), int(P.Command.REGION_WRITE)
_FLAG_NO_REPLY, _TYPE_REPLY = P.FLAG_NO_REPLY, P.TYPE_REPLY
_CONFIG_REGION = P.PCI_CONFIG_REGION_INDEX
_ACCESS_SIZE = P.REGION_ACCESS_SIZE
MAX_MSG_FDS = 16
MAX_WRITE_MULTI = 1024
# QEMU reaches a BAR that is not mmapped through MemoryRegionOps of at most 8 bytes; a longer
# access would only be split into that many register accesses (a megabyte: 131,072 of them).
MAX_BAR_ACCESS = 8
ACCEPT_BACKOFF_S = 0.1
STALL_TIMEOUT_S = 10.0     # a half-sent message may take this long to complete
VERSION_TIMEOUT_S = 10.0   # a new connection must negotiate within this
FAST_WAIT_S = 0.02         # the longest the listener, wake pipe and timers wait while a client keeps sending
REFUSE_TIMEOUT_S = 2.0     # a refused second client gets this long to send its first header
MAX_REFUSING = 8


class RequestError(Exception):
    """Answer the current request with an error reply carrying `errno`."""

    def __init__(self, errno_: int, msg: str):
        super().__init__(msg)
        self.errno = errno_


def _require(cond: bool, msg: str, errno_: int = errno.EINVAL) -> None:
    if not cond:
        raise RequestError(errno_, msg)


class Server:
    def __init__(self, device: Device, socket_path: str):
        self.device = device
        self.socket_path = os.path.abspath(socket_path)
        self.config = PciConfigSpace(device.identity, device.bars)
        # A DeviceLock keeps device workers out for a whole message; any other lock has no turns.
        self._turn = device.lock.turn() if hasattr(device.lock, "turn") else contextlib.nullcontext()
        # The regions are fixed by the device's BARs: their sizes, for the per-access check.
        self._sizes = {i: n for i in range(P.PCI_NUM_REGIONS) if (n := self.region_size(i))}
        self.interrupts = Interrupts(intx=device.identity.interrupt_pin != 0)
        self.interrupts.on_intx_status = self.config.set_interrupt_status
        self.timing = ServerTiming()
        self.interrupts.on_signal = self.timing.signalled
        self.dma = DmaSpace()
        device.attach(DeviceHost(self.interrupts, self.dma))
        self.conn: Connection | None = None
        self.negotiated = False
        self.write_multiple = False
        self.client_caps: dict = {}
        self.connections = 0
        self._listener: socket.socket | None = None
        self._sel: _Poller | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._listen_resume: float | None = None  # the listener is off the poller until then
        self._connected_at = 0.0
        self._partial_since: float | None = None  # the client's current message is half here since
        self._refusing: dict[int, tuple[socket.socket, bytearray, float]] = {}
        self._error_log = RateLimitedLog(log, burst=50)  # a client can send bad messages at will
        self._handlers = {
            P.Command.VERSION: self._version,
            P.Command.DMA_MAP: self._dma_map,
            P.Command.DMA_UNMAP: self._dma_unmap,
            P.Command.DEVICE_GET_INFO: self._get_info,
            P.Command.DEVICE_GET_REGION_INFO: self._get_region_info,
            P.Command.DEVICE_GET_IRQ_INFO: self._get_irq_info,
            P.Command.DEVICE_SET_IRQS: self._set_irqs,
            P.Command.REGION_READ: self._region_read,
            P.Command.REGION_WRITE: self._region_write,
            P.Command.REGION_WRITE_MULTI: self._region_write_multi,
            P.Command.DEVICE_RESET: self._device_reset,
        }
        self._handlers = {int(k): v for k, v in self._handlers.items()}
        self._fd_commands = {int(P.Command.DMA_MAP), int(P.Command.DEVICE_SET_IRQS)}

    # -- socket lifecycle ----------------------------------------------------------------

    def listen(self) -> None:
        """Create the socket. It appears at `socket_path` only once it accepts connections."""
        path = self.socket_path
        if os.path.lexists(path):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise FileExistsError(f"{path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except (ConnectionRefusedError, FileNotFoundError):
                log.info("removing stale socket %s", path)
                os.unlink(path)
            else:
                raise FileExistsError(f"another server is listening on {path}")
            finally:
                probe.close()
        tmp = f"{path}.{os.getpid()}.tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bind_private(s, tmp)
        s.listen(4)
        os.rename(tmp, path)
        self._listener = s
        log.info("listening on %s", path)

    def stop(self) -> None:
        """Ask `serve_forever` to return (thread- and signal-safe)."""
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def close(self) -> None:
        self._drop_client("server shutting down")
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            try:
                os.unlink(self.socket_path)
            except FileNotFoundError:
                pass
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def serve_forever(self) -> None:
        if self._listener is None:
            self.listen()
        self._sel = sel = _Poller()
        sel.register(self._listener.fileno(), "listen")
        sel.register(self._wake_r, "wake")
        resample_fd = None
        order = {"conn": 0, "resample": 1, "listen": 2, "refuse": 3, "wake": 4}
        try:
            while not self._stopping:
                if self.interrupts.intx_resample_fd != resample_fd:
                    if resample_fd is not None:
                        sel.unregister(resample_fd)
                    resample_fd = self.interrupts.intx_resample_fd
                    if resample_fd is not None:
                        sel.register(resample_fd, "resample")
                deadline = self.interrupts.recheck_deadline
                timeout = UNMASK_QUIET_S if deadline is not None else None
                if self._refusing or self._listen_resume is not None or self._conn_timers():
                    wait = self._run_timers(time.monotonic())
                    if wait is not None:
                        timeout = wait if timeout is None else min(timeout, wait)
                events = sel.select(timeout)
                if deadline is not None and (not events or time.monotonic() >= deadline):
                    self.interrupts.recheck()
                # The current client's messages (and its EOF) before any new client.
                if len(events) > 1:
                    events.sort(key=lambda e: order[e[1]])
                for fd, tag in events:
                    if tag == "conn":
                        if self.conn is not None and fd == self.conn.fileno():
                            self._on_readable()
                            if len(events) == 1:
                                self._serve_in_recv()
                    elif tag == "resample":
                        self.interrupts.resample()
                    elif tag == "listen":
                        self._accept()
                    elif tag == "refuse":
                        self._refuse_readable(fd)
                    elif tag == "wake":
                        os.read(self._wake_r, 64)
                    if self.interrupts.intx_resample_fd != resample_fd:
                        break  # re-register before the next select
        finally:
            self._drop_client("server stopping")
            for fd in list(self._refusing):
                self._refuse_close(fd)
            sel.close()
            self._sel = None

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError as e:
            if e.errno not in TRANSIENT_ACCEPT_ERRNOS:
                raise
            # Out of fds (or memory): the connection waits in the backlog. Stop polling the
            # listener for a while rather than spinning on it; the current client is served.
            self._error_log.warning("accept failed (%s): new connections wait %.1f s", e, ACCEPT_BACKOFF_S)
            self._sel.unregister(self._listener.fileno())
            self._listen_resume = time.monotonic() + ACCEPT_BACKOFF_S
            return
        # A client that hung up may still have unread messages or an EOF queued: finish it
        # (a bounded number of reads: a live client that keeps talking stays the client).
        for _ in range(64):
            if self.conn is None or not _readable(self.conn.sock):
                break
            self._on_readable()
        if self.conn is not None:
            self._refuse(sock)
            return
        self.attach_client(sock)

    def attach_client(self, sock: socket.socket) -> None:
        """Make a connected socket the client (what accept does; the fuzz harness hands over
        one end of a socketpair and drives `_on_readable` itself, without a listener)."""
        self.conn = Connection(sock, max_fds=MAX_MSG_FDS, max_msg_size=MAX_DATA_XFER + 4096, wait_s=FAST_WAIT_S)
        self._connected_at = time.monotonic()
        self._partial_since = None
        self.negotiated = False
        self.write_multiple = False
        self.connections += 1
        if self._sel is not None:
            self._sel.register(self.conn.fileno(), "conn")
        log.info("client connected (connection %d)", self.connections)
        with self.device.lock:
            self.device.client_connected()

    def _drop_client(self, why: str) -> None:
        if self.conn is None:
            return
        if self._sel is not None:
            self._sel.unregister(self.conn.fileno())
        self.conn.close()
        self.conn = None
        self._partial_since = None
        self.negotiated = False
        with self.device.lock:
            n = self.dma.unmap_all()
        self.interrupts.release_all()
        log.info("client disconnected (%s); dropped %d DMA maps and the IRQ fds, device state kept", why, n)
        self._error_log.flush()   # what this client's bad messages had suppressed is counted now
        with self.device.lock:
            self.device.client_disconnected()

    # -- connection timers and refusals ---------------------------------------------------
    #
    # The loop never waits inside a message: bytes are read as they come (read_available)
    # and a message is handled once it is whole, so a half-sent message holds up nothing but
    # its own connection, which is dropped if it stays half-sent for STALL_TIMEOUT_S. A
    # connection that does not negotiate within VERSION_TIMEOUT_S is dropped too: a silent
    # client cannot keep QEMU out. A second client gets an EBUSY reply to its first message.

    def _conn_timers(self) -> bool:
        return self.conn is not None and (not self.negotiated or self._partial_since is not None)

    def _run_timers(self, now: float) -> float | None:
        """Act on expired timers; the time until the next one (None: none armed)."""
        due: list[float] = []
        if self._listen_resume is not None:
            if now >= self._listen_resume:
                self._listen_resume = None
                self._sel.register(self._listener.fileno(), "listen")
            else:
                due.append(self._listen_resume)
        if self.conn is not None and self._partial_since is not None:
            if now >= self._partial_since + STALL_TIMEOUT_S:
                log.error("closing the connection: peer stalled in the middle of a message for %.0f s",
                          STALL_TIMEOUT_S)
                self._drop_client("stalled mid-message")
            else:
                due.append(self._partial_since + STALL_TIMEOUT_S)
        if self.conn is not None and not self.negotiated:
            if now >= self._connected_at + VERSION_TIMEOUT_S:
                log.error("closing the connection: no VERSION within %.0f s", VERSION_TIMEOUT_S)
                self._drop_client("no VERSION")
            else:
                due.append(self._connected_at + VERSION_TIMEOUT_S)
        for fd, (_, _, until) in list(self._refusing.items()):
            if now >= until:
                self._refuse_close(fd)
            else:
                due.append(until)
        return max(0.0, min(due) - now) if due else None

    def _refuse(self, sock: socket.socket) -> None:
        """One client at a time: answer the newcomer's first message with EBUSY, then close."""
        if len(self._refusing) >= MAX_REFUSING:
            self._error_log.warning("refusing a second client (closed: %d refusals pending)", MAX_REFUSING)
            sock.close()
            return
        self._error_log.warning("refusing a second client: one client at a time is connected")
        sock.setblocking(False)
        self._refusing[sock.fileno()] = (sock, bytearray(), time.monotonic() + REFUSE_TIMEOUT_S)
        self._sel.register(sock.fileno(), "refuse")

    def _refuse_readable(self, fd: int) -> None:
        sock, buf, _ = self._refusing[fd]
        try:
            data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(MAX_MSG_FDS * 4))
        except BlockingIOError:
            return
        except OSError:
            data, anc = b"", []
        fds: list[int] = []
        fds_from_ancillary(anc, fds)
        for f in fds:  # fds sent with a message we will not handle
            os.close(f)
        buf += data
        if len(buf) >= P.HEADER_SIZE:
            hdr = P.HEADER.unpack(bytes(buf[:P.HEADER_SIZE]))
            if not hdr.flags & P.FLAG_NO_REPLY:
                reply = P.HEADER.pack(hdr.msg_id, hdr.command, P.HEADER_SIZE, P.TYPE_REPLY | P.FLAG_ERROR, errno.EBUSY)
                with contextlib.suppress(OSError):
                    sock.send(reply)
            self._refuse_close(fd)
        elif not data:
            self._refuse_close(fd)

    def _refuse_close(self, fd: int) -> None:
        sock, _, _ = self._refusing.pop(fd)
        self._sel.unregister(fd)
        sock.close()

    # -- message loop --------------------------------------------------------------------

    def _on_readable(self, wait: bool = False) -> bool:
        """Take what the client sent (with `wait`: what it sends within the connection's
        SO_RCVTIMEO); handle the messages that are whole. False if nothing came."""
        try:
            if not self.conn.read_available(wait) and wait and not self.conn.pending():
                return False
        except PeerClosed as e:
            self._drop_client(str(e) or "EOF")
            return False
        except ProtocolError as e:
            log.error("closing the connection: %s", e)
            self._drop_client("protocol error")
            return False
        now = time.monotonic_ns()
        self.timing.arrived(now)
        conn = self.conn
        if conn.pending():
            self._partial_since = None
            served = self._serve_one()  # every whole message buffered: what is left is part of one
            self.timing.handled(now, served)
            conn = self.conn
        if conn is not None and conn.partial():
            if self._partial_since is None:
                self._partial_since = time.monotonic()
        elif self._partial_since is not None:
            self._partial_since = None
        return True

    def _serve_in_recv(self) -> None:
        """While one client keeps sending whole messages and nothing else is due, wait for
        its next one inside recvmsg (SO_RCVTIMEO) instead of epoll and then recvmsg: one
        system call per register access, as few as a bare echo server makes. Back to the
        full loop (listener, wake pipe, timers) after FAST_WAIT_S at the latest, or when
        a message is partial, an interrupt re-check is deferred, a resample fd or a refusal
        needs the poller."""
        until = time.monotonic() + FAST_WAIT_S
        conn, irq = self.conn, self.interrupts
        while (conn is self.conn and self.negotiated and not self._stopping and self._partial_since is None
               and irq.recheck_deadline is None and irq.intx_resample_fd is None and not self._refusing
               and self._listen_resume is None):
            if not self._on_readable(wait=True) or time.monotonic() >= until:
                return

    def _serve_one(self) -> int:
        """Handle one message, and the ones already received with it; how many (the
        connection may be gone after them)."""
        turn = self._turn
        with turn:  # device workers stay out until the reply is sent
            ok = self._serve_one_turn()
        n = 1
        while ok and self.conn is not None and self.conn.pending():
            with turn:
                ok = self._serve_one_turn()
            n += 1
        return n

    def _serve_one_turn(self) -> bool:
        try:
            self.handle(self.conn.recv())
        except PeerClosed as e:
            self._drop_client(str(e) or "EOF")
            return False
        except ProtocolError as e:
            log.error("closing the connection: %s", e)
            self._drop_client("protocol error")
            return False
        return True

    def handle(self, msg: Message) -> None:
        conn = self.conn
        command, flags = msg.command, msg.flags
        # Register accesses, nearly every message there is: the same checks as below, in
        # the fewest steps (a command, maybe NO_REPLY, no fds, after VERSION).
        if (command == _REGION_READ or command == _REGION_WRITE) and not flags & ~_FLAG_NO_REPLY \
                and self.negotiated and not msg.fds and not msg.fds_truncated:
            try:
                reply = self._region_read(msg) if command == _REGION_READ else self._region_write(msg)
            except RequestError as e:
                self._error(msg, e.errno, str(e))
                return
            except Exception as e:  # a bug in a device model must not take the server down
                log.exception("internal error handling %s", P.command_name(command))
                self._error(msg, errno.EIO, f"internal error: {e}")
                return
            if not flags:
                conn.send(msg.msg_id, command, _TYPE_REPLY, 0, reply)
            return
        if msg.flags & P.FLAG_TYPE_MASK != P.TYPE_COMMAND:
            msg.close_fds()
            if msg.type == P.TYPE_REPLY:
                log.warning("ignoring a reply (id %d) to a request never sent", msg.msg_id)
            else:
                self._error(msg, errno.EINVAL, f"message type {msg.type} is neither command nor reply")
            return
        handler = self._handlers.get(msg.command)
        try:
            if msg.fds_truncated:
                raise RequestError(errno.EINVAL, f"more than {MAX_MSG_FDS} fds attached")
            if msg.fds and msg.command not in self._fd_commands:
                raise RequestError(errno.EINVAL, f"{P.command_name(msg.command)} takes no fds")
            if handler is None:
                known = msg.command in P.Command._value2member_map_
                raise RequestError(errno.ENOTSUP if known else errno.ENOSYS,
                                   f"unsupported command {P.command_name(msg.command)}")
            if not self.negotiated and msg.command != P.Command.VERSION:
                raise RequestError(errno.EINVAL, f"{P.command_name(msg.command)} before VERSION")
            reply = handler(msg)
        except RequestError as e:
            msg.close_fds()
            self._error(msg, e.errno, str(e))
            return
        except (DmaMapError, IrqError) as e:
            msg.close_fds()
            self._error(msg, e.errno, str(e))
            return
        except Exception as e:  # a bug in a device model must not take the server down
            msg.close_fds()
            log.exception("internal error handling %s", P.command_name(msg.command))
            self._error(msg, errno.EIO, f"internal error: {e}")
            return
        if not msg.flags & P.FLAG_NO_REPLY:
            if type(reply) is tuple:
                conn.send(msg.msg_id, msg.command, P.TYPE_REPLY, 0, *reply)
            else:
                conn.send(msg.msg_id, msg.command, P.TYPE_REPLY, 0, reply or b"")

    def _error(self, msg: Message, errno_: int, why: str) -> None:
        self._error_log.warning("%s (id %d) failed: %s [%s]", P.command_name(msg.command), msg.msg_id, why,
                                errno.errorcode.get(errno_, errno_))
        if not msg.no_reply:
            self.conn.reply_error(msg, errno_)

    # -- commands ------------------------------------------------------------------------

    def _version(self, msg: Message) -> bytes:
        _require(not self.negotiated, "VERSION already negotiated")
        p = msg.payload
        _require(len(p) >= P.VERSION_FIXED_SIZE, "VERSION payload too short")
        major = int.from_bytes(p[0:2], "little")
        minor = int.from_bytes(p[2:4], "little")
        _require(major == P.VERSION_MAJOR, f"unsupported protocol major version {major}", errno.ENOTSUP)
        caps = {}
        text = bytes(p[4:])
        if text:
            _require(text.endswith(b"\0"), "VERSION JSON is not NUL-terminated")
            try:
                doc = json.loads(text[:-1].decode("utf-8")) if len(text) > 1 else {}
            except (UnicodeDecodeError, ValueError) as e:
                raise RequestError(errno.EINVAL, f"VERSION JSON is malformed: {e}") from None
            _require(isinstance(doc, dict), "VERSION JSON is not an object")
            caps = doc.get("capabilities", {})
            _require(isinstance(caps, dict), "VERSION capabilities is not an object")
            for key in ("max_msg_fds", "max_data_xfer_size", "max_dma_maps", "pgsizes"):
                if key in caps:
                    v = caps[key]
                    _require(isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                             f"capability {key} is not a non-negative integer")
            if "write_multiple" in caps:
                _require(isinstance(caps["write_multiple"], bool), "capability write_multiple is not a boolean")
        self.client_caps = caps
        self.write_multiple = caps.get("write_multiple", False) is True
        ours = {"max_msg_fds": MAX_MSG_FDS, "max_data_xfer_size": MAX_DATA_XFER}
        if self.write_multiple:
            ours["write_multiple"] = True
        body = json.dumps({"capabilities": ours}, separators=(",", ":")).encode() + b"\0"
        self.negotiated = True
        log.info("VERSION %d.%d negotiated as %d.%d; client caps %s", major, minor,
                 P.VERSION_MAJOR, min(minor, P.VERSION_MINOR), caps)
        return P.VERSION_MAJOR.to_bytes(2, "little") + min(minor, P.VERSION_MINOR).to_bytes(2, "little") + body

    def _dma_map(self, msg: Message) -> bytes:
        _require(len(msg.payload) >= P.DMA_MAP_SIZE, "DMA_MAP payload too short")
        req = P.DMA_MAP.unpack(msg.payload)
        _require(req.argsz >= P.DMA_MAP_SIZE, f"DMA_MAP argsz {req.argsz}")
        _require(len(msg.fds) <= 1, "DMA_MAP with more than one fd")
        fd = msg.fds.pop() if msg.fds else None
        with self.device.lock:  # device workers may be reading guest memory right now
            m = self.dma.map(req.address, req.size, req.flags, fd, req.offset)
        log.info("DMA_MAP %s (file offset 0x%x)", m.describe(), req.offset)
        return b""

    def _dma_unmap(self, msg: Message) -> bytes:
        _require(len(msg.payload) >= P.DMA_UNMAP_SIZE, "DMA_UNMAP payload too short")
        req = P.DMA_UNMAP.unpack(msg.payload)
        _require(req.argsz >= P.DMA_UNMAP_SIZE, f"DMA_UNMAP argsz {req.argsz}")
        if req.flags & P.DMA_UNMAP_FLAG_GET_DIRTY_BITMAP:
            raise RequestError(errno.ENOTSUP, "DMA_UNMAP dirty bitmaps are not supported")
        _require(not req.flags & ~P.DMA_UNMAP_FLAG_ALL, f"unknown DMA_UNMAP flags 0x{req.flags:x}")
        if req.flags & P.DMA_UNMAP_FLAG_ALL:
            _require(req.address == 0 and req.size == 0, "DMA_UNMAP ALL with an address or size")
            with self.device.lock:
                n = self.dma.unmap_all()
            log.info("DMA_UNMAP all (%d maps)", n)
        else:
            with self.device.lock:
                m = self.dma.unmap(req.address, req.size)
            log.info("DMA_UNMAP %s", m.describe())
        return bytes(msg.payload[:P.DMA_UNMAP_SIZE])

    def _get_info(self, msg: Message) -> bytes:
        _require(len(msg.payload) >= P.DEVICE_INFO_SIZE, "DEVICE_GET_INFO payload too short")
        req = P.DEVICE_INFO.unpack(msg.payload)
        _require(req.argsz >= P.DEVICE_INFO_SIZE, f"DEVICE_GET_INFO argsz {req.argsz}")
        return P.DEVICE_INFO.pack(P.DEVICE_INFO_SIZE, P.DEVICE_FLAGS_PCI | P.DEVICE_FLAGS_RESET,
                                  P.PCI_NUM_REGIONS, P.PCI_NUM_IRQS)

    def region_size(self, index: int) -> int:
        if index == P.PCI_CONFIG_REGION_INDEX:
            return CONFIG_SIZE
        bar = self.config.bars.get(index)
        return bar.size if bar is not None else 0

    def _get_region_info(self, msg: Message) -> bytes:
        _require(len(msg.payload) >= P.REGION_INFO_SIZE, "GET_REGION_INFO payload too short")
        req = P.REGION_INFO.unpack(msg.payload)
        _require(req.argsz >= P.REGION_INFO_SIZE, f"GET_REGION_INFO argsz {req.argsz}")
        _require(req.index < P.PCI_NUM_REGIONS, f"no region {req.index}")
        size = self.region_size(req.index)
        flags = P.REGION_FLAG_READ | P.REGION_FLAG_WRITE if size else 0
        return P.REGION_INFO.pack(P.REGION_INFO_SIZE, flags, req.index, 0, size, 0)

    def _get_irq_info(self, msg: Message) -> bytes:
        _require(len(msg.payload) >= P.IRQ_INFO_SIZE, "GET_IRQ_INFO payload too short")
        req = P.IRQ_INFO.unpack(msg.payload)
        _require(req.argsz >= P.IRQ_INFO_SIZE, f"GET_IRQ_INFO argsz {req.argsz}")
        st = self.interrupts.info(req.index)
        return P.IRQ_INFO.pack(P.IRQ_INFO_SIZE, st.info_flags, req.index, st.count)

    def _set_irqs(self, msg: Message) -> bytes:
        _require(len(msg.payload) >= P.IRQ_SET_SIZE, "SET_IRQS payload too short")
        req = P.IRQ_SET.unpack(msg.payload)
        _require(req.argsz >= P.IRQ_SET_SIZE, f"SET_IRQS argsz {req.argsz}")
        fds, msg.fds = msg.fds, []
        what = self.interrupts.set_irqs(req.flags, req.index, req.start, req.count, fds,
                                        bytes(msg.payload[P.IRQ_SET_SIZE:]))
        # INTx unmasks arrive after every interrupt under TCG: keep them out of INFO.
        log.log(logging.DEBUG if req.flags & P.IRQ_SET_ACTION_MASK_ALL != P.IRQ_SET_ACTION_TRIGGER
                else logging.INFO, "SET_IRQS %s", what)
        return b""

    # -- region access -------------------------------------------------------------------

    def _check_access(self, region: int, offset: int, count: int) -> None:
        size = self._sizes.get(region)
        if size and 0 < count <= MAX_BAR_ACCESS and offset < size and count <= size - offset:
            return  # the common case, without building any message
        _require(region < P.PCI_NUM_REGIONS, f"no region {region}")
        size = self.region_size(region)
        _require(size > 0, f"region {region} is not implemented")
        limit = MAX_DATA_XFER if region == P.PCI_CONFIG_REGION_INDEX else MAX_BAR_ACCESS
        _require(0 < count <= limit, f"access count {count} (region {region} takes 1..{limit} bytes)")
        _require(offset < size and count <= size - offset,
                 f"access [0x{offset:x}, +{count}) outside region {region} of size 0x{size:x}")

    def _region_read(self, msg: Message) -> bytes:
        payload = msg.payload
        if len(payload) != _ACCESS_SIZE:
            raise RequestError(errno.EINVAL, "REGION_READ payload must be 16 bytes")
        offset, region, count = _REGION_ACCESS.unpack_from(payload)
        size = self._sizes.get(region)
        # The common case first: one aligned BAR register (_check_access's own fast test).
        if (count == 4 or count == 8) and not offset % count and size and offset < size \
                and count <= size - offset and region != _CONFIG_REGION:
            device = self.device
            with device.lock:
                return payload + device.bar_read(region, offset, count).to_bytes(count, "little")
        self._check_access(region, offset, count)
        if region == _CONFIG_REGION:
            with self.device.lock:  # the same rule as BAR accesses: device state under one lock
                return bytes(payload) + self.config.read(offset, count)
        with self.device.lock:
            if count in (4, 8, 2, 1) and offset % count == 0:  # one register
                return payload + self.device.bar_read(region, offset, count).to_bytes(count, "little")
            data = b"".join(self.device.bar_read(region, off, w).to_bytes(w, "little")
                            for off, w in _split(offset, count))
        return bytes(payload) + data

    def _region_write(self, msg: Message) -> bytes:
        payload = msg.payload
        _require(len(payload) >= P.REGION_ACCESS_SIZE, "REGION_WRITE payload too short")
        offset, region, count = _REGION_ACCESS.unpack_from(payload)
        _require(len(payload) - P.REGION_ACCESS_SIZE == count,
                 f"REGION_WRITE count {count} but {len(payload) - P.REGION_ACCESS_SIZE} data bytes")
        self._check_access(region, offset, count)
        self._write_region(region, offset, payload[P.REGION_ACCESS_SIZE:])
        return bytes(payload[:P.REGION_ACCESS_SIZE])

    def _region_write_multi(self, msg: Message) -> bytes:
        _require(self.write_multiple, "REGION_WRITE_MULTI was not negotiated")
        p = msg.payload
        _require(len(p) >= 8, "REGION_WRITE_MULTI payload too short")
        n = int.from_bytes(p[:8], "little")
        _require(0 < n <= MAX_WRITE_MULTI, f"REGION_WRITE_MULTI wr_cnt {n}")
        _require(len(p) == 8 + n * P.REGION_WRITE_MULTI_ENTRY_SIZE, "REGION_WRITE_MULTI size mismatch")
        writes = [P.REGION_WRITE_MULTI_ENTRY.unpack(p, 8 + i * P.REGION_WRITE_MULTI_ENTRY_SIZE) for i in range(n)]
        for w in writes:  # validate all before applying any
            _require(0 < w.count <= 8, f"REGION_WRITE_MULTI entry count {w.count}")
            self._check_access(w.region, w.offset, w.count)
        for w in writes:
            self._write_region(w.region, w.offset, w.data[:w.count])
        return n.to_bytes(8, "little")

    def _write_region(self, region: int, offset: int, data) -> None:
        if region == P.PCI_CONFIG_REGION_INDEX:
            with self.device.lock:
                old_command = self.config.command
                for note in self.config.write(offset, bytes(data)):
                    log.debug("config write %s: %s", config_register_name(offset), note)
                if self.config.command != old_command:
                    log.info("PCI COMMAND 0x%04x -> 0x%04x", old_command, self.config.command)
                self.interrupts.set_intx_disabled(bool(self.config.command & COMMAND_INTX_DISABLE))
            return
        with self.device.lock:
            for off, w in _split(offset, len(data)):
                rel = off - offset
                self.device.bar_write(region, off, w, int.from_bytes(data[rel:rel + w], "little"))

    def _device_reset(self, msg: Message) -> bytes:
        _require(len(msg.payload) == 0, "DEVICE_RESET takes no payload")
        log.info("DEVICE_RESET")
        with self.device.lock:
            self.device.reset()
            self.config.reset()
            self.config.set_interrupt_status(self.interrupts.intx_level)
            self.interrupts.set_intx_disabled(False)
        return b""


def _split(offset: int, count: int):
    """Split an access into naturally aligned pieces of 8, 4, 2 or 1 bytes."""
    if count in (1, 2, 4, 8) and offset % count == 0:
        yield offset, count
        return
    end = offset + count
    while offset < end:
        for w in (8, 4, 2, 1):
            if offset % w == 0 and offset + w <= end:
                yield offset, w
                offset += w
                break


def serve(device: Device, socket_path: str, ready: threading.Event | None = None) -> Server:
    """Convenience: listen and serve until stopped (for threads in tests and tools)."""
    server = Server(device, socket_path)
    server.listen()
    if ready is not None:
        ready.set()
    try:
        server.serve_forever()
    finally:
        server.close()
    return server


def _readable(sock: socket.socket) -> bool:
    p = select.poll()
    p.register(sock.fileno(), select.POLLIN)
    return bool(p.poll(0))


class _Poller:
    """epoll with a tag per fd: what serve_forever needs of `selectors`, without the
    microseconds its select() adds to every message."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._tags: dict[int, str] = {}

    def register(self, fd: int, tag: str) -> None:
        self._epoll.register(fd, select.EPOLLIN)
        self._tags[fd] = tag

    def unregister(self, fd: int) -> None:
        self._epoll.unregister(fd)
        del self._tags[fd]

    def select(self, timeout: float | None) -> list[tuple[int, str]]:
        tags = self._tags
        return [(fd, tags[fd]) for fd, _ in self._epoll.poll(-1 if timeout is None else timeout) if fd in tags]

    def close(self) -> None:
        self._epoll.close()
