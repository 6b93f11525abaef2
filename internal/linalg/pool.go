package linalg

// The helper pool: the goroutines, besides the caller, that work on a
// parallel Gemm call (run, in gemm.go).
//
// Helpers are long-lived goroutines that join the job on offer, so a call
// neither starts goroutines nor allocates. Waking a parked goroutine costs
// tens of microseconds, as much as a whole MLP-sized product, so a helper
// that has finished a job spins (yielding to other goroutines) for
// helperSpin before it parks, and consecutive calls find it awake.
//
// A parallel call opens its job to workers−1 helpers (job.state), offers
// it (offer), works on it itself, then closes it (close), which waits for
// the helpers still working. A helper joins a job at most once per call
// (job.gen) and leaves it when no work is left (leave); the last to leave
// a closed job signals job.done. Which goroutine ran which task never
// changes the result (see gemm.go's Determinism).

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// helperSpin is how long a helper that has finished a job spins before it
// parks.
const helperSpin = 200 * time.Microsecond

// The fields of job.state: the closed bit, the count of helpers working
// (bits 0–31) and how many may join (bits 32–61).
const (
	closedBit  = 1 << 62
	countMask  = 1<<32 - 1
	limitShift = 32
)

var (
	// offered is the job helpers may join: the latest parallel call's.
	offered atomic.Pointer[job]
	// wake wakes parked helpers; sends never block.
	wake        = make(chan struct{})
	helpersMu   sync.Mutex
	helperCount int
	helperMax   atomic.Int64 // helperCount, read without the lock
	// helperJoins counts jobs joined by helpers (for tests).
	helperJoins atomic.Int64
)

// offer makes j the job on offer and wakes up to n parked helpers,
// starting helpers if fewer than n exist.
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
	offered.Store(j)
	for range n {
		select {
		case wake <- struct{}{}:
		default: // none parked: the others are spinning or busy
		}
	}
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

// close stops helpers joining j and waits for those working on it: it
// spins for a while (the helpers are usually finishing their last task),
// then blocks, so a helper descheduled by an oversubscribed OS does not
// cost a spinning core.
func (j *job) close() {
	offered.CompareAndSwap(j, nil)
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
	for i := 0; i < 100 && j.state.Load()&countMask != 0; i++ {
		runtime.Gosched()
	}
	<-j.done // the last helper out signals, whether or not we saw it leave
}

// leave ends a helper's work on j.
func (j *job) leave() {
	if s := j.state.Add(-1); s&countMask == 0 && s&closedBit != 0 {
		j.done <- struct{}{} // buffered: the closer is or will be waiting
	}
}

func helper() {
	idle := time.Now()
	var last *job
	var lastGen uint64
	for {
		// A job is worth joining once per call (per generation): a
		// helper that found no work left does not join it again.
		if j := offered.Load(); j != nil && (j != last || j.gen.Load() != lastGen) && j.join() {
			helperJoins.Add(1)
			last, lastGen = j, j.gen.Load()
			j.work()
			j.leave()
			idle = time.Now()
			continue
		}
		if time.Since(idle) > helperSpin {
			<-wake
			idle = time.Now()
			continue
		}
		runtime.Gosched()
	}
}
