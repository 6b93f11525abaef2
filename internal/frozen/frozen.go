// Package frozen marks a parameter vector as fixed for a while (a training
// step), so that the nets reading it compute what depends on the
// parameters alone, such as their weights packed for the products, once,
// and every call in that while shares it.
//
// Which calls see which parameters: between Freeze(p) and the Step's
// Release, p must not change, and a net called on p, or on a sub-slice of
// it (a layer's own parameters), may use values it derived from p at its
// first call in that while (Cache.Get); outside that while, and for any
// vector not frozen (a copy of p included), it derives them afresh or
// computes as it would without this package. Values derived from frozen
// parameters must give the same bits as the nets' unfrozen path, so that
// freezing changes speed only. Release must come after the last call that
// may use the Step (optim.NLL releases its step after the pullbacks); a
// call on p after Release finds no Step and takes the unfrozen path.
//
// Lookups take no lock: the frozen vectors are an immutable list behind an
// atomic pointer, replaced under a mutex by Freeze and Release only.
package frozen

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// Step is one frozen parameter vector, from Freeze until Release.
type Step struct {
	lo, hi   uintptr // the vector's bytes, [lo, hi)
	released atomic.Bool
}

var (
	mu     sync.Mutex              // serialises Freeze and Release
	active atomic.Pointer[[]*Step] // the frozen vectors, an immutable list
)

// span returns the addresses of p's bytes, [lo, hi).
func span(p []float64) (lo, hi uintptr) {
	lo = uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return lo, lo + uintptr(len(p))*unsafe.Sizeof(p[0])
}

// Freeze marks p as fixed until the returned Step's Release (see the
// package's doc for what the caller promises). An empty p gives a Step
// that freezes nothing. The same vector may be frozen more than once at a
// time (by concurrent callers, each with its own Step).
func Freeze(p []float64) *Step {
	s := new(Step)
	if len(p) == 0 {
		s.released.Store(true)
		return s
	}
	s.lo, s.hi = span(p)
	mu.Lock()
	defer mu.Unlock()
	var list []*Step
	if old := active.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, s)
	active.Store(&list)
	return s
}

// Release ends the Step: later lookups of its vector find no Step (or
// another one frozen since). It may be called more than once.
func (s *Step) Release() {
	if s.released.Swap(true) {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	old := *active.Load()
	list := make([]*Step, 0, len(old)-1)
	for _, t := range old {
		if t != s {
			list = append(list, t)
		}
	}
	if len(list) == 0 {
		active.Store(nil)
		return
	}
	active.Store(&list)
}

// Released reports whether Release has been called.
func (s *Step) Released() bool { return s.released.Load() }

// Of returns the Step whose frozen vector holds all of p (p itself or a
// sub-slice of it), or nil when there is none or p is empty.
func Of(p []float64) *Step {
	list := active.Load()
	if list == nil || len(p) == 0 {
		return nil
	}
	lo, hi := span(p)
	for _, s := range *list {
		if lo >= s.lo && hi <= s.hi {
			return s
		}
	}
	return nil
}

// Cache holds the values one net derived from frozen parameters: those of
// the latest Step (and sub-slice) it was asked for. Its zero value is
// empty and ready; it is safe for concurrent use, and a Get that finds its
// value built takes no lock.
type Cache[T any] struct {
	slot atomic.Pointer[entry[T]]
}

// entry is a Cache's value for one Step and one sub-slice.
type entry[T any] struct {
	step  *Step
	base  uintptr // the sub-slice's first address and length
	n     int
	once  sync.Once
	ready atomic.Bool // v is built (Get's path without a call to once)
	v     T
}

// value returns e's value, building it from old first if no call has.
func (e *entry[T]) value(build func(old T) T, old T) T {
	if !e.ready.Load() {
		e.once.Do(func() {
			e.v = build(old)
			e.ready.Store(true)
		})
	}
	return e.v
}

// Get returns the value derived from p when p lies in a frozen vector
// (Of(p) is not nil), and ok true: build(old) computes it once for that
// Step and sub-slice, the concurrent callers waiting for it. old is the
// value of an earlier, released Step, whose storage build may reuse (no
// call can still be reading it), or the zero T. Without a Step, Get
// returns the zero T and false, and the caller computes as without this
// package. A Cache that several Steps use at once (one net in two
// concurrent training steps) keeps the latest: the others build again, so
// their values are correct but not shared.
func (c *Cache[T]) Get(p []float64, build func(old T) T) (v T, ok bool) {
	s := Of(p)
	if s == nil {
		return v, false
	}
	base, _ := span(p)
	for {
		e := c.slot.Load()
		if e != nil && e.step == s && e.base == base && e.n == len(p) {
			return e.value(build, v), true
		}
		ne := &entry[T]{step: s, base: base, n: len(p)}
		var old T
		if e != nil && e.step.Released() && e.ready.Load() {
			old = e.v
		}
		if c.slot.CompareAndSwap(e, ne) {
			return ne.value(build, old), true
		}
	}
}
