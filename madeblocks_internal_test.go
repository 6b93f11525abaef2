package flows

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/gonormflows/flows/internal/linalg"
)

// sameUpToZeroSign reports the first index where a and b differ in bits,
// other than a zero of one sign against a zero of the other; −1 if none.
func sameUpToZeroSign(a, b []float64) int {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) && !(a[i] == 0 && b[i] == 0) {
			return i
		}
	}
	return -1
}

// madeDense runs the dense pass of m and its pullback on x (n rows) with
// output gradient dy: the output, dL/dx and dL/dp.
func madeDense(m *madeNet, p Params, x, dy []float64, n int) (y, dx, dp []float64) {
	y = make([]float64, n*m.out)
	t := m.newTape(p, x, nil, n)
	m.forward(p, x, nil, n, t, y)
	t.take()
	dp = make([]float64, m.np)
	dx = m.backward(t, dy, dp, nil)
	t.release()
	return y, dx, dp
}

// TestMADESortedSkipMatchesFull: with SortedDegrees, the dense pass and its
// pullback on the used blocks of the products give the bits of the full
// masked products (the same net with no extents), up to the sign of an
// exact zero: output, dL/dx and dL/dp, in both precisions, with hidden
// layers of several groups of columns and of several k-blocks, masks
// clear or not (NaN in the masked weights), on random data.
func TestMADESortedSkipMatchesFull(t *testing.T) {
	if linalg.Backend() == "openblas" {
		t.Skip("OpenBLAS computes the whole products")
	}
	for _, c := range []struct {
		dim, k int
		hidden []int
		order  Order
	}{
		{8, 2, []int{128, 128}, NaturalOrder},
		{9, 3, []int{70, 100}, NaturalOrder},
		{40, 2, []int{96}, NaturalOrder},
		{5, 2, []int{300, 300}, NaturalOrder},
		{8, 2, []int{64, 64}, ReversedOrder},
		{1, 2, []int{40}, NaturalOrder},
	} {
		for _, pr := range []Precision{Float64, Float32} {
			for _, act := range []Activation{ReLU, SiLU} {
				cfg := MADEConfig{Hidden: c.hidden, Act: act, Order: c.order, Precision: pr, Degrees: SortedDegrees, skipAlways: true}
				p, m, err := newMADE("MADE", cfg, NewKey(7), c.dim, c.k*c.dim, 0)
				if err != nil {
					t.Fatal(err)
				}
				full := *m
				full.layers = slices.Clone(m.layers)
				for l := range full.layers {
					full.layers[l].ext = nil
				}
				rng := NewKey(8).Rand()
				for i, li := range m.layers { // a trained-looking last layer and biases
					for j := li.b; j < li.b+li.out; j++ {
						p[j] = rng.NormFloat64() * 0.1
					}
					if i == len(m.layers)-1 {
						for j := li.w; j < li.b; j++ {
							p[j] = rng.NormFloat64() * 0.1
						}
					}
				}
				for _, dirty := range []bool{false, true} {
					q := slices.Clone(p)
					if dirty { // masked entries hold NaN: never read
						for _, li := range m.layers {
							for j, used := range li.mask {
								if !used {
									q[li.w+j] = math.NaN()
								}
							}
						}
					}
					for _, n := range []int{1, 37, 300} {
						x, dy := make([]float64, n*c.dim), make([]float64, n*c.k*c.dim)
						for i := range x {
							x[i] = rng.NormFloat64()
						}
						for i := range dy {
							dy[i] = rng.NormFloat64()
						}
						y1, dx1, dp1 := madeDense(m, q, x, dy, n)
						y2, dx2, dp2 := madeDense(&full, q, x, dy, n)
						name := fmt.Sprintf("dim=%d hidden=%v %v %v %v dirty=%v n=%d", c.dim, c.hidden, c.order, pr, act, dirty, n)
						for _, d := range []struct {
							what      string
							got, want []float64
						}{{"y", y1, y2}, {"dx", dx1, dx2}, {"dp", dp1, dp2}} {
							if i := sameUpToZeroSign(d.got, d.want); i >= 0 {
								t.Fatalf("%s: %s[%d] = %v, full product %v", name, d.what, i, d.got[i], d.want[i])
							}
						}
					}
				}
			}
		}
	}
}

// TestMADESortedDegrees: SortedDegrees gives each hidden layer the cyclic
// recipe's degrees in increasing order, and its products skip work: the
// hidden→hidden product of dim 8 does 68% of the full one's multiply-adds
// at width 128 and 60% at 512 (Degrees' doc; 57% are used, 4/7).
func TestMADESortedDegrees(t *testing.T) {
	for _, c := range []struct {
		h       int
		percent float64
	}{{128, 68}, {512, 60}} {
		_, m, err := newMADE("MADE", MADEConfig{Hidden: []int{c.h, c.h}, Degrees: SortedDegrees}, NewKey(1), 8, 16, 0)
		if err != nil {
			t.Fatal(err)
		}
		work, used := 0, 0
		for g, hi := range m.layers[1].ext.fwd.KHi {
			work += min(hi, c.h) * min(linalg.ExtentCols, c.h-g*linalg.ExtentCols)
		}
		for _, u := range m.layers[1].mask {
			if u {
				used++
			}
		}
		if got := math.Round(100 * float64(work) / float64(c.h*c.h)); got != c.percent {
			t.Errorf("width %d: %v%% of the full product's multiply-adds, want %v%%", c.h, got, c.percent)
		}
		if got := math.Round(100 * float64(used) / float64(c.h*c.h)); got != 57 {
			t.Errorf("width %d: %v%% of the weights used, want 57%%", c.h, got)
		}
	}
	cfg := MADEConfig{Hidden: []int{128, 128}, Degrees: SortedDegrees}
	_, m, err := newMADE("MADE", cfg, NewKey(1), 8, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	cyc := CyclicDegrees.hiddenDegrees(128, 8)
	srt := SortedDegrees.hiddenDegrees(128, 8)
	if !slices.IsSorted(srt) || !slices.Equal(slices.Sorted(slices.Values(cyc)), srt) {
		t.Fatalf("sorted degrees %v are not the cyclic %v sorted", srt, cyc)
	}
	if m.layers[0].ext == nil || m.layers[2].ext == nil {
		t.Error("a layer has no extents")
	}
	_, c, _ := newMADE("MADE", MADEConfig{Hidden: []int{128}}, NewKey(1), 8, 16, 0)
	if c.layers[0].ext != nil {
		t.Error("CyclicDegrees has extents")
	}
	// Below madeSkipMinWidth, no layer skips (all or none, by the shape).
	_, n, _ := newMADE("MADE", MADEConfig{Hidden: []int{madeSkipMinWidth, madeSkipMinWidth - 1}, Degrees: SortedDegrees}, NewKey(1), 8, 16, 0)
	for l, li := range n.layers {
		if li.ext != nil {
			t.Errorf("hidden widths %d, %d: layer %d has extents", madeSkipMinWidth, madeSkipMinWidth-1, l)
		}
	}
	if s := SortedDegrees.String(); s != "SortedDegrees" {
		t.Errorf("String() = %q", s)
	}
	if _, _, err := newMADE("MADE", MADEConfig{Degrees: 7}, NewKey(1), 2, 2, 0); err == nil {
		t.Error("unknown degrees accepted")
	}
}
