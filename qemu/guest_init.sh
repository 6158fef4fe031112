#!/bin/sh
# /init of the mali-vdev test guest (busybox).  Glues the vfio-user PCI function to the
# "gpu@10000000" device-tree node (the DT hole), loads the chosen GPU driver, runs the
# command from /mali-vdev/cmd.sh and powers off.  The host reads the markers below from
# the serial console; guest command output lines carry the OUT prefix so they can be told
# apart from kernel messages on the same console.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mount -t tmpfs tmpfs /dev
mount -t tmpfs tmpfs /tmp

# Our output on its own UART when the machine has one: a kernel message printed to the
# console (ttyAMA0) lands in the middle of whatever line a process is writing there.
# With mali.shell=1 (`mali-vdev shell`) ttyAMA1 belongs to the interactive shell and the
# markers stay on the console.
if [ -c /dev/ttyAMA1 ] && ! grep -qw mali.shell=1 /proc/cmdline; then
    exec >/dev/ttyAMA1 2>&1
fi

echo "@@MALI-VDEV-INIT@@ $(cut -d' ' -f1 /proc/uptime)"

GPU_BASE=0x10000000
has_opt() { grep -qw "$1" /proc/cmdline; }

# stty's tcsetattr(TCSADRAIN) on our output: the last marker leaves the UART before power-off
drain() { stty -echo <&1 2>/dev/null; }

fail() {
    echo "@@MALI-VDEV-ERROR $*@@"
    echo "@@MALI-VDEV-CMD-EXIT 125@@"
    drain
    poweroff -f
    sleep 10
}

# Our function: slot 0000:00:01.0 or vendor 0x13b5 (Arm).
dev=
for d in /sys/bus/pci/devices/*; do
    [ -e "$d/vendor" ] || continue
    if [ "${d##*/}" = "0000:00:01.0" ] || [ "$(cat "$d/vendor")" = "0x13b5" ]; then
        dev=$d
        break
    fi
done
[ -n "$dev" ] || fail "no PCI function at 0000:00:01.0 or with vendor 0x13b5"
echo "mali-vdev: PCI ${dev##*/} vendor $(cat "$dev/vendor") device $(cat "$dev/device") class $(cat "$dev/class")"

# config-space writes are little endian; one dd write per register keeps them aligned.
cfg_write() {  # offset(bytes) size(2|4) value
    case $2 in
        2) bytes=$(printf '\\%03o\\%03o' $(($3 & 255)) $((($3 >> 8) & 255))) ;;
        4) bytes=$(printf '\\%03o\\%03o\\%03o\\%03o' $(($3 & 255)) $((($3 >> 8) & 255)) \
                   $((($3 >> 16) & 255)) $((($3 >> 24) & 255))) ;;
    esac
    printf "$bytes" | dd of="$dev/config" bs="$2" seek=$(($1 / $2)) count=1 conv=notrunc 2>/dev/null
}

# The device tree reserves exactly 2 MiB for the GPU; a bigger BAR0 would overlap PCI space.
set -- $(head -n1 "$dev/resource")
[ $(($2 - $1 + 1)) -le $((0x200000)) ] || fail "BAR0 of ${dev##*/} is larger than the 2 MiB DT hole"

# BAR0 -> the hole the device tree reserves; upper half too if the BAR is 64-bit;
# then COMMAND = MEMORY | MASTER (QEMU only maps the BAR while MEMORY is set).
bar_lo=$(dd if="$dev/config" bs=1 skip=16 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
cfg_write 16 4 $GPU_BASE || fail "cannot write BAR0 of ${dev##*/}"
if [ $((${bar_lo:-0} & 6)) -eq 4 ]; then cfg_write 20 4 0; fi
cfg_write 4 2 6 || fail "cannot write COMMAND of ${dev##*/}"

# The GPU driver the boot asked for (mali.driver=panthor|tyr|none); loading it probes the
# GPU node.  mali.load_panthor=1 is what boots said before there was a choice.
driver=$(sed -n 's/.*mali\.driver=\([a-z]*\).*/\1/p' /proc/cmdline)
if [ -z "$driver" ] && has_opt mali.load_panthor=1; then driver=panthor; fi
case "${driver:-none}" in
    none) ;;
    *) mali-driver load "$driver" || echo "mali-vdev: loading $driver failed" ;;
esac

# Host folders (mali.share=TAG:PATH,...; qemu/share.py): 9p over virtio-pci.
shares=$(sed -n 's/.*mali\.share=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
if [ -n "$shares" ]; then
    moddir=/lib/modules/$(uname -r)
    if [ -f "$moddir/load-order.share" ]; then
        for m in $(cat "$moddir/load-order.share"); do
            grep -q "^$m " /proc/modules || insmod "$moddir/$m.ko" || echo "mali-vdev: insmod $m failed"
        done
    fi
    for s in $shares; do
        mkdir -p "${s#*:}"
        mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "${s%%:*}" "${s#*:}" ||
            echo "mali-vdev: mounting the host folder ${s%%:*} on ${s#*:} failed"
    done
fi

echo "@@MALI-VDEV-CMD-START@@"
if has_opt mali.shell=1; then
    # A new session whose first tty open makes ttyAMA1 its controlling terminal: job
    # control, and Ctrl-C from the user's terminal reaches the foreground process.
    [ -c /dev/ttyAMA1 ] || fail "mali.shell=1 needs a second UART (ttyAMA1)"
    mkdir -p /root
    setsid sh -c 'exec 0<>/dev/ttyAMA1 1>&0 2>&0; cd /root; export HOME=/root PS1="mali-vdev:\w# "
                  . /mali-vdev/cmd.sh; exec sh -i'
    echo "@@MALI-VDEV-CMD-EXIT $?@@"
    drain
    poweroff -f
    sleep 10
fi
{ sh /mali-vdev/cmd.sh; echo $? > /tmp/status; } 2>&1 | while IFS= read -r line || [ -n "$line" ]; do
    echo "@@MALI-VDEV-OUT@@ $line"
done
echo "@@MALI-VDEV-CMD-EXIT $(cat /tmp/status 2>/dev/null || echo 126)@@"
drain
poweroff -f
sleep 10
