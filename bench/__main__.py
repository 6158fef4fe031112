"""`make bench`: every benchmark of the project, printing numbers and ratios."""

from . import cmmio, guest, interpreter, kernel, mmio, regaccess, shader, tracing


def main() -> None:
    mmio.main()
    cmmio.main()
    interpreter.main()
    shader.main()
    regaccess.main()
    tracing.main()
    guest.main()
    kernel.main()


main()
