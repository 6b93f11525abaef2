package main

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeGCTail measures how much of the server's latency tail meets a
// garbage collection, when FLOWS_SERVE_GCTAIL is set: raw clients (which
// allocate nothing, so every collection is the server's) send 1-row score
// requests for a while, each request's start and end kept; the runtime's
// record of its last 256 collections (the end of each one's final pause)
// gives windows of FLOWS_SERVE_GCTAIL_MARK (default 2ms: the mark phase
// that GODEBUG=gctrace=1 shows) before each; it logs the share of requests
// that overlap a window among all of them and among the slowest 10%, 1%
// and 0.1%, with --gc-min-heap 0 and its default.
//
//	FLOWS_SERVE_GCTAIL=1 go test ./cmd/flows -run TestServeGCTail -v
//
// FLOWS_SERVE_GCTAIL_CLIENTS (default 1,16) and _DURATION (default 4s)
// change what it measures.
func TestServeGCTail(t *testing.T) {
	if os.Getenv("FLOWS_SERVE_GCTAIL") == "" {
		t.Skip("set FLOWS_SERVE_GCTAIL=1 to measure the collections in the latency tail")
	}
	dur, mark := 4*time.Second, 2*time.Millisecond
	if v, err := time.ParseDuration(os.Getenv("FLOWS_SERVE_GCTAIL_DURATION")); err == nil {
		dur = v
	}
	if v, err := time.ParseDuration(os.Getenv("FLOWS_SERVE_GCTAIL_MARK")); err == nil {
		mark = v
	}
	clients := []int{1, 16}
	if v := os.Getenv("FLOWS_SERVE_GCTAIL_CLIENTS"); v != "" {
		clients = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				t.Fatalf("FLOWS_SERVE_GCTAIL_CLIENTS %q", v)
			}
			clients = append(clients, n)
		}
	}
	path, x := benchModel(t, t.TempDir())
	for _, floor := range []int64{0, 64 << 20} {
		for _, n := range clients {
			stop := startGCFloor(floor)
			all, gcs := gcTailRun(t, serveRaw(t, path, loadBody(x, 1), n), dur, mark)
			stop()
			logGCTail(t, floor, n, all, gcs, dur, mark)
		}
	}
}

// reqSpan is a stretch of time, in Unix nanoseconds.
type reqSpan struct{ from, to int64 }

// gcTailRun sends requests on conns for dur and returns their spans,
// slowest last, and the windows of mark before the end of each collection.
func gcTailRun(t *testing.T, conns []*rawClient, dur, mark time.Duration) (all, gcs []reqSpan) {
	runtime.GC()
	start := time.Now()
	spans := make([][]reqSpan, len(conns))
	done := make(chan error, len(conns))
	for i, c := range conns {
		go func() {
			for time.Since(start) < dur {
				t0 := time.Now().UnixNano()
				if err := c.do(); err != nil {
					done <- err
					return
				}
				spans[i] = append(spans[i], reqSpan{t0, time.Now().UnixNano()})
			}
			done <- nil
		}()
	}
	for range conns {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for i := range min(len(ms.PauseEnd), int(ms.NumGC)) {
		if e := int64(ms.PauseEnd[i]); e > start.UnixNano() {
			gcs = append(gcs, reqSpan{e - mark.Nanoseconds(), e})
		}
	}
	slices.SortFunc(gcs, func(a, b reqSpan) int { return int(a.from - b.from) })
	for _, s := range spans {
		all = append(all, s...)
	}
	slices.SortFunc(all, func(a, b reqSpan) int { return int((a.to - a.from) - (b.to - b.from)) })
	return all, gcs
}

// logGCTail logs the latencies of all and the share of them that overlap
// a collection's window in gcs.
func logGCTail(t *testing.T, floor int64, clients int, all, gcs []reqSpan, dur, mark time.Duration) {
	n := len(all)
	if n == 0 {
		t.Fatal("no requests")
	}
	overlaps := func(s reqSpan) bool {
		i, _ := slices.BinarySearchFunc(gcs, s.from, func(g reqSpan, at int64) int { return int(g.to - at) })
		return i < len(gcs) && gcs[i].from < s.to
	}
	share := func(ss []reqSpan) float64 {
		k := 0
		for _, s := range ss {
			if overlaps(s) {
				k++
			}
		}
		return 100 * float64(k) / float64(max(len(ss), 1))
	}
	q := func(p float64) time.Duration {
		s := all[min(n-1, int(p*float64(n)))]
		return time.Duration(s.to - s.from)
	}
	t.Logf("--gc-min-heap %v, %d clients: %d requests (%.0f/s); p50 %v, p99 %v, p99.9 %v; %d collections",
		&heapSize{byteSize(floor)}, clients, n, float64(n)/dur.Seconds(), q(.5), q(.99), q(.999), len(gcs))
	t.Logf("  requests within %v before a collection's end: all %.1f%%, slowest 10%% %.1f%%, slowest 1%% %.1f%%, slowest 0.1%% %.1f%%",
		mark, share(all), share(all[n*9/10:]), share(all[n*99/100:]), share(all[n*999/1000:]))
}
