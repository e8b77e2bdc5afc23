#!/bin/sh
# Runs as PID 1's command inside the virtme-ng guest booted by tests/vm/test_vm.py.
#
# virtme-ng shares the host's root over 9p without caching (cache=none), so every page of the
# Python interpreter is fetched from the host again on each exec: a bare `python -c pass`
# takes ~6 s under QEMU's software emulation. The host exports its root a second time under
# the tag `pykadroot` (see test_vm.py); mounted here with cache=loose the guest page cache
# keeps what was read once, and the tests run chrooted into that mount.
# Usage: guest.sh REPO [pytest args...]
set -eu
repo=$1
shift
root=/run/pykad-root
mkdir -p "$root"
mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=512000 pykadroot "$root"
mount --bind /proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount --bind /run "$root/run"   # writable tmpfs: /run/netns for `ip netns`
mount --bind /tmp "$root/tmp"   # writable overlay: the tests' work directories
exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    PYKAD_IN_VM=1 PYTHONDONTWRITEBYTECODE=1 \
    /bin/sh -c 'cd "$0" && exec .venv/bin/python -m pytest -p no:cacheprovider "$@"' \
    "$repo" "$@"
