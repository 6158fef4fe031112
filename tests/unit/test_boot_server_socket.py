"""`boot(server_socket=...)` / `mali-vdev boot --server SOCKET`: attach to a running server.
What can be checked without QEMU: the options that belong to a server the boot would start
are refused, as is a path that is no socket, and the CLI passes the option through."""

from __future__ import annotations

import argparse
import socket

import pytest

from qemu import boot


@pytest.fixture
def listening(tmp_path):
    path = tmp_path / "gpu.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(1)
    yield path
    s.close()


def test_a_running_servers_socket_is_accepted(listening):
    boot.BootOptions(server_socket=listening).check()


@pytest.mark.parametrize("option, value", [("trace", "t.mtrace"), ("inject", ["gpu_fault"]), ("watch_regs", ["GPU_ID"]),
                                           ("break_regs", ["MCU_CONTROL"]), ("server_args", ["--gpu", "g710"])])
def test_server_options_are_refused_with_a_running_server(listening, option, value):
    with pytest.raises(ValueError, match=f"{option}: options of a server this boot starts"):
        boot.BootOptions(server_socket=listening, **{option: value}).check()


def test_a_path_that_is_not_a_socket_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is not a socket"):
        boot.BootOptions(server_socket=tmp_path / "file").check()
    with pytest.raises(FileNotFoundError):
        boot.BootOptions(server_socket=tmp_path / "missing").check()


def test_the_cli_option(listening):
    parser = argparse.ArgumentParser()
    boot.add_boot_arguments(parser)
    args = parser.parse_args(["--server", str(listening)])
    for name in ("driver", "load_panthor", "kernel", "modules", "firmware", "guest_packages", "log_dir", "keep_logs"):
        if not hasattr(args, name):
            setattr(args, name, None)
    args.firmware = args.firmware or "generated"
    assert boot.options_from_args(args).server_socket == str(listening)
