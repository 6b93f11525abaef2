package flows

// Per-call scratch memory.
//
// Closures hold no mutable state, so a buffer that a call needs only while
// it runs (a hidden layer of a net's Apply, the masked weights of a MADE's
// dense pass, the gradient flowing down a pullback) comes from a pool of
// buffers shared by every call, safe for concurrent use: the call takes it
// and gives it back before it returns, and no other call can see it in
// between. What outlives the call is never pooled: its results, and the
// tape a pullback keeps (a pullback may run later, after other calls, any
// number of times).
//
// The pools are size-classed sync.Pools: class c holds buffers of exactly
// 2^c float64s, and a request for n takes the smallest class that holds n.
// A buffer from the pool holds whatever its last user left there, so every
// element is written before it is read: a buffer that is added into (a
// product with beta = 1) is cleared first. The package's tests set
// poisonScratch, which fills every buffer taken with NaN, so that a read
// before a write shows in every result (and in the pins).

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
)

// scratch is a pooled buffer; f holds the n float64s asked for.
type scratch struct {
	f []float64
}

// scratchPools[c] holds *scratch whose f has capacity 1<<c.
var scratchPools [48]sync.Pool

// poisonScratch makes getScratch fill its buffers with NaN (set by tests).
var poisonScratch bool

// getScratch returns a buffer of n ≥ 0 float64s from the pool, with
// arbitrary contents. Give it back with put once nothing reads it.
func getScratch(n int) *scratch {
	c := bits.Len(uint(max(n, 1) - 1)) // 1<<c ≥ n
	s, _ := scratchPools[c].Get().(*scratch)
	if s == nil {
		s = &scratch{f: make([]float64, 1<<c)}
	}
	s.f = s.f[:n]
	if poisonScratch {
		for i := range s.f {
			s.f[i] = math.NaN()
		}
	}
	return s
}

// getZeroed is getScratch with the buffer cleared.
func getZeroed(n int) *scratch {
	s := getScratch(n)
	clear(s.f)
	return s
}

// put gives s back to the pool; s must not be used afterwards. A nil s is
// ignored.
func (s *scratch) put() {
	if s == nil {
		return
	}
	c := bits.Len(uint(cap(s.f) - 1))
	s.f = s.f[:0]
	scratchPools[c].Put(s)
}

// tape is the pooled part of what a pullback keeps from its forward pass
// (a net's hidden layers). The pullback's first call takes it and gives
// its buffers back to the pool as it returns; a later call finds it taken
// and reruns the forward pass, on what the pass kept or may read, for a
// tape of its own, with the same bits. So a training step, which runs each
// pullback once, leaves the tape's memory to the next step, while a
// pullback may still run any number of times, from any goroutine.
type tape struct {
	taken atomic.Bool
	bufs  []*scratch // written by the forward pass only, before the pullback exists
}

// get returns a pooled buffer of n float64s (arbitrary contents) that
// release gives back.
func (t *tape) get(n int) []float64 {
	b := getScratch(n)
	t.bufs = append(t.bufs, b)
	return b.f
}

// take reports whether the caller is the first to take the tape; only
// that caller may read its buffers, and it must release them.
func (t *tape) take() bool { return t.taken.CompareAndSwap(false, true) }

// release gives the tape's buffers back to the pool.
func (t *tape) release() {
	for _, b := range t.bufs {
		b.put()
	}
	t.bufs = nil
}
