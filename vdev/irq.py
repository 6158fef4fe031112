"""Interrupts of a vfio-user PCI function: eventfds per IRQ index, INTx with level semantics.

The device model only says whether its INTx line is high (`set_intx_level`). QEMU's client
treats INTx as edge-then-EOI: it asserts the guest line when our eventfd fires and, on the EOI
(the next trapped BAR access under TCG: `SET_IRQS NONE|UNMASK`; under KVM: its resample fd),
deasserts it and unmasks. So each trigger auto-masks the line, and an unmask while the device
still holds the level high triggers again — that is what makes it level-triggered.

Under TCG the unmask comes right after the guest's first register access in its handler,
before the handler masks the device. Re-triggering then races QEMU's own deassert at the next
access: the late eventfd can leave the line asserted with nothing left to lower it, and a
driver whose handler returns "not mine" without touching a register then sees an interrupt
storm. So a client UNMASK is evaluated once the client has been quiet for UNMASK_QUIET_S (the
handler's mask write has arrived), or after UNMASK_MAX_DELAY_S at the latest; the server loop
calls `recheck()`. A KVM resample (a real EOI) is evaluated at once.

The deferral narrows the race but cannot close it (a vCPU can stall mid-handler for longer
than any delay), and a trigger fired just before the guest's mask write still reaches QEMU
after it. A guest whose handlers may return without any register access should therefore see
the line as edge-triggered at its interrupt controller (qemu/devicetree.py does so for
panthor): the re-trigger after each EOI keeps the level semantics.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from . import protocol as P
from .ratelimit import RateLimitedLog

log = logging.getLogger("vdev.irq")
_signal_log = RateLimitedLog(log)

UNMASK_QUIET_S = 0.0005
UNMASK_MAX_DELAY_S = 0.002


class IrqError(Exception):
    def __init__(self, errno_: int, msg: str):
        super().__init__(msg)
        self.errno = errno_


@dataclass
class IrqIndexState:
    index: int
    count: int
    info_flags: int
    fds: list[int | None] = field(default_factory=list)

    def __post_init__(self):
        self.fds = [None] * self.count


def _signal(fd: int) -> None:
    # The fd is non-blocking (set_irqs made it so): a client that never reads its eventfd
    # loses interrupts, it cannot stop the server.
    try:
        os.eventfd_write(fd, 1)
    except BlockingIOError:
        _signal_log.warning("eventfd %d is full (the client does not read it): interrupt dropped", fd)
    except OSError as e:
        _signal_log.warning("eventfd %d write failed: %s", fd, e)


def _check_eventfd(fd: int) -> None:
    """Accept only eventfds, made non-blocking: a pipe or socket in their place would block
    the server once its buffer fills. O_NONBLOCK is on the shared file description, as
    QEMU's own eventfds already have it."""
    try:
        kind = os.readlink(f"/proc/self/fd/{fd}")
    except OSError as e:
        raise IrqError(errno.EINVAL, f"cannot identify fd {fd}: {e}") from None
    if kind != "anon_inode:[eventfd]":
        raise IrqError(errno.EINVAL, f"SET_IRQS: the fd is not an eventfd ({kind})")
    os.set_blocking(fd, False)


class Interrupts:
    """IRQ state of one function. Fds belong to the connection; the INTx level to the device."""

    def __init__(self, intx: bool = True, msi_vectors: int = 0):
        self._lock = threading.Lock()
        self.indexes = {
            P.IrqIndex.INTX: IrqIndexState(P.IrqIndex.INTX, 1 if intx else 0,
                                           P.IRQ_INFO_EVENTFD | P.IRQ_INFO_MASKABLE | P.IRQ_INFO_AUTOMASKED),
            P.IrqIndex.MSI: IrqIndexState(P.IrqIndex.MSI, msi_vectors, P.IRQ_INFO_EVENTFD | P.IRQ_INFO_NORESIZE),
            P.IrqIndex.MSIX: IrqIndexState(P.IrqIndex.MSIX, 0, P.IRQ_INFO_EVENTFD),
            # ERR: QEMU installs an eventfd whose signal stops the VM; we accept it and never fire it.
            P.IrqIndex.ERR: IrqIndexState(P.IrqIndex.ERR, 1, P.IRQ_INFO_EVENTFD),
            P.IrqIndex.REQ: IrqIndexState(P.IrqIndex.REQ, 0, P.IRQ_INFO_EVENTFD),
        }
        self.intx_level = False      # what the device drives
        self.intx_masked = False     # masked by the client or auto-masked after a trigger
        self.intx_disabled = False   # PCI COMMAND.INTX_DISABLE
        self.intx_resample_fd: int | None = None
        self.intx_triggers = 0       # statistics, and something tests can observe
        self.recheck_deadline: float | None = None  # a deferred UNMASK is waiting (monotonic time)
        self.on_intx_status = None   # callback(asserted: bool) for PCI STATUS.INTERRUPT
        self.on_signal = None        # callback() after each eventfd signal (ServerTiming)

    # -- device side ---------------------------------------------------------------------

    def set_intx_level(self, level: bool) -> None:
        with self._lock:
            if level == self.intx_level:
                return
            self.intx_level = level
            if self.on_intx_status:
                self.on_intx_status(level)
            if level:
                self._intx_evaluate()

    def set_intx_disabled(self, disabled: bool) -> None:
        with self._lock:
            self.intx_disabled = disabled
            self._intx_evaluate()

    def _intx_evaluate(self) -> None:
        fd = self.indexes[P.IrqIndex.INTX].fds[0] if self.indexes[P.IrqIndex.INTX].count else None
        if self.intx_level and not self.intx_masked and not self.intx_disabled and fd is not None:
            self.intx_masked = True
            self.intx_triggers += 1
            self._signal(fd)

    def trigger(self, index: int, vector: int = 0) -> bool:
        """Edge interrupt (MSI and the like): signal the vector's eventfd if installed."""
        with self._lock:
            st = self.indexes.get(index)
            if st is None or vector >= st.count or st.fds[vector] is None:
                return False
            self._signal(st.fds[vector])
            return True

    def _signal(self, fd: int) -> None:
        _signal(fd)
        if self.on_signal:
            self.on_signal()

    # -- client side (DEVICE_SET_IRQS) ----------------------------------------------------

    def info(self, index: int) -> IrqIndexState:
        st = self.indexes.get(index)
        if st is None:
            raise IrqError(errno.EINVAL, f"no IRQ index {index}")
        return st

    def resample(self) -> None:
        """The KVM resample fd fired: the guest EOI'd the line."""
        fd = self.intx_resample_fd
        if fd is not None:
            try:
                os.eventfd_read(fd)
            except BlockingIOError:
                pass
            except OSError as e:
                log.warning("resample fd %d read failed: %s", fd, e)
        self._unmask_intx()

    def _unmask_intx(self, defer: bool = False) -> None:
        with self._lock:
            self.intx_masked = False
            if defer:
                if self.recheck_deadline is None:
                    self.recheck_deadline = time.monotonic() + UNMASK_MAX_DELAY_S
                return
            self._intx_evaluate()

    def recheck(self) -> None:
        """Evaluate the line after a deferred UNMASK (called by the server loop)."""
        with self._lock:
            self.recheck_deadline = None
            self._intx_evaluate()

    def set_irqs(self, flags: int, index: int, start: int, count: int, fds: list[int], data: bytes) -> str:
        """Apply one DEVICE_SET_IRQS. Takes ownership of `fds`. Returns a description to log."""
        try:
            return self._set_irqs(flags, index, start, count, fds, data)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise

    def _set_irqs(self, flags, index, start, count, fds, data) -> str:
        dtype = flags & P.IRQ_SET_DATA_MASK
        action = flags & P.IRQ_SET_ACTION_MASK_ALL
        if flags & ~(P.IRQ_SET_DATA_MASK | P.IRQ_SET_ACTION_MASK_ALL):
            raise IrqError(errno.EINVAL, f"unknown SET_IRQS flags 0x{flags:x}")
        if dtype not in (P.IRQ_SET_DATA_NONE, P.IRQ_SET_DATA_BOOL, P.IRQ_SET_DATA_EVENTFD):
            raise IrqError(errno.EINVAL, f"SET_IRQS needs exactly one data type, flags 0x{flags:x}")
        if action not in (P.IRQ_SET_ACTION_MASK, P.IRQ_SET_ACTION_UNMASK, P.IRQ_SET_ACTION_TRIGGER):
            raise IrqError(errno.EINVAL, f"SET_IRQS needs exactly one action, flags 0x{flags:x}")
        st = self.info(index)
        name = P.IrqIndex(index).name
        if dtype != P.IRQ_SET_DATA_EVENTFD and fds:
            raise IrqError(errno.EINVAL, "fds attached to a SET_IRQS without DATA_EVENTFD")
        # Disable-all: NONE|TRIGGER with count 0.
        if dtype == P.IRQ_SET_DATA_NONE and action == P.IRQ_SET_ACTION_TRIGGER and count == 0:
            if start != 0:
                raise IrqError(errno.EINVAL, "disable-all with nonzero start")
            self._release_index(st)
            return f"{name} disabled"
        if start >= st.count or count > st.count - start or count == 0:
            raise IrqError(errno.EINVAL, f"{name}: vectors [{start}, {start + count}) outside 0..{st.count}")
        if dtype == P.IRQ_SET_DATA_BOOL and len(data) < count:
            raise IrqError(errno.EINVAL, "DATA_BOOL payload shorter than count")

        if dtype == P.IRQ_SET_DATA_EVENTFD:
            if fds and len(fds) != count:
                raise IrqError(errno.EINVAL, f"{len(fds)} fds for {count} vectors")
            for fd in fds:
                _check_eventfd(fd)
            if action == P.IRQ_SET_ACTION_TRIGGER:
                with self._lock:
                    for i in range(count):
                        old = st.fds[start + i]
                        st.fds[start + i] = fds[i] if fds else None
                        if old is not None:
                            os.close(old)
                    if index == P.IrqIndex.INTX:
                        self.intx_masked = False
                        self._intx_evaluate()
                return f"{name}[{start}:{start + count}] eventfds {'installed' if fds else 'removed'}"
            if action == P.IRQ_SET_ACTION_UNMASK and index == P.IrqIndex.INTX:
                # QEMU/KVM's resample fd: signalled at guest EOI (kernel VFIO meaning).
                with self._lock:
                    old, self.intx_resample_fd = self.intx_resample_fd, (fds[0] if fds else None)
                if old is not None:
                    os.close(old)
                return f"INTX resample fd {'installed' if fds else 'removed'}"
            raise IrqError(errno.ENOTSUP, f"{name}: EVENTFD with action 0x{action:x} is not supported")

        selected = [True] * count if dtype == P.IRQ_SET_DATA_NONE else [b != 0 for b in data[:count]]
        if index == P.IrqIndex.INTX:
            if action == P.IRQ_SET_ACTION_MASK:
                if selected[0]:
                    with self._lock:
                        self.intx_masked = True
                return "INTX masked"
            if action == P.IRQ_SET_ACTION_UNMASK:
                if selected[0]:
                    self._unmask_intx(defer=True)
                return "INTX unmasked"
        if action == P.IRQ_SET_ACTION_TRIGGER:
            for i, sel in enumerate(selected):
                if sel:
                    self.trigger(index, start + i)
            return f"{name}[{start}:{start + count}] triggered by the client"
        # Per-vector masking of MSI is the guest's business (QEMU emulates it); accept it.
        return f"{name}[{start}:{start + count}] {'masked' if action == P.IRQ_SET_ACTION_MASK else 'unmasked'}"

    def _release_index(self, st: IrqIndexState) -> None:
        with self._lock:
            for i, fd in enumerate(st.fds):
                if fd is not None:
                    os.close(fd)
                st.fds[i] = None
            if st.index == P.IrqIndex.INTX:
                self.intx_masked = False
                if self.intx_resample_fd is not None:
                    os.close(self.intx_resample_fd)
                    self.intx_resample_fd = None

    def release_all(self) -> None:
        """The client went away: close every fd it gave us; levels stay (device state)."""
        for st in self.indexes.values():
            self._release_index(st)
