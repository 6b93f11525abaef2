#!/usr/bin/env bash
# serve-load.sh: `flows serve` under load at two revisions, with the same
# load generator (TestServeLoad of this checkout, cmd/flows/serve_load_test.go)
# against each: 1-row requests at 1 and 16 clients and 1000-row requests at
# 16 clients, on loopback, server and generator on the same cores. It
# prints a before/after table and keeps each run's table and log in OUTDIR.
#
#	bash scripts/serve-load.sh BEFORE_REV AFTER_REV OUTDIR
#	bash scripts/serve-load.sh 08730bb HEAD /tmp/serve-load
#
# Each revision is exported with git archive into a temporary folder and
# its flows built there; that binary fits the model (a 5-layer MAF, hidden
# 64, 64, on 8 columns, as TestServeLoad does) and serves it. Environment:
# DURATION (each window, default 5s), REPEATS (runs per case, the median
# kept; default 3), CASES (rows x clients, default 1x1,1x16,1000x16), CPUS
# (a taskset list such as 0,1 to pin server and generator together;
# default unpinned), ORDER (before-after, the default, or after-before).
# Run it on an idle machine: under load the figures measure the load.
set -euo pipefail
if [ $# -ne 3 ]; then
	echo "usage: $0 BEFORE_REV AFTER_REV OUTDIR" >&2
	exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$3"
out=$(cd "$3" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

declare -A rev
rev[before]=$(git -C "$root" rev-parse --verify "$1^{commit}")
rev[after]=$(git -C "$root" rev-parse --verify "$2^{commit}")
for side in before after; do
	mkdir -p "$tmp/$side"
	git -C "$root" archive "${rev[$side]}" | tar -x -C "$tmp/$side"
	(cd "$tmp/$side" && go build -o "$out/flows-$side" ./cmd/flows)
done

pin=()
if [ -n "${CPUS:-}" ]; then
	pin=(taskset -c "$CPUS")
fi
order=(before after)
if [ "${ORDER:-before-after}" = after-before ]; then
	order=(after before)
fi
# The generator's test binary, built once from this checkout.
(cd "$root" && go test -c -o "$tmp/load.test" ./cmd/flows)
for side in "${order[@]}"; do
	echo "serve-load: $side (${rev[$side]:0:12}) ..." >&2
	(cd "$root/cmd/flows" && FLOWS_SERVE_LOAD=1 FLOWS_SERVE_LOAD_BIN="$out/flows-$side" \
		FLOWS_SERVE_LOAD_CASES="${CASES:-1x1,1x16,1000x16}" FLOWS_SERVE_LOAD_DURATION="${DURATION:-5s}" \
		FLOWS_SERVE_LOAD_REPEATS="${REPEATS:-3}" FLOWS_SERVE_LOAD_OUT="$out/$side.md" \
		"${pin[@]}" "$tmp/load.test" -test.run 'TestServeLoad$' -test.v -test.count 1 -test.timeout 60m) >"$out/$side.log" 2>&1 || {
		echo "serve-load: the $side run failed; see $out/$side.log" >&2
		tail -20 "$out/$side.log" >&2
		exit 1
	}
done

# The table: one line per case, the two runs side by side. The runs'
# tables have the columns rows, clients, requests/s, rows/s, p50, p99,
# max, failed, server CPU/request, server cores, RSS.
{
	echo "before: ${rev[before]}  after: ${rev[after]}"
	echo "machine: $(nproc) CPUs, $(go env GOVERSION), $(uname -m); ${CPUS:+pinned to CPUs $CPUS; }windows ${DURATION:-5s}, median of ${REPEATS:-3}"
	grep -h '^machine:' "$out/before.md" | sed 's/^/before run: /'
	grep -h '^machine:' "$out/after.md" | sed 's/^/after run:  /'
	echo
	echo "| rows/request | clients | requests/s before | requests/s after | after/before | p99 before | p99 after | server CPU/request before | after | failed before/after |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk -F'|' '
		function trim(s) { gsub(/^ +| +$/, "", s); return s }
		FNR == 1 { side++ }
		$2 ~ /^ *[0-9]+ *$/ {
			k = trim($2) "|" trim($3)
			if (!(k in seen)) { seen[k] = 1; keys[++n] = k }
			rate[side, k] = trim($4); p99[side, k] = trim($7); fail[side, k] = trim($9); cpu[side, k] = trim($10)
		}
		END {
			for (i = 1; i <= n; i++) {
				k = keys[i]; split(k, rc, "|")
				ratio = (rate[1, k] > 0) ? sprintf("%.2f×", rate[2, k] / rate[1, k]) : "—"
				printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s |\n", rc[1], rc[2], rate[1, k], rate[2, k], ratio,
					p99[1, k], p99[2, k], cpu[1, k], cpu[2, k], fail[1, k], fail[2, k]
			}
		}' "$out/before.md" "$out/after.md"
} | tee "$out/table.md"
