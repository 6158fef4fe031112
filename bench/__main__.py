"""`make bench`: every benchmark of the project, printing numbers and ratios."""

from . import guest, interpreter, mmio, tracing


def main() -> None:
    mmio.main()
    interpreter.main()
    tracing.main()
    guest.main()


main()
