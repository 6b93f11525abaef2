#!/usr/bin/env bash
# bench-interleave.sh: runs the same benchmarks of two commits of the root
# package alternately (old, new, old, new, …), so that a machine's drift
# lands on both sides, and compares them with benchstat.
#
#	bash scripts/bench-interleave.sh OLD_COMMIT 'BENCH_REGEXP' [rounds] [benchtime]
#
# e.g. bash scripts/bench-interleave.sh main 'MAFStep/dim=8/hidden=512/batch=1024' 6 10x
# (a sub-benchmark pattern is split at each /, so run one size per call).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
old=$1 pattern=$2 rounds=${3:-6} benchtime=${4:-10x}
dir=$(mktemp -d)
mkdir -p "$dir/old"
git -C "$root" archive "$old" | tar -x -C "$dir/old"
# The old tree gets this tree's benchmark helpers (the same metrics on both sides).
cp "$root"/bench_test.go "$dir/old/"
(cd "$dir/old" && go test -c -o "$dir/old.test" .)
(cd "$root" && go test -c -o "$dir/new.test" .)
for _ in $(seq "$rounds"); do
	for v in old new; do
		"$dir/$v.test" -test.run XXX -test.bench "$pattern" -test.benchtime "$benchtime" -test.benchmem >> "$dir/$v.txt"
	done
done
benchstat "$dir/old.txt" "$dir/new.txt"
echo "raw results in $dir"
