#!/bin/sh
# card-screenshot.sh [OUT.png]: checks the model card of flows serve in a
# real browser. It builds flows, fits a small model of three columns to
# data it generates (or serves $MODEL, with $DATA, when set), starts
# flows serve on a free loopback port, takes a screenshot of the card with
# headless Chromium, checks the server's log and its graceful stop, and
# writes the screenshot to OUT.png (default card.png). It exits 0 with a
# line saying so when no Chromium is installed (Debian: apt-get install
# chromium), so that CI can run it everywhere; $CHROMIUM names the browser.
#
#	sh cmd/flows/testdata/card-screenshot.sh /tmp/card.png
set -eu

out=$(realpath -m "${1:-card.png}")
cd "$(dirname "$0")/../../.."
browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
	for b in chromium chromium-browser google-chrome; do
		if command -v "$b" >/dev/null 2>&1; then
			browser=$b
			break
		fi
	done
fi
if [ -z "$browser" ]; then
	echo "card-screenshot: no Chromium installed; skipped (apt-get install chromium)"
	exit 0
fi

tmp=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

go build -o "$tmp/flows" ./cmd/flows

model=${MODEL:-}
data=${DATA:-}
if [ -z "$model" ]; then
	# 1000 rows of three dependent columns: a, a² + noise, and a bimodal c.
	awk 'BEGIN {
		srand(7); print "speed,energy,mode"
		for (i = 0; i < 1000; i++) {
			u1 = rand(); u2 = rand(); if (u1 < 1e-12) u1 = 1e-12
			z1 = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2)
			z2 = sqrt(-2 * log(u1)) * sin(6.283185307179586 * u2)
			c = (rand() < 0.4) ? 3 : 0
			printf "%.5f,%.5f,%.5f\n", z1, 0.5 * z1 * z1 + 0.3 * z2, c + 0.5 * z2
		}
	}' >"$tmp/data.csv"
	"$tmp/flows" fit "$tmp/data.csv" -o "$tmp/model.flow" --epochs 40 --layers 3 --hidden 32,32 --quiet
	model=$tmp/model.flow
	data=$tmp/data.csv
fi
set -- "$model" --addr 127.0.0.1:0 --log-format json --access-log
if [ -n "$data" ]; then
	set -- "$@" --data "$data"
fi
"$tmp/flows" serve "$@" 2>"$tmp/serve.log" &
pid=$!

addr=
for _ in $(seq 1 300); do
	addr=$(sed -n 's/.*"msg":"listening","addr":"\([^"]*\)".*/\1/p' "$tmp/serve.log" | head -n 1)
	[ -n "$addr" ] && break
	if ! kill -0 "$pid" 2>/dev/null; then
		cat "$tmp/serve.log" >&2
		echo "card-screenshot: flows serve exited" >&2
		exit 1
	fi
	sleep 0.1
done
if [ -z "$addr" ]; then
	cat "$tmp/serve.log" >&2
	echo "card-screenshot: flows serve did not start" >&2
	exit 1
fi

"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$tmp/profile" --hide-scrollbars --window-size=1280,2600 \
	--screenshot="$out" "http://$addr/" >"$tmp/chromium.log" 2>&1 || {
	cat "$tmp/chromium.log" >&2
	echo "card-screenshot: $browser failed" >&2
	exit 1
}
size=$(wc -c <"$out")
if [ "$size" -lt 20000 ]; then
	echo "card-screenshot: $out is only $size bytes" >&2
	exit 1
fi

# The browser fetched the card and its picture, and both were answered.
for path in / /corner.png; do
	if ! grep -q "\"msg\":\"request\",\"method\":\"GET\",\"path\":\"$path\",.*\"status\":200" "$tmp/serve.log"; then
		cat "$tmp/serve.log" >&2
		echo "card-screenshot: the browser did not get $path" >&2
		exit 1
	fi
done
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
if [ "$status" -ne 0 ] || ! grep -q '"msg":"stopped"' "$tmp/serve.log"; then
	cat "$tmp/serve.log" >&2
	echo "card-screenshot: flows serve did not stop cleanly on SIGTERM (status $status)" >&2
	exit 1
fi
echo "card-screenshot: wrote $out ($size bytes) from http://$addr/ with $browser"
