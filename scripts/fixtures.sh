#!/usr/bin/env bash
# Builds the test fixtures: a busybox root filesystem tarball made from
# Debian's busybox-static (no registry or Docker needed).
# Usage: scripts/fixtures.sh OUTDIR   → OUTDIR/busybox-rootfs.tar
set -euo pipefail
out="${1:?usage: fixtures.sh OUTDIR}"
mkdir -p "$out"
if [ ! -x /bin/busybox ] || ! /bin/busybox --list >/dev/null 2>&1; then
    apt-get install -y busybox-static >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y busybox-static >/dev/null; }
fi
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
rootfs="$staging/rootfs"
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var,proc,sys,dev,run}
chmod 755 "$rootfs"
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
# Every applet becomes a link to busybox, except "busybox" itself, which
# the applet list contains too and which must stay the real binary.
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] && continue
    ln -sf busybox "$rootfs/bin/$applet"
done
cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
audio:x:29:app
video:x:44:app
nogroup:x:65534:
app:x:1000:
GROUP
mkdir -p "$rootfs/home/app" && chown 1000:1000 "$rootfs/home/app"
tar --numeric-owner -C "$rootfs" -cf "$out/busybox-rootfs.tar" .
echo "$out/busybox-rootfs.tar"
