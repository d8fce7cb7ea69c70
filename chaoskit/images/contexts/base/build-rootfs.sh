#!/bin/sh
# Build the Debian root filesystem of chaoskit's node image and write it as a tar archive.
#
#   build-rootfs.sh SUITE WORKDIR OUTPUT_TAR [MIRROR]
#
# Runs on the host as root (debootstrap needs chroot and mknod). SUITE is a Debian suite
# (bookworm); WORKDIR is scratch space (its rootfs/ is wiped first); OUTPUT_TAR is written
# atomically. MIRROR is optional: without it debootstrap uses its built-in default, which
# is what the host's apt uses on a stock Debian. The package list is packages.txt next to
# this script. Import the result with `docker import OUTPUT_TAR <name>`.
set -eu

if [ "$#" -lt 3 ]; then
    echo "usage: $0 SUITE WORKDIR OUTPUT_TAR [MIRROR]" >&2
    exit 2
fi
suite=$1
workdir=$2
output=$3
mirror=${4:-}
here=$(cd "$(dirname "$0")" && pwd)

# PACKAGES_FILE picks another list (packages-minimal.txt: the small base of other images).
packages=${PACKAGES_FILE:-$here/packages.txt}
include=$(grep -v '^[[:space:]]*#' "$packages" | grep -v '^[[:space:]]*$' | paste -sd, -)
rootfs="$workdir/rootfs"
rm -rf "$rootfs"
mkdir -p "$workdir"

# shellcheck disable=SC2086 # $mirror is empty or one word
debootstrap --variant=minbase ${include:+--include="$include"} "$suite" "$rootfs" $mirror

# Later apt installs in images built on this one skip documentation too.
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-exclude /usr/share/man/*' \
    'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/chaoskit-nodoc"

# Make it an image, not an installed machine: no per-host identity, no caches.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/tmp/* "$rootfs"/root/.bash_history
: >"$rootfs/etc/machine-id"
: >"$rootfs/etc/resolv.conf"
rm -f "$rootfs/etc/hostname" "$rootfs/var/lib/dbus/machine-id"

tar -C "$rootfs" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -cf "$output.tmp" .
mv -f "$output.tmp" "$output"
rm -rf "$rootfs"
