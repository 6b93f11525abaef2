#!/usr/bin/env bash
# beam-throughput.sh: rows/s of `flows-beam score` on Prism against
# `flows score`, on 1,000,000 rows of 8 columns in 16 CSV shards (and the
# same rows as one file), at GOMAXPROCS 1 and at all cores. Each timing is
# the best of two runs. BENCHMARKS.md has the figures.
#
#	bash scripts/beam-throughput.sh [workdir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$(mktemp -d)}
mkdir -p "$dir"
cd "$dir"

(cd "$root" && go build -o "$dir/flows" ./cmd/flows)
(cd "$root/beam" && go build -o "$dir/flows-beam" ./cmd/flows-beam)

# Rows from awk's generator with a fixed seed: two normals u, v (Box-Muller)
# and columns built from them with some curvature and noise.
awk 'BEGIN {
	srand(1)
	print "a,b,c,d,e,f,g,h" > "all.csv"
	for (s = 0; s < 16; s++) {
		f = sprintf("data-%02d.csv", s)
		print "a,b,c,d,e,f,g,h" > f
		for (i = 0; i < 62500; i++) {
			u = sqrt(-2 * log(1 - rand())) * cos(6.283185307179586 * rand())
			v = sqrt(-2 * log(1 - rand())) * cos(6.283185307179586 * rand())
			w = sqrt(-2 * log(1 - rand())) * cos(6.283185307179586 * rand())
			line = sprintf("%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g", u, u*u - 1 + 0.3*v, sin(2*u) + 0.2*v, v, 0.5*u + w, 2*w - v, exp(0.3*v), u - v + 0.1*w)
			print line > f
			print line > "all.csv"
		}
		close(f)
	}
}'
head -20001 all.csv >train.csv
./flows fit train.csv -o m.flow --epochs 3 --quiet 2>/dev/null

# best prints the best wall time of two runs of a command, in seconds.
best() {
	local b=
	for _ in 1 2; do
		local t0 t1
		t0=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		t1=$(date +%s.%N)
		b=$(echo "$t0 $t1 $b" | awk '{ t = $2 - $1; if ($3 != "" && $3 < t) t = $3; printf "%.2f", t }')
	done
	echo "$b"
}

rows=1000000
for procs in 1 "$(nproc)"; do
	single=$(GOMAXPROCS=$procs best ./flows score m.flow all.csv -o single.csv)
	beam=$(GOMAXPROCS=$procs best ./flows-beam score m.flow 'data-*.csv' -o scores)
	echo "GOMAXPROCS=$procs: flows score $single s ($(awk -v r=$rows -v t="$single" 'BEGIN{printf "%.0f", r/t}') rows/s), flows-beam score on Prism $beam s ($(awk -v r=$rows -v t="$beam" 'BEGIN{printf "%.0f", r/t}') rows/s), ratio $(awk -v a="$single" -v b="$beam" 'BEGIN{printf "%.2f", a/b}')"
done
