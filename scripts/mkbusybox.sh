#!/bin/sh
# Builds a busybox root filesystem tarball from Debian's busybox-static.
# Usage: scripts/mkbusybox.sh OUT.tar
set -eu
out=${1:?usage: mkbusybox.sh OUT.tar}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "mkbusybox: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
case "$(file -L "$busybox" 2>/dev/null || echo static)" in
  *dynamically*) echo "mkbusybox: $busybox is dynamically linked; install busybox-static" >&2; exit 1 ;;
esac
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/home" "$root/proc" "$root/sys" "$root/dev" "$root/var/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
chmod 1777 "$root/tmp" "$root/var/tmp"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$out" .
