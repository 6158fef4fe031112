"""`make bench`: every benchmark of the project, printing numbers and ratios."""

from . import cmmio, guest, interpreter, kernel, mmio, regaccess, tracing


def main() -> None:
    mmio.main()
    cmmio.main()
    interpreter.main()
    regaccess.main()
    tracing.main()
    guest.main()
    kernel.main()


main()
