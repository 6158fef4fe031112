"""CSG slots as the firmware presents them: requests on the CSG/CS input, acks on the output.

So far the slots acknowledge what the driver asks (STATE, ENDPOINT_CONFIG, STATUS_UPDATE and
CS requests) without running command streams; the CS interpreter builds on this.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mali_regs import csf_iface as I

if TYPE_CHECKING:
    from firmware_loader.mcu import Mcu

log = logging.getLogger("mali.csg")

CSG_STATE_NAMES = {0: "TERMINATE", 1: "START", 2: "SUSPEND", 3: "RESUME"}


class CsgSlots:
    def __init__(self, mcu: "Mcu", job_irq):
        self.mcu = mcu
        self.job_irq = job_irq
        self.state = [0] * mcu.group_num

    def doorbell(self, slot: int) -> None:
        if not 0 <= slot < self.mcu.group_num:
            log.warning("doorbell for CSG slot %d: no such slot", slot)
            return
        inp, out = self.mcu.csg(I.CSG_INPUT, slot), self.mcu.csg(I.CSG_OUTPUT, slot)
        req, ack = inp["CSG_REQ"], out["CSG_ACK"]
        changed = (req ^ ack) & I.CSG_REQ_MASK
        irq = False
        if changed:
            if changed & 0x7:
                self.state[slot] = req & 0x7
                log.info("CSG%d %s", slot, CSG_STATE_NAMES.get(req & 0x7, f"state {req & 7}"))
            out["CSG_ACK"] = (ack & ~changed) | (req & changed)
            irq = True
        db_req, db_ack = inp["CSG_DB_REQ"], out["CSG_DB_ACK"]
        streams = (db_req ^ db_ack) & ((1 << self.mcu.stream_num) - 1)
        if streams:
            out["CSG_DB_ACK"] = db_ack ^ streams
        for stream in range(self.mcu.stream_num):
            cs_in, cs_out = self.mcu.cs(I.CS_INPUT, slot, stream), self.mcu.cs(I.CS_OUTPUT, slot, stream)
            cs_req, cs_ack = cs_in["CS_REQ"], cs_out["CS_ACK"]
            cs_changed = (cs_req ^ cs_ack) & I.CS_REQ_MASK
            if cs_changed:
                cs_out["CS_ACK"] = (cs_ack & ~cs_changed) | (cs_req & cs_changed)
        if irq:
            self.job_irq.raise_bits(1 << slot)

    def reset(self) -> None:
        self.state = [0] * self.mcu.group_num
