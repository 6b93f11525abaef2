package flows

import (
	"flag"
	"math"
	"os"
	"testing"
)

// TestMain poisons the scratch pool (see scratch.go) for every test of the
// package, so that a pooled buffer read before it is written turns results
// into NaN; benchmarks run without the poison.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		poisonScratch = true
	}
	os.Exit(m.Run())
}

func TestScratch(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 1000, 1024, 1025} {
		s := getScratch(n)
		if len(s.f) != n {
			t.Fatalf("getScratch(%d) has length %d", n, len(s.f))
		}
		if c := cap(s.f); c&(c-1) != 0 || c < max(n, 1) || c >= 2*max(n, 1) {
			t.Errorf("getScratch(%d) has capacity %d, want the next power of two", n, c)
		}
		if poisonScratch && n > 0 && !math.IsNaN(s.f[n-1]) {
			t.Errorf("getScratch(%d) not poisoned", n)
		}
		s.put()
		z := getZeroed(n)
		for i, v := range z.f {
			if v != 0 {
				t.Fatalf("getZeroed(%d)[%d] = %v", n, i, v)
			}
		}
		z.put()
	}
	var s *scratch
	s.put() // a nil buffer is ignored
}

func TestScratchReuse(t *testing.T) {
	if testing.AllocsPerRun(100, func() { getScratch(3000).put() }) > 0.5 {
		t.Error("a buffer taken and given back allocates")
	}
}
