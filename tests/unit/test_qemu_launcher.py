"""Launcher and boot flow with stand-in processes (no QEMU, no kernel): readiness, failure
reporting and cleanup."""

import ast
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

from qemu import boot as bootmod
from qemu import initramfs
from qemu.assets import GuestAssets
from qemu.cpio import CpioWriter
from qemu.launcher import Session
from qemu.qemu_binary import QemuBinary

FAKE_SERVER = textwrap.dedent("""
    import os, socket, sys, time
    path = sys.argv[sys.argv.index("--socket") + 1]
    mode = os.environ.get("FAKE_SERVER_MODE", "ok")
    print("fake server", sys.argv[1:], flush=True)
    if mode == "crash":
        print("boom: no such GPU", flush=True); sys.exit(3)
    if mode in ("ok", "control"):
        s = socket.socket(socket.AF_UNIX); s.bind(path + ".tmp"); s.listen(1)
        os.rename(path + ".tmp", path)
    if mode == "control":  # also a control socket answering JSON lines, like mali_gpu's
        import json, threading
        c = socket.socket(socket.AF_UNIX)
        c.bind(sys.argv[sys.argv.index("--control") + 1]); c.listen(4)
        def serve():
            while True:
                conn, _ = c.accept()
                with conn, conn.makefile("rwb") as f:
                    for line in f:
                        f.write(json.dumps({"got": json.loads(line)}).encode() + b"\\n")
                        f.flush()
        threading.Thread(target=serve, daemon=True).start()
    time.sleep(60)
""")

# Plays QEMU: prints what a guest would print on the serial console, then "powers off".
FAKE_QEMU = textwrap.dedent("""
    import os, sys, time
    mode = os.environ.get("FAKE_QEMU_MODE", "ok")
    out = sys.stdout
    out.write("[    0.000000] Booting Linux\\r\\n@@MALI-VDEV-INIT@@ 1.0\\n@@MALI-VDEV-CMD-START@@\\n")
    out.write("@@MALI-VDEV-OUT@@ " + " ".join(sys.argv[1:3]) + "\\n"); out.flush()
    print("argv", sys.argv[1:], file=sys.stderr, flush=True)
    if mode == "pause":  # QMP on every -qmp socket; "paused" from 0.2 s to 2.2 s
        import json, socket, threading
        t0 = time.monotonic()
        state = lambda: "paused" if 0.2 <= time.monotonic() - t0 < 2.2 else "running"
        def requests(conn):  # QMP is a stream of JSON objects, not of lines
            dec, buf = json.JSONDecoder(), ""
            while chunk := conn.recv(4096):
                buf += chunk.decode()
                while buf.strip():
                    try:
                        obj, end = dec.raw_decode(buf.lstrip())
                    except ValueError:
                        break
                    buf = buf.lstrip()[end:]
                    yield obj
        def serve(sock):
            while True:
                conn, _ = sock.accept()
                with conn:
                    send = lambda o: conn.sendall(json.dumps(o).encode() + b"\\r\\n")
                    send({"QMP": {"version": {"qemu": {"micro": 3, "minor": 1, "major": 11}, "package": ""},
                                  "capabilities": []}})
                    last = "running"
                    for req in requests(conn):
                        now = state()
                        # like QEMU, no events before capabilities are negotiated
                        if now != last and req.get("execute") != "qmp_capabilities":
                            send({"event": "STOP" if now == "paused" else "RESUME",
                                  "timestamp": {"seconds": 0, "microseconds": 0}})
                            last = now
                        tag = {"id": req["id"]} if "id" in req else {}  # QEMU echoes ids
                        send({"return": {"status": now} if req.get("execute") == "query-status" else {}, **tag})
        for i, a in enumerate(sys.argv):
            if a == "-qmp":
                path = sys.argv[i + 1].split(",")[0].removeprefix("unix:")
                s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(1)
                threading.Thread(target=serve, args=(s,), daemon=True).start()
        time.sleep(2.5)
    if mode == "initrd":  # what the guest would unpack: the digest of the -initrd file
        import hashlib
        initrd = sys.argv[sys.argv.index("-initrd") + 1]
        digest = hashlib.sha256(open(initrd, "rb").read()).hexdigest()
        out.write("@@MALI-VDEV-OUT@@ initrd=" + digest + "\\n"); out.flush()
    if mode == "hang":
        time.sleep(60)
    if mode == "hold":  # a guest command that announces a hold, holds, then goes on
        out.write("[    1.0] kernel says holding=0 too\\n@@MALI-VDEV-OUT@@ holding=1\\n"); out.flush()
        time.sleep(1.0)
        out.write("@@MALI-VDEV-OUT@@ held=1\\n@@MALI-VDEV-OUT@@ holding=2\\n"); out.flush()
    out.write("@@MALI-VDEV-CMD-EXIT 7@@\\n"); out.flush()
""")


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    (tmp_path / "server.py").write_text(FAKE_SERVER)
    (tmp_path / "qemu.py").write_text(FAKE_QEMU)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # scratch dirs land here
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    return tmp_path


def fake_qemu(tmp_path) -> QemuBinary:
    return QemuBinary("system", [sys.executable, str(tmp_path / "qemu.py")], version="11.1.3")


def scratch_dirs(tmp_path):
    return list(tmp_path.glob("mali-vdev-run.*"))


def test_server_ready_then_everything_removed(fakes):
    with Session(fake_qemu(fakes)) as s:
        s.start_server(["--gpu", "g610"], [sys.executable, str(fakes / "server.py")])
        assert s.socket.exists() and s.server.alive()
        pid = s.server.proc.pid
    assert not s.socket.exists() and not scratch_dirs(fakes)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_server_early_exit_shows_its_log(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_SERVER_MODE", "crash")
    with pytest.raises(RuntimeError, match="(?s)exited early with status 3.*boom: no such GPU"):
        with Session(fake_qemu(fakes)) as s:
            s.start_server([], [sys.executable, str(fakes / "server.py")])
    assert not scratch_dirs(fakes)


def test_server_that_never_listens_times_out(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_SERVER_MODE", "silent")
    with pytest.raises(RuntimeError, match="did not create"):
        with Session(fake_qemu(fakes)) as s:
            s.start_server([], [sys.executable, str(fakes / "server.py")], timeout_s=0.5)
    assert not scratch_dirs(fakes)


def prepared(tmp_path) -> bootmod.Prepared:
    base = tmp_path / "base.cpio"
    w = CpioWriter()
    w.add_file("init", b"#!/bin/sh\n", 0o755)
    base.write_bytes(w.to_bytes())
    for f in ("Image", "virt.dtb"):
        (tmp_path / f).write_bytes(b"\0")
    assets = GuestAssets("7.2.13+deb14-arm64", tmp_path / "Image", tmp_path, tmp_path,
                         tmp_path, {})
    return bootmod.Prepared(fake_qemu(tmp_path), assets, base, tmp_path / "virt.dtb",
                            ["-machine", "virt"])


def test_boot_flow_collects_output_status_and_logs(fakes):
    seen = []
    r = bootmod.boot("true", 20, prepared=prepared(fakes), echo=seen.append,
                     server_program=[sys.executable, str(fakes / "server.py")], gpu="G710",
                     firmware="none")
    assert r.status == 7
    assert r.output == "-machine virt\n" and seen == ["-machine virt"]
    # the profile key, and the cortex-a72 guest's counter frequency for the GPU timestamp
    assert "'--gpu', 'g710', '--timestamp-hz', '62500000'" in r.server_log
    assert (r.gpu, r.firmware, r.timestamp_hz) == ("g710", "none", 62_500_000)
    assert "'--control'" in r.server_log
    assert r.server_status is None  # the stand-in has no control socket
    assert "@@MALI-VDEV-CMD-EXIT 7@@" in r.console_log
    assert r.kernel_version == "7.2.13+deb14-arm64" and r.log_dir is None
    assert not scratch_dirs(fakes)


def test_boot_timeout_raises_and_cleans_up(fakes, monkeypatch):
    monkeypatch.setenv("FAKE_QEMU_MODE", "hang")
    with pytest.raises(bootmod.BootError, match="timeout") as e:
        bootmod.boot("true", 1.0, prepared=prepared(fakes), keep_logs=True, firmware="none",
                     server_program=[sys.executable, str(fakes / "server.py")])
    r = e.value.result
    assert r.status is None and "CMD-START" in r.console_log
    assert r.log_dir and (Path(r.log_dir) / "console.log").exists()
    assert not scratch_dirs(fakes)


def test_boot_appends_the_layers_in_order(fakes, monkeypatch):
    """base, then the prepared layers, then the command; the initrd QEMU gets is that."""
    import hashlib
    monkeypatch.setenv("FAKE_QEMU_MODE", "initrd")
    p = prepared(fakes)
    extra = fakes / "tools.cpio"
    w = CpioWriter()
    w.add_file("usr/bin/panthor-client", b"x", 0o755)
    extra.write_bytes(w.to_bytes())
    p.layers = [extra]
    plan = bootmod.plan_boot(bootmod.BootOptions("echo hi", firmware="none"), p)
    assert plan.layers == [extra]
    r = bootmod.boot("echo hi", 20, prepared=p, firmware="none",
                     server_program=[sys.executable, str(fakes / "server.py")])
    want = initramfs.write_boot_initrd(p.initramfs, "echo hi", fakes / "want.cpio", [extra])
    assert f"initrd={hashlib.sha256(want.read_bytes()).hexdigest()}" in r.output.splitlines()


def test_unknown_gpu_or_firmware_is_refused_before_booting(fakes):
    with pytest.raises(KeyError, match="unknown GPU profile"):
        bootmod.boot("true", 5, prepared=prepared(fakes), gpu="g999", firmware="none")
    with pytest.raises(ValueError, match="unknown firmware choice"):
        bootmod.boot("true", 5, prepared=prepared(fakes), firmware="proprietary")
    assert not scratch_dirs(fakes)


def test_guest_counter_frequency_per_cpu():
    from qemu.launcher import guest_counter_hz
    assert guest_counter_hz("cortex-a72") == 62_500_000
    assert guest_counter_hz(bootmod.CPU) == 62_500_000
    with pytest.raises(ValueError, match="GUEST_COUNTER_HZ"):
        guest_counter_hz("neoverse-v9")


def test_watch_callbacks_reach_the_server_while_the_guest_holds(fakes, monkeypatch):
    """A pattern on the command's output starts its callback once, in a thread, with the
    server's control socket; the boot waits for it and hands back value or exception."""
    monkeypatch.setenv("FAKE_SERVER_MODE", "control")
    monkeypatch.setenv("FAKE_QEMU_MODE", "hold")
    calls = []

    def read(live, line):
        calls.append(line)
        return live.gpu_read(0x8000000, 64)

    def broken(live, line):
        raise RuntimeError("callback failed: " + line)

    seen = []
    r = bootmod.boot("true", 20, prepared=prepared(fakes), firmware="none", echo=seen.append,
                     server_program=[sys.executable, str(fakes / "server.py")],
                     watch={r"^holding=": read, r"^held=": broken, r"^never": read})
    assert r.status == 7
    assert calls == ["holding=1"]                          # first match, output lines only
    assert seen == ["-machine virt", "holding=1", "held=1", "holding=2"]  # echo gets all
    w = r.watched[r"^holding="]
    assert w.done and w.error is None and w.line == "holding=1"
    assert w.value == {"got": {"cmd": "gpu_read", "as": "any", "va": 0x8000000, "size": 64}}
    assert w.at < r.timings["cmd_exit"]                    # while the guest still held
    b = r.watched[r"^held="]
    assert b.done and isinstance(b.error, RuntimeError) and "held=1" in str(b.error)
    assert r"^never" not in r.watched
    assert not scratch_dirs(fakes)


def test_debug_options_reach_the_server_and_qemu_gets_qmp(fakes, monkeypatch):
    """trace/inject/watch/break become `serve` options (paths absolute), a break gives QEMU
    two QMP sockets and the server the first; time paused does not count against the
    timeout (the stand-in QEMU reports "paused" for 2 s of a 1 s timeout)."""
    monkeypatch.setenv("FAKE_QEMU_MODE", "pause")
    monkeypatch.chdir(fakes)
    (fakes / "faults.toml").write_text('[[inject]]\nkind = "stall_csg"\n')
    r = bootmod.boot("true", 1.0, prepared=prepared(fakes), firmware="none",
                     server_program=[sys.executable, str(fakes / "server.py")],
                     trace="run.jsonl", trace_format="jsonl",
                     inject=["drop_ping_ack:skip=1", "cs_fatal:exception=0x41"],
                     inject_file="faults.toml", watch_regs=["GPU_COMMAND:w"],
                     break_regs=["GPU_ID:r"])
    assert r.status == 7
    argv = ast.literal_eval(re.search(r"fake server (\[.*\])", r.server_log).group(1))
    opt = lambda name: [argv[i + 1] for i, a in enumerate(argv) if a == name]  # noqa: E731
    assert opt("--trace") == [str(fakes / "run.jsonl")] and opt("--trace-format") == ["jsonl"]
    assert r.trace == fakes / "run.jsonl"
    assert opt("--inject") == ["drop_ping_ack:skip=1", "cs_fatal:exception=0x41"]
    assert opt("--inject-file") == [str(fakes / "faults.toml")]
    assert opt("--watch") == ["GPU_COMMAND:w"] and opt("--break") == ["GPU_ID:r"]
    (qmp,) = opt("--qmp")
    assert qmp.endswith("/qmp.sock")
    qargs = ast.literal_eval(re.search(r"argv (\[.*\])", r.qemu_log).group(1))
    sockets = [qargs[i + 1] for i, a in enumerate(qargs) if a == "-qmp"]
    assert sockets == [f"unix:{qmp},server=on,wait=off",
                       f"unix:{Path(qmp).parent / 'monitor.sock'},server=on,wait=off"]
    assert r.pauses == 1 and r.timings["paused"] >= 1.5
    assert not scratch_dirs(fakes)


def test_no_qmp_without_a_break(fakes):
    r = bootmod.boot("true", 20, prepared=prepared(fakes), firmware="none",
                     server_program=[sys.executable, str(fakes / "server.py")],
                     watch_regs=["GPU_ID"])
    assert "-qmp" not in r.qemu_log and "'--qmp'" not in r.server_log
    assert "'--watch', 'GPU_ID'" in r.server_log and r.pauses == 0 and "paused" not in r.timings


def test_debug_server_args_and_early_refusals(tmp_path):
    assert bootmod.debug_server_args() == []
    with pytest.raises(ValueError, match="no fault injection file"):
        bootmod.debug_server_args(inject_file=tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="unknown trace format"):
        bootmod.boot("true", 1, trace="x", trace_format="pcap")
    from mali_vdev.cli import build_parser
    p = build_parser()
    ok = p.parse_args(["boot", "--trace", "t.mtrace", "--trace-format", "mmiotrace",
                       "--inject", "stall_csg:slot=0", "--inject", "gpu_fault",
                       "--watch", "GPU_ID", "--break", "MCU_CONTROL:w",
                       "--corrupt-firmware", "flags"])
    assert (ok.trace, ok.trace_format, ok.inject, ok.watch_regs, ok.break_regs,
            ok.corrupt_firmware) == (Path("t.mtrace"), "mmiotrace",
                                     ["stall_csg:slot=0", "gpu_fault"], ["GPU_ID"],
                                     ["MCU_CONTROL:w"], "flags")
    bootmod._check_debug_arguments(ok)
    for argv, why in ((["--inject", "melt_gpu"], "unknown fault kind"),
                      (["--inject", "stall_csg:slot"], "expected key=value"),
                      (["--inject-file", str(tmp_path / "none.toml")], "--inject-file"),
                      (["--trace", str(tmp_path / "no/such/dir/t.mtrace")], "no directory"),
                      (["--corrupt-firmware", "magic", "--firmware", "none"],
                       "needs a firmware")):
        with pytest.raises(ValueError, match=why):
            bootmod._check_debug_arguments(p.parse_args(["boot", *argv]))
    (tmp_path / "bad.toml").write_text('[[inject]]\nkind = "nope"\n')
    with pytest.raises(ValueError, match="unknown fault kind"):
        bootmod._check_debug_arguments(p.parse_args(["boot", "--inject-file",
                                                     str(tmp_path / "bad.toml")]))
    with pytest.raises(SystemExit):
        p.parse_args(["boot", "--corrupt-firmware", "shred"])


def test_watch_lines_are_picked_from_the_server_log():
    log = ("12:00:00.001 mali.watch WARNING: watch #3: read  GPU_ID = 0xa8670005 (...)\n"
           "12:00:00.002 mali.mcu INFO: MCU booted\n"
           "12:00:00.003 mali.watch WARNING: break #9: write MCU_CONTROL = 0x00000002 (MODE=AUTO)\n")
    assert bootmod._watch_lines(log) == ["watch #3: read  GPU_ID = 0xa8670005 (...)",
                                         "break #9: write MCU_CONTROL = 0x00000002 (MODE=AUTO)"]


def test_console_watch_sees_kernel_lines_and_counts_them(fakes):
    seen = []

    def on_kernel(live, line):
        seen.append(line)
        return live.console_lines()

    r = bootmod.boot("true", 20, prepared=prepared(fakes), firmware="none",
                     server_program=[sys.executable, str(fakes / "server.py")],
                     console_watch={r"Booting Linux": on_kernel})
    w = r.watched[r"Booting Linux"]
    assert seen == ["[    0.000000] Booting Linux"] and w.error is None and w.value >= 1
    with pytest.raises(RuntimeError, match="no QMP socket"):
        bootmod.Live(Path("x.ctl"), 0.0).qmp("query-status")
