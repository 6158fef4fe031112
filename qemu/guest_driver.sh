#!/bin/sh
# mali-driver: load, bind, unbind and switch the guest's GPU driver (panthor or tyr) on the
# device-tree GPU node.  The modules and their load order come from the initramfs
# (/lib/modules/$(uname -r)/load-order.<driver>, written by qemu/initramfs.py).
#   mali-driver load DRIVER     insmod DRIVER and what it needs (already loaded: skipped)
#   mali-driver bind DRIVER     load if needed, then bind the GPU to DRIVER
#   mali-driver unbind          unbind the GPU from whichever driver has it
#   mali-driver switch DRIVER   unbind, then bind DRIVER
#   mali-driver current         the driver bound to the GPU (or "none")
#   mali-driver list            the drivers this guest has modules for
GPU=10000000.gpu
moddir=/lib/modules/$(uname -r)
die() { echo "mali-driver: $*" >&2; exit 1; }
loaded() { grep -q "^$(echo "$1" | tr - _) " /proc/modules; }

current() {
    if [ -L /sys/bus/platform/devices/$GPU/driver ]; then
        basename "$(readlink /sys/bus/platform/devices/$GPU/driver)"
    else
        echo none
    fi
}

load() {
    [ -f "$moddir/load-order.$1" ] || die "no modules for driver '$1' in this guest (have: $(list))"
    for m in $(cat "$moddir/load-order.$1"); do
        loaded "$m" && continue
        insmod "$moddir/$m.ko" || die "insmod $m failed"
    done
}

list() { for f in "$moddir"/load-order.*; do printf '%s ' "${f##*.}"; done; echo; }

unbind() {
    d=$(current)
    [ "$d" = none ] && return 0
    echo $GPU > /sys/bus/platform/drivers/$d/unbind || die "unbind from $d failed"
}

bind() {
    load "$1"
    [ "$(current)" = "$1" ] && return 0
    [ "$(current)" = none ] || die "the GPU is bound to $(current); use: mali-driver switch $1"
    echo $GPU > /sys/bus/platform/drivers/$1/bind 2>/dev/null
    [ "$(current)" = "$1" ] || die "binding $GPU to $1 failed (see dmesg)"
}

case "$1" in
    load) load "$2" ;;
    bind) bind "$2" ;;
    unbind) unbind ;;
    switch) unbind; bind "$2" ;;
    current) current ;;
    list) list ;;
    *) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 2 ;;
esac
