#!/usr/bin/env bash
# Runs strata next to docker (BuildKit) on the cells the cache and solver
# are judged by, in one sitting, and prints the table and the ratios of
# medians (strata / docker).
#   bench/compare.sh [RUNS]        (default 5)
# Needs ../shared/bench set up (peers/setup.sh, peers/baseimages.sh) and
# builds strata into $STRATA (default /tmp/strata-compare, a path of its own) from this checkout.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SHARED=${SHARED_BENCH:-$HERE/../../shared/bench}
runs=${1:-5}
export STRATA=${STRATA:-/tmp/strata-compare}
export BENCH_WORK=${BENCH_WORK:-/var/tmp/strata-bench}
export BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_WORK/results-compare}
mkdir -p "$BENCH_RESULTS"
(cd "$HERE/.." && go build -o "$STRATA" ./cmd/strata)
cells="noop-rebuild:warm incremental:incr parallel-stages:cold many-run:cold"
for cell in $cells; do
	for tool in strata docker; do
		bash "$SHARED/run.sh" "$tool" "${cell%%:*}" "${cell##*:}" "$runs"
	done
done
python3 "$SHARED/lib/report.py" "$BENCH_RESULTS" || true
python3 "$HERE/ratios.py" "$BENCH_RESULTS" $cells
