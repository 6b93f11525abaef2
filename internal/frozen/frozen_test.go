package frozen

import (
	"sync"
	"testing"
)

// TestOf: a frozen vector is found for itself and its sub-slices, not for
// a slice reaching past it, a copy, or after Release; two Steps on the
// same vector are independent.
func TestOf(t *testing.T) {
	all := make([]float64, 10)
	p := all[2:8]
	if Of(p) != nil {
		t.Fatal("a Step before Freeze")
	}
	s := Freeze(p)
	for _, c := range []struct {
		name string
		q    []float64
		want *Step
	}{
		{"itself", p, s}, {"a sub-slice", p[1:4], s}, {"its last element", p[5:], s},
		{"past its end", all[2:9], nil}, {"before it", all[1:3], nil}, {"a copy", append([]float64(nil), p...), nil},
		{"empty", p[:0], nil},
	} {
		if got := Of(c.q); got != c.want {
			t.Errorf("%s: Of = %p, want %p", c.name, got, c.want)
		}
	}
	s2 := Freeze(p)
	s.Release()
	if Of(p) != s2 || !s.Released() || s2.Released() {
		t.Errorf("after the first Release: Of = %p, want the second Step %p", Of(p), s2)
	}
	s2.Release()
	s2.Release()
	if Of(p) != nil {
		t.Error("a Step after Release")
	}
	if e := Freeze(nil); !e.Released() || Of(nil) != nil {
		t.Error("an empty vector frozen")
	}
}

// TestCacheGet: concurrent Gets in one Step build the value once and all
// see it; without a Step Get reports false; the next Step gets the
// released Step's value to reuse, and a Step still running does not give
// its value away.
func TestCacheGet(t *testing.T) {
	p := make([]float64, 4)
	var c Cache[*int]
	builds := 0
	build := func(old *int) *int {
		builds++
		if old != nil {
			*old++
			return old
		}
		v := 1
		return &v
	}
	if _, ok := c.Get(p, build); ok || builds != 0 {
		t.Fatal("a value without a Step")
	}
	s := Freeze(p)
	var wg sync.WaitGroup
	got := make([]*int, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = c.Get(p[1:], build)
		}()
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] || *v != 1 {
			t.Fatalf("values %v, want one value 1", got)
		}
	}
	if builds != 1 {
		t.Fatalf("%d builds in one Step, want 1", builds)
	}
	s.Release()
	s = Freeze(p)
	if v, _ := c.Get(p[1:], build); v != got[0] || *v != 2 {
		t.Errorf("the next Step did not reuse the released value: %p, %d", v, *v)
	}
	other := Freeze(p) // a concurrent Step on the same vector: Of finds s first
	q := make([]float64, 4)
	sq := Freeze(q)
	vq, _ := c.Get(q, build) // replaces s's value, which is still in use
	if vq == got[0] {
		t.Error("a running Step's value was reused")
	}
	for _, st := range []*Step{s, other, sq} {
		st.Release()
	}
}
