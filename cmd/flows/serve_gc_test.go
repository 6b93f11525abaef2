package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// TestFloorPercent: the GOGC that floorPercent picks gives the runtime's
// goal (the larger of live + (live+roots)·GOGC/100 and 4 MiB·GOGC/100) of
// the floor, or more, and not much more; never less than base; base once
// the live heap is past the floor.
func TestFloorPercent(t *testing.T) {
	const mib = 1 << 20
	goal := func(p int, live, roots uint64) uint64 {
		return max(live+(live+roots)*uint64(p)/100, defaultHeapMinimum*uint64(p)/100)
	}
	for _, c := range []struct {
		floor       uint64
		base        int
		live, roots uint64
	}{
		{64 * mib, 100, 0, 0}, {64 * mib, 100, 2 * mib, 100 << 10}, {64 * mib, 100, 20 * mib, mib},
		{64 * mib, 100, 40 * mib, mib}, {64 * mib, 100, 64 * mib, 0}, {64 * mib, 100, 500 * mib, mib},
		{64 * mib, 400, 2 * mib, 0}, {8 * mib, 50, 3 * mib, 0}, {mib, 100, 3 * mib, 0},
	} {
		p := floorPercent(c.floor, c.base, c.live, c.roots)
		g := goal(p, c.live, c.roots)
		switch {
		case p < c.base:
			t.Errorf("%+v: GOGC %d, below base", c, p)
		case c.live < c.floor && g < c.floor:
			t.Errorf("%+v: GOGC %d, goal %d below the floor", c, p, g)
		case p > c.base && g > c.floor+c.floor/50+mib:
			t.Errorf("%+v: GOGC %d, goal %d well above the floor", c, p, g)
		case c.live >= c.floor && p != c.base:
			t.Errorf("%+v: GOGC %d past the floor, want base", c, p)
		}
	}
}

// TestGCFloor: with a floor of 64 MiB, allocating 24 MiB of short-lived
// garbage runs at most one collection (GOGC=100 alone runs several: the
// live heap here is a few MB); stop restores GOGC.
func TestGCFloor(t *testing.T) {
	base := debug.SetGCPercent(100)
	defer debug.SetGCPercent(base)
	churn := func() uint32 {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		var keep []byte
		for range 24 << 10 {
			keep = make([]byte, 1<<10)
		}
		_ = keep
		runtime.ReadMemStats(&m1)
		return m1.NumGC - m0.NumGC
	}
	// The runtime's own pace at GOGC=100, for the comparison.
	if n := churn(); n < 3 {
		t.Skipf("%d collections without a floor: the live heap is too large here to tell", n)
	}
	stop := startGCFloor(64 << 20)
	n := churn()
	stop()
	if n > 1 {
		t.Errorf("%d collections for 24 MiB of garbage with a 64 MiB floor, want at most 1", n)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GOGC %d after stop, want 100 restored", p)
	}
	if stop := startGCFloor(0); debug.SetGCPercent(100) != 100 {
		t.Error("a floor of 0 changed GOGC")
		stop()
	}
}
