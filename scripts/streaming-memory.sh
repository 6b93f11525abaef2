#!/usr/bin/env bash
# Measures the resident memory of flows sample and flows score on a stream
# larger than memory would allow if they held it: sample writes ROWS rows
# (default 250 million, about 10 GB of CSV for two columns) into a pipe
# that score reads as its input, and GNU time reports each one's peak
# resident set size. Nothing is written to disk but a small model.
#
#	scripts/streaming-memory.sh [ROWS]
#
# Needs /usr/bin/time (Debian's time package).
set -euo pipefail
rows=${1:-250000000}
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/flows" "$repo/cmd/flows"
f="$dir/flows"

# A small model of a two-column table (two blocks of 32×32 conditioners:
# the memory of streaming does not depend on the model).
awk 'BEGIN { srand(1); print "x,y"; for (i = 0; i < 5000; i++) { a = rand() * 6 - 3; print a "," a * a + rand() } }' > "$dir/train.csv"
"$f" fit "$dir/train.csv" -o "$dir/m.flow" --epochs 3 --layers 2 --hidden 32,32 --quiet

echo "sampling $rows rows into score through a pipe"
start=$(date +%s)
/usr/bin/time -f "%M" -o "$dir/sample.rss" "$f" sample "$dir/m.flow" -n "$rows" \
	| tee >(wc -c > "$dir/bytes") \
	| /usr/bin/time -f "%M" -o "$dir/score.rss" "$f" score "$dir/m.flow" - > >(tail -n 1 > "$dir/last")
sleep 1 # let the process substitutions finish
end=$(date +%s)
echo "bytes of CSV streamed:  $(cat "$dir/bytes")"
echo "last row scored:        $(cat "$dir/last")"
echo "sample peak RSS:        $(( $(cat "$dir/sample.rss") / 1024 )) MiB"
echo "score peak RSS:         $(( $(cat "$dir/score.rss") / 1024 )) MiB"
echo "wall time:              $(( end - start )) s"
