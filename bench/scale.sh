#!/usr/bin/env bash
# The scale cases (issue: 1,000-step Dockerfiles, wide builds, 100k-file
# contexts, big layers), strata beside docker 20.10's BuildKit, cold, one
# run each, wall time and peak memory of the client process (docker's
# daemon is not counted: read its numbers as a lower bound).
#   bench/scale.sh [CASE...]     cases: deep wide many-files huge (default: the first three)
# Needs /usr/bin/docker (20.10, from ../shared/bench/peers/setup.sh) with a
# busybox image, and strata's busybox (scripts/busybox-rootfs.sh).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${BENCH_WORK:-/var/tmp/strata-bench}/scale
STRATA=${STRATA:-/tmp/strata-scale}
DOCKER=${DOCKER:-/usr/bin/docker}
cases=${*:-deep wide many-files}
mkdir -p "$WORK"
(cd "$HERE/.." && go build -o "$STRATA" ./cmd/strata)

gen() {
	local c=$1 d=$WORK/ctx/$1
	rm -rf "$d" && mkdir -p "$d"
	case $c in
	deep) # 1,000 RUN steps, each one small layer
		{ echo "FROM busybox"; for i in $(seq 1 1000); do echo "RUN echo $i > /f$i"; done; } >"$d/Dockerfile" ;;
	wide) # 64 independent stages, copied into one image
		{
			for i in $(seq 1 64); do echo "FROM busybox AS s$i"; echo "RUN echo $i > /out && sleep 0.2"; done
			echo "FROM busybox"
			for i in $(seq 1 64); do echo "COPY --from=s$i /out /s$i"; done
		} >"$d/Dockerfile" ;;
	many-files) # COPY of 100,000 small files
		python3 - "$d" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(100):
    os.makedirs(f"{root}/src/d{i}")
    for j in range(1000):
        with open(f"{root}/src/d{i}/f{j}.txt", "w") as f:
            f.write(f"{i}/{j}\n")
PY
		printf 'FROM busybox\nCOPY src/ /src/\n' >"$d/Dockerfile" ;;
	huge) # a 10 GB file, mostly a hole, in one layer
		printf 'FROM busybox\nRUN head -c 1073741824 /dev/urandom > /r && truncate -s 10G /s\n' >"$d/Dockerfile" ;;
	*) echo "unknown case $c" >&2; exit 2 ;;
	esac
}

# measure TOOL CASE: one cold build, "wall_s peak_kb"
measure() {
	local tool=$1 c=$2 d=$WORK/ctx/$2 out
	out=$WORK/$tool-$c.time
	case $tool in
	strata)
		rm -rf "$WORK/store"
		"$STRATA" --root "$WORK/store" import "$WORK/busybox.tar" busybox >/dev/null
		/usr/bin/time -f "%e %M" -o "$out" "$STRATA" --root "$WORK/store" build --network host --progress=quiet -t scale-$c "$d" >"$WORK/$tool-$c.log" 2>&1 || true ;;
	docker)
		"$DOCKER" builder prune -af >/dev/null 2>&1 || true
		DOCKER_BUILDKIT=1 /usr/bin/time -f "%e %M" -o "$out" "$DOCKER" build --network host -q -t scale-$c "$d" >"$WORK/$tool-$c.log" 2>&1 || true ;;
	esac
	# A failed build is "fail" (its log says why).
	if grep -q "exited with non-zero" "$out"; then echo "fail 0"; else tail -1 "$out"; fi
}

[ -f "$WORK/busybox.tar" ] || "$HERE/../scripts/busybox-rootfs.sh" "$WORK/busybox.tar"
printf '%-11s %10s %10s %12s %12s %7s\n' case strata_s docker_s strata_MiB docker_MiB ratio
for c in $cases; do
	gen "$c"
	read -r sw sm < <(measure strata "$c")
	read -r dw dm < <(measure docker "$c")
	ratio=$(python3 -c "import sys; a,b=sys.argv[1:]; print('-' if 'fail' in (a,b) else '%.2f' % (float(a)/float(b)))" "$sw" "$dw")
	printf '%-11s %10s %10s %12d %12d %7s\n' "$c" "$sw" "$dw" $((sm / 1024)) $((dm / 1024)) "$ratio"
done
