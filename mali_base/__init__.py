"""The mechanisms every block stands on: the event bus, the clock, the register file,
fault injection, the page-table walker and the address spaces that reach guest memory.

Nothing here knows a block or the device; it imports only mali_regs and vdev.
"""
