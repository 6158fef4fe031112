"""The CSG suspend buffer: what a SUSPEND saves and a RESUME restores, per command stream.

It lives in guest memory (the MCU VA the driver gives in CSG_SUSPEND_BUF), like the real
firmware's, so state survives only as long as the driver keeps that buffer.
"""

from __future__ import annotations

from construct import Array, Const, Int32ul, Int64ul, Struct, this

from .stream import CommandStream, Frame, SyncWait

MAGIC = b"MVSB"  # mali-vdev suspend buffer, format 1

FrameRecord = Struct("ring" / Int32ul, "pad" / Int32ul, "pc" / Int64ul, "end" / Int64ul)
StreamRecord = Struct(
    "running" / Int32ul,
    "nframes" / Int32ul,
    "frames" / Array(this.nframes, FrameRecord),
    "nregs" / Int32ul,
    "regs" / Array(this.nregs, Int32ul),
    "progress" / Int64ul,
    "error" / Int32ul,
    "waiting" / Int32ul,
    "wait_addr" / Int64ul,
    "wait_value" / Int64ul,
    "wait_flags" / Int32ul,  # bit0 64-bit, bit1 GT, bit2 error_reject
    "sb_entries" / Int32ul,  # SET_SB_ENTRY: endpoint slot in bits 0-3, other slot in bits 4-7
)
SuspendBuffer = Struct(
    "magic" / Const(MAGIC),
    "version" / Const(1, Int32ul),
    "nstreams" / Int32ul,
    "streams" / Array(this.nstreams, StreamRecord),
)


def save(streams: list[CommandStream]) -> bytes:
    recs = []
    for cs in streams:
        w = cs.wait
        recs.append(dict(
            running=int(cs.running), nframes=len(cs.frames),
            frames=[dict(ring=int(f.ring), pad=0, pc=f.pc, end=f.end) for f in cs.frames],
            nregs=len(cs.regs), regs=cs.regs, progress=cs.progress & (1 << 64) - 1, error=cs.error,
            waiting=int(w is not None), wait_addr=w.addr if w else 0, wait_value=w.value if w else 0,
            wait_flags=(w.is64 | (w.cond == 1) << 1 | w.error_reject << 2) if w else 0,
            sb_entries=cs.sb_endpoint | cs.sb_other << 4))
    return SuspendBuffer.build(dict(nstreams=len(streams), streams=recs))


def restore(data: bytes, streams: list[CommandStream]) -> None:
    """Raises construct errors (caller turns them into a CS fatal) on a corrupted buffer."""
    doc = SuspendBuffer.parse(data)
    for cs, rec in zip(streams, doc.streams):
        cs.running = bool(rec.running)
        cs.frames = [Frame(bool(f.ring), f.pc, f.end) for f in rec.frames]
        cs.regs[:len(rec.regs)] = list(rec.regs)[:len(cs.regs)]
        cs.progress = rec.progress
        cs.error = rec.error
        cs.sb_endpoint, cs.sb_other = rec.sb_entries & 0xF, (rec.sb_entries >> 4) & 0xF
        cs.wait = (SyncWait(rec.wait_addr, rec.wait_value, bool(rec.wait_flags & 1), (rec.wait_flags >> 1) & 1,
                            bool(rec.wait_flags & 4)) if rec.waiting else None)


def size_of(streams: list[CommandStream]) -> int:
    return len(save(streams))
