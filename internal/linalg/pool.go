package linalg

// The helper pool: the goroutines, besides the caller, that work on a
// parallel Gemm call (run, in gemm.go) or a Parallel call.
//
// Helpers are long-lived goroutines that join the job on offer, so a call
// neither starts goroutines nor allocates. Waking a parked goroutine costs
// tens of microseconds, as much as a whole MLP-sized product, so a helper
// that has finished a job watches for the next one for helperSpin before it
// parks, and consecutive calls find it awake. It watches by loading one
// atomic pointer in a loop, yielding to other goroutines only every
// spinYield: a runtime.Gosched per turn of the loop (as before 2026-12-07)
// takes the scheduler's lock each time, and in a training step's profile
// the helpers' yields and clock reads cost a sixth of the process's CPU
// time (BENCHMARKS.md, "Step overhead at H = 128").
//
// A parallel call opens its job to workers−1 helpers (job.state), offers
// it (offer), works on it itself, then closes it (close), which waits for
// the helpers still working. A helper joins a job at most once per call
// (job.gen) and leaves it when no work is left (leave); the last to leave
// a closed job signals job.done. Which goroutine ran which task never
// changes the result (see gemm.go's Determinism).
//
// Nested calls: a task of a Parallel call may run products, which offer
// jobs of their own. The offer that a job replaced is kept (job.prev) and
// put back on offer when the job closes, so a helper that finishes an
// inner product, or wakes late, still finds the outer call's remaining
// tasks (before, the outer job was on offer only until its first inner
// product, and its tasks then ran on whoever was already working on it).

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// helperSpin is how long a helper that has finished a job watches for the
// next one before it parks.
const helperSpin = 200 * time.Microsecond

// spinYield is how often a watching helper yields to other goroutines.
const spinYield = 20 * time.Microsecond

// closeSpin is how long close watches for the helpers to leave before it
// blocks.
const closeSpin = 50 * time.Microsecond

// The fields of job.state: the closed bit, the count of helpers working
// (bits 0–31) and how many may join (bits 32–61).
const (
	closedBit  = 1 << 62
	countMask  = 1<<32 - 1
	limitShift = 32
)

var (
	// offered is the job helpers may join: the latest parallel call's, or,
	// once that has closed, the one it replaced (job.prev).
	offered atomic.Pointer[job]
	// wake wakes parked helpers; sends never block.
	wake        = make(chan struct{})
	helpersMu   sync.Mutex
	helperCount int
	helperMax   atomic.Int64 // helperCount, read without the lock
	// helperJoins counts jobs joined by helpers (for tests).
	helperJoins atomic.Int64
)

// offer makes j the job on offer, keeping the job it replaces in j.prev,
// and wakes up to n parked helpers, starting helpers if fewer than n
// exist.
func offer(j *job, n int) {
	if int(helperMax.Load()) < n {
		helpersMu.Lock()
		for helperCount < n {
			helperCount++
			go helper()
		}
		helperMax.Store(int64(helperCount))
		helpersMu.Unlock()
	}
	if prev := offered.Swap(j); prev != j {
		j.prev = prev
	}
	wakeHelpers(n)
}

// wakeHelpers wakes up to n parked helpers.
func wakeHelpers(n int) {
	for range n {
		select {
		case wake <- struct{}{}:
		default: // none parked: the others are watching or busy
			return
		}
	}
}

// open reports whether helpers may join j now.
func (j *job) open() bool {
	s := j.state.Load()
	return s&closedBit == 0 && s&countMask < (s&^closedBit)>>limitShift
}

// join admits the calling helper to j unless j is closed or full. j may
// have been reused for a later call since the helper loaded it: then the
// helper joins that call, which is just as good.
func (j *job) join() bool {
	for {
		s := j.state.Load()
		if s&closedBit != 0 || s&countMask >= (s&^closedBit)>>limitShift {
			return false
		}
		if j.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// close stops helpers joining j, puts the job j replaced back on offer
// (waking a parked helper for it when it is still open), and waits for
// the helpers working on j: it watches for a while (they are usually
// finishing their last task), then blocks, so a helper descheduled by an
// oversubscribed OS does not cost a spinning core.
func (j *job) close() {
	prev := j.prev
	j.prev = nil
	if offered.CompareAndSwap(j, prev) && prev != nil && prev.open() {
		wakeHelpers(1)
	}
	var s int64
	for {
		s = j.state.Load()
		if j.state.CompareAndSwap(s, s|closedBit) {
			break
		}
	}
	if s&countMask == 0 {
		return // no helper is working on j, and none can join now
	}
	var t0 time.Time
	for i := 0; j.state.Load()&countMask != 0; i++ {
		if i%64 == 0 {
			if i == 0 {
				t0 = time.Now()
			} else if time.Since(t0) > closeSpin {
				break
			}
		}
	}
	<-j.done // the last helper out signals, whether or not we saw it leave
}

// leave ends a helper's work on j.
func (j *job) leave() {
	if s := j.state.Add(-1); s&countMask == 0 && s&closedBit != 0 {
		j.done <- struct{}{} // buffered: the closer is or will be waiting
	}
}

// worth reports whether j is a job the helper should try to join: one on
// offer that is not the call it last joined (last at generation lastGen).
func worth(j, last *job, lastGen uint64) bool {
	return j != nil && (j != last || j.gen.Load() != lastGen)
}

// watch loads the offer until one is worth joining (it reports true) or
// helperSpin has passed (false), reading the clock every 64 turns and
// yielding every spinYield.
func watch(last *job, lastGen uint64) bool {
	t0 := time.Now()
	yielded := time.Duration(0)
	for i := 1; ; i++ {
		if worth(offered.Load(), last, lastGen) {
			return true
		}
		if i%64 == 0 {
			d := time.Since(t0)
			if d > helperSpin {
				return false
			}
			if d-yielded > spinYield {
				runtime.Gosched()
				yielded = d
			}
		}
	}
}

func helper() {
	var last *job
	var lastGen uint64
	for {
		// A job is worth joining once per call (per generation): a
		// helper that found no work left does not join it again.
		if j := offered.Load(); worth(j, last, lastGen) {
			gen := j.gen.Load()
			last, lastGen = j, gen
			if j.join() {
				helperJoins.Add(1)
				j.work()
				j.leave()
			}
			continue
		}
		if !watch(last, lastGen) {
			<-wake
		}
	}
}
