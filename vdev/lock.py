"""`device.lock`: one mutex for all device state, handed over fairly to the threads waiting for it.

A device worker (the GPU's engine) takes the lock back right after each bounded slice of
work. With a plain Lock, whichever thread the OS and the GIL happen to run first gets it,
and a busy worker re-takes it before the woken server thread has even run: register
accesses waited up to 1.2 s. Here a thread that blocks in acquire() is counted while it
waits, and a worker re-takes the lock with `acquire_after_waiters()`, which first lets every
counted thread have its turn. Plain `with lock:` is the register side's way in.

A server also takes a `turn()` around each whole message: from the moment it wakes for
one until its reply is sent, a worker stays parked at its next slice boundary. Without it
the worker runs (holding the GIL) whenever the server's recv/send release the GIL, and every
such syscall costs the server another GIL switch interval to get back in.
"""

from __future__ import annotations

import threading
import time

# A worker waits for the waiters in steps of this long: only a safety net, the last waiter
# to get the lock wakes it at once.
HANDOFF_POLL_S = 0.01
# A worker parks for a turn at most this long per slice: a peer stalled in the middle of a
# message holds the server, not the GPU.
TURN_MAX_S = 0.05


class DeviceLock:
    """Not re-entrant (as threading.Lock: a re-entry deadlocks at once instead of hiding)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: list[None] = []    # one entry per thread blocked in acquire(); append/pop are atomic
        self._served = threading.Event()  # set whenever a waiter got the mutex or a turn ended
        self._turns: list[None] = []      # one entry per turn() in progress
        self._parked: list[None] = []     # a worker waiting in acquire_after_waiters
        self._after_turn: list = []       # callbacks for the end of the turn in progress
        self._turn = _Turn(self)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._mutex.acquire(False):
            return True
        if not blocking:
            return False
        self._waiting.append(None)
        try:
            return self._mutex.acquire(True, timeout)
        finally:
            self._waiting.pop()
            self._served.set()

    def release(self) -> None:
        self._mutex.release()

    def locked(self) -> bool:
        return self._mutex.locked()

    def __enter__(self) -> bool:
        return self._mutex.acquire(False) or self.acquire()

    def __exit__(self, *exc) -> None:
        self._mutex.release()

    @property
    def waiters(self) -> int:
        """Threads blocked in acquire() right now (a worker checks it between batches)."""
        return len(self._waiting)

    def turn(self) -> "_Turn":
        """A context for one whole register-side transaction (receive, handle, reply): a worker
        does not re-take the lock until it ends. Entering waits for a worker's current slice."""
        return self._turn

    def call_after_turn(self, fn) -> None:
        """Call `fn` once the turn in progress has ended (at once if none is): a worker woken
        in the middle of a message would only fight the server for the GIL until the reply
        is out, then park."""
        if self._turns:
            self._after_turn.append(fn)
        else:
            fn()

    def acquire_after_waiters(self) -> None:
        """Take the lock, but only after every thread already waiting for it has had it and
        every turn in progress has ended (one that lasts beyond TURN_MAX_S is not waited for)."""
        waiting, turns, served = self._waiting, self._turns, self._served
        if waiting or turns:
            deadline = None
            self._parked.append(None)  # before the checks below: a turn ending after them sees it
            try:
                while waiting or turns:
                    served.clear()  # before the check: a waiter served after it sets it again
                    if not (waiting or turns):
                        break
                    if turns and not waiting:
                        now = time.monotonic()
                        if deadline is None:
                            deadline = now + TURN_MAX_S
                        elif now >= deadline:
                            break
                    served.wait(HANDOFF_POLL_S)
            finally:
                self._parked.pop()
        self._mutex.acquire()


class _Turn:
    def __init__(self, lock: DeviceLock):
        self._lock = lock

    def __enter__(self) -> None:
        lock = self._lock
        lock._turns.append(None)
        # Wait for the end of a worker's slice (it parks there, seeing the turn).
        lock._mutex.acquire()
        lock._mutex.release()

    def __exit__(self, *exc) -> None:
        lock = self._lock
        lock._turns.pop()
        if lock._after_turn and not lock._turns:
            calls, lock._after_turn = lock._after_turn, []
            for fn in calls:
                fn()
        if lock._parked:  # an Event.set costs microseconds: only when a worker waits
            lock._served.set()
