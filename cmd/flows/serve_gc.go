package main

// A floor under the garbage collector's heap goal (--gc-min-heap).
//
// A 1-row score request allocates about 3 KB (net/http's request and
// headers, the decoded row, the model's scratch, the answer), so a server
// at 25,000 requests a second allocates 75 MB a second; its live heap is
// about 2 MB, and with Go's default pacing (GOGC=100: collect when the
// heap has doubled, and not before 4 MiB) it collects once every 1,000
// requests, 25 times a second. Each collection stops the world twice and
// takes part of a core for its mark phase (about 2 ms on two cores), and
// the requests in flight wait: requests that met a collection are 5–20
// times more frequent among the slowest 1% than among all (BENCHMARKS.md,
// "flows serve tail latency, 2026-12-07 morning"). A floor of F bytes lets
// the heap reach F before a collection, so collections come about F / 3
// KB requests apart (20,000 at 64 MiB); a live heap of more than F/2 is
// paced by GOGC as before, so the heap is at most the larger of F and
// what GOGC alone allows.
//
// Go has no minimum heap setting, but GOGC sets one (4 MiB × GOGC/100):
// after each collection the floor sets GOGC to the least value at or
// above the starting one (the GOGC environment variable, 100 by default)
// whose goal reaches F, given the live heap that collection found.
// GOMEMLIMIT still caps the goal, as the runtime applies it; GOGC=off
// leaves the collector off, and --gc-min-heap 0 leaves it as GOGC says.

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// defaultHeapMinimum is the Go runtime's least heap goal at GOGC=100.
const defaultHeapMinimum = 4 << 20

// gcFloor keeps the heap goal at or above floor bytes.
type gcFloor struct {
	floor   uint64
	base    int // GOGC at the start
	mu      sync.Mutex
	percent int  // what it set last
	stopped bool // no more tuning; base restored
	samples []metrics.Sample
}

// gcSentinel is an object dropped at once, so that its cleanup runs
// after the next collection. It is larger than the tiny allocator's
// 16 bytes, whose blocks are freed only with their neighbours.
type gcSentinel struct {
	_ [4]uint64
}

// startGCFloor keeps the heap goal at or above floor bytes until the
// returned stop is called, which restores GOGC. With floor 0, or GOGC=off,
// it does nothing.
func startGCFloor(floor int64) (stop func()) {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if floor <= 0 || base < 0 {
		return func() {}
	}
	g := &gcFloor{floor: uint64(floor), base: base, percent: base,
		samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	g.tune()
	g.arm()
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.stopped = true
		debug.SetGCPercent(g.base)
	}
}

// arm has tune run after the next collection, and arm again.
func (g *gcFloor) arm() {
	runtime.AddCleanup(new(gcSentinel), func(g *gcFloor) {
		if g.tune() {
			g.arm()
		}
	}, g)
}

// tune sets GOGC for the live heap the last collection found; it reports
// false once stopped.
func (g *gcFloor) tune() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	metrics.Read(g.samples)
	var v [3]uint64
	for i, s := range g.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	if p := floorPercent(g.floor, g.base, v[0], v[1]+v[2]); p != g.percent {
		g.percent = p
		debug.SetGCPercent(p)
	}
	return true
}

// floorPercent is the GOGC, at least base, whose heap goal reaches floor
// for a live heap of live bytes and roots (stacks and globals) of roots
// bytes: the runtime's goal is the larger of live + (live+roots)·GOGC/100
// and defaultHeapMinimum·GOGC/100.
func floorPercent(floor uint64, base int, live, roots uint64) int {
	if live >= floor {
		return base
	}
	ceil := func(a, b uint64) uint64 { return (a + b - 1) / b }
	p := min(ceil(100*floor, defaultHeapMinimum), ceil(100*(floor-live), max(live+roots, 1)))
	return max(base, int(min(p, 1<<20)))
}
