#!/bin/sh
# Writes a busybox root filesystem tarball from Debian's busybox-static, for
# `strata import busybox.tar busybox`. Deterministic: same busybox, same bytes.
set -eu
out=${1:?usage: busybox-rootfs.sh OUT.tar}
bb=/bin/busybox
[ -x "$bb" ] || { echo "busybox-rootfs.sh: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/etc" "$dir/dev" "$dir/proc" "$dir/sys" "$dir/root" "$dir/home/app" "$dir/usr/bin" "$dir/var" "$dir/tmp"
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
for a in $("$bb" --list); do
	[ "$a" = busybox ] || ln -s busybox "$dir/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nextra:x:1001:app\nnogroup:x:65534:\n' >"$dir/etc/group"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=pax \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	-C "$dir" -cf "$out" .
