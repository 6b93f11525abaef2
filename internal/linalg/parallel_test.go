package linalg

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestParallel checks that Parallel runs every task exactly once, for any
// number of workers, also when the tasks run products themselves.
func TestParallel(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer SetWorkers(SetWorkers(0))
	a := make([]float64, 96*96)
	for i := range a {
		a[i] = float64(i%7) - 3
	}
	want := make([]float64, 96*96)
	GemmSerial(false, false, 96, 96, 96, 1, a, a, 0, want)
	for _, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		for _, tasks := range []int{0, 1, 2, 3, 17, 100} {
			counts := make([]atomic.Int32, tasks)
			prods := make([][]float64, tasks)
			Parallel(tasks, func(i int) {
				counts[i].Add(1)
				if i%5 == 0 {
					prods[i] = make([]float64, 96*96)
					Gemm(false, false, 96, 96, 96, 1, a, a, 0, prods[i])
				}
			})
			for i := range counts {
				if c := counts[i].Load(); c != 1 {
					t.Fatalf("GOMAXPROCS=%d, %d tasks: task %d ran %d times", procs, tasks, i, c)
				}
				if prods[i] != nil {
					for k, v := range prods[i] {
						if v != want[k] {
							t.Fatalf("GOMAXPROCS=%d: a product inside task %d differs at %d", procs, i, k)
						}
					}
				}
			}
		}
	}
}

// TestParallelPanic: a task's panic reaches Parallel's caller, whichever
// goroutine it happened on, and the pool still works afterwards.
func TestParallelPanic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		func() {
			defer func() {
				if r := recover(); r != "flows: task 3" {
					t.Errorf("GOMAXPROCS=%d: recovered %v, want the task's panic", procs, r)
				}
			}()
			Parallel(8, func(i int) {
				if i == 3 {
					panic("flows: task 3")
				}
			})
		}()
		var ran atomic.Int32
		Parallel(8, func(int) { ran.Add(1) })
		if n := ran.Load(); n != 8 {
			t.Errorf("GOMAXPROCS=%d: after a panic, %d of 8 tasks ran", procs, n)
		}
	}
}

// TestParallelNestedOffer: a nested call puts the outer call back on offer
// when it closes, so a helper that wakes after the inner call has ended
// still runs the outer call's tasks. Task 0 (the caller's, unless a helper
// took it) runs an inner Parallel call and then waits for task 1 to start
// elsewhere; with the helpers parked beforehand, the inner call has
// usually come and gone before a helper wakes, and before the offer was
// put back, task 1 then never started (the caller was busy waiting).
func TestParallelNestedOffer(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	defer SetWorkers(SetWorkers(0))
	for round := range 5 {
		time.Sleep(2 * helperSpin) // let the helpers park
		var started [2]atomic.Bool
		var stuck atomic.Bool
		Parallel(2, func(i int) {
			if i == 0 {
				Parallel(4, func(int) {}) // replaces the outer job on offer, then closes
				deadline := time.Now().Add(10 * time.Second)
				for !started[1].Load() {
					if time.Now().After(deadline) {
						stuck.Store(true)
						return
					}
					runtime.Gosched()
				}
			}
			started[i].Store(true)
		})
		if stuck.Load() {
			t.Fatalf("round %d: task 1 did not start within 10 s while task 0 waited: the outer call was not back on offer", round)
		}
	}
}
