"""What a fragment job that cannot be honoured raises: the scheduler turns it into a CS fatal
of the same exception type, and the log line (one per fault: the queue stops) names the
descriptor field and its decoded value."""

from __future__ import annotations

from mali_regs.enums import EXCEPTION

#: Descriptor contents the hardware rejects, or that this model does not emulate (the
#: message says which): DATA_INVALID_FAULT, as for a malformed job descriptor.
DATA_INVALID = EXCEPTION["DATA_INVALID_FAULT"]


class FragmentFault(Exception):
    def __init__(self, why: str, info: int = 0, exception_type: int = DATA_INVALID):
        super().__init__(why)
        self.why = why
        self.info = info & 0xFFFFFFFF
        self.exception_type = exception_type


def not_emulated(what: str, info: int = 0) -> FragmentFault:
    return FragmentFault(f"{what}: not emulated by this virtual GPU", info)
