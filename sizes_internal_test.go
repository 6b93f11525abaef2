package flows

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestLayerSizeBombs checks that the layer constructors refuse matrices
// beyond maxLayerFloats with an init error naming the layer, in under a
// second and with under 100 MB allocated.
func TestLayerSizeBombs(t *testing.T) {
	for _, tc := range []struct {
		name, who string
		init      func() error
	}{
		{"InvertibleLinear 1.1M", "InvertibleLinear", func() error {
			_, _, err := InvertibleLinearFrom(LinearPermutation)(NewKey(1), 1_100_000, 0)
			return err
		}},
		{"InvertibleLinear orthogonal", "InvertibleLinear", func() error {
			_, _, err := InvertibleLinear()(NewKey(1), 20_000, 0)
			return err
		}},
		{"MLP hidden 1e8", "MLP", func() error {
			_, _, err := MLP([]int{100_000_000}, ReLU)(NewKey(1), 2, 2)
			return err
		}},
		{"MLP total", "MLP", func() error {
			_, _, err := MLP([]int{15_000, 15_000, 15_000}, ReLU)(NewKey(1), 2, 2)
			return err
		}},
		{"MADE hidden 1e8", "MADE", func() error {
			_, _, err := MADE(MADEConfig{Hidden: []int{100_000_000}})(NewKey(1), 2, 4)
			return err
		}},
		{"BNAF units", "BNAF", func() error {
			_, _, err := BNAF(BNAFConfig{Hidden: []int{100_000_000}})(NewKey(1), 3, 0)
			return err
		}},
		{"coupling over a huge MLP", "MLP", func() error {
			_, _, err := AffineCoupling(MLP([]int{300_000_000}, ReLU))(NewKey(1), 4, 0)
			return err
		}},
	} {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		start := time.Now()
		err := tc.init()
		d := time.Since(start)
		runtime.ReadMemStats(&b)
		if err == nil || !strings.Contains(err.Error(), tc.who) || !strings.Contains(err.Error(), "GiB") {
			t.Errorf("%s: %v, want an error naming %s and its size", tc.name, err, tc.who)
		}
		if used := b.TotalAlloc - a.TotalAlloc; used > 100<<20 || d > time.Second {
			t.Errorf("%s: refused after allocating %d bytes in %v", tc.name, used, d)
		}
	}
	// The bound is far above real layers: a 2,000-column InvertibleLinear
	// and a [4096 4096] MLP still build.
	if _, _, err := InvertibleLinearFrom(LinearPermutation)(NewKey(1), 2000, 0); err != nil {
		t.Error(err)
	}
	if _, _, err := MLP([]int{4096, 4096}, ReLU)(NewKey(1), 8, 8); err != nil {
		t.Error(err)
	}
}
