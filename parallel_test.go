package flows

import (
	"runtime"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/linalg"
)

// TestForRows checks that forRows covers every row once, in chunks whose
// size depends only on the work per row.
func TestForRows(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 3} {
		runtime.GOMAXPROCS(procs)
		for _, c := range []struct{ n, rowWork int }{{0, 5}, {1, 1}, {10, 1 << 20}, {1000, 100}, {5000, 7}} {
			seen := make([]int, c.n)
			chunks := make([]int, c.n+1) // chunks[r0] = r1
			forRows(c.n, c.rowWork, func(r0, r1 int) {
				chunks[r0] = r1
				for r := r0; r < r1; r++ {
					seen[r]++
				}
			})
			rows := max(1, chunkWork/c.rowWork)
			for r, k := range seen {
				if k != 1 {
					t.Fatalf("n=%d: row %d visited %d times", c.n, r, k)
				}
				if r%rows == 0 && c.n > rows && chunks[r] != min(r+rows, c.n) {
					t.Fatalf("n=%d, rowWork=%d: chunk at %d ends at %d, want %d", c.n, c.rowWork, r, chunks[r], min(r+rows, c.n))
				}
			}
		}
	}
}

// TestElementwiseDeterministic: the layers whose elementwise work runs in
// row chunks on several goroutines (activations, transformers) give
// bit-identical densities, gradients and samples on any GOMAXPROCS and
// any number of workers.
func TestElementwiseDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("several models at 3 settings")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer linalg.SetWorkers(linalg.SetWorkers(0))
	spline := SplineConfig{Bins: 5, Bound: 3}
	models := []struct {
		name    string
		init    DistInitFunc
		dim, cd int
	}{
		{"RealNVP", Flow(Serial(AffineCoupling(MLP([]int{64, 64}, ReLU)), Reverse(), AffineCoupling(MLP([]int{48}, SiLU))), Normal()), 6, 2},
		{"NSF coupling", Flow(Serial(NeuralSplineCoupling(MLP([]int{32}, Tanh), spline), Reverse(), NeuralSplineCoupling(MLP([]int{32}, ELU), spline)), Normal()), 6, 0},
		{"MAF", Flow(Serial(MAF(MADEConfig{Hidden: []int{64, 64}}), Reverse(), MAF(MADEConfig{Hidden: []int{40}, Act: SiLU})), DiagNormal()), 5, 2},
		{"NSF autoregressive", Flow(Serial(NeuralSplineAutoregressive(MADEConfig{Hidden: []int{32}, Act: LeakyReLU}, spline), Reverse(), Invert(MAF(MADEConfig{Hidden: []int{16}}))), Normal()), 4, 0},
	}
	const n = 2000
	for _, m := range models {
		p0, d, err := m.init(NewKey(1), m.dim, m.cd)
		if err != nil {
			t.Fatal(m.name, err)
		}
		p := pinPerturb(p0, 2)
		x := pinBatch(NewKey(2), n, m.dim, false)
		var c *mat.Dense
		if m.cd > 0 {
			c = pinBatch(NewKey(3), n, m.cd, false)
		}
		w := denseRows(pinBatch(NewKey(4), n, 1, false))
		run := func() [][]float64 {
			lp, back := d.LogPDFVJP(p, x, c)
			dp := make(Params, len(p))
			dx := back(w, dp, nil)
			return [][]float64{d.LogPDF(p, x, c), lp, denseRows(dx), dp, denseRows(d.Sample(NewKey(5), p, n, c))}
		}
		runtime.GOMAXPROCS(1)
		linalg.SetWorkers(1)
		want := run()
		for _, s := range []struct{ procs, workers int }{{2, 0}, {4, 0}, {1, 3}} {
			runtime.GOMAXPROCS(s.procs)
			linalg.SetWorkers(s.workers)
			for i, got := range run() {
				if !slices.Equal(got, want[i]) {
					t.Errorf("%s, GOMAXPROCS=%d, workers=%d: result %d differs from one goroutine's", m.name, s.procs, s.workers, i)
				}
			}
		}
		linalg.SetWorkers(0)
	}
}
