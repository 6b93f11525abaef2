package flows_test

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/linalg"
	"gonum.org/v1/gonum/mat"
)

// scoreModel is the model of the scoring benchmarks (issue 22's): five MAF
// layers with two hidden layers of 64 units on 8 columns, reversal between
// them, standard normal prior, at parameters moved off the identity.
func scoreModel(tb testing.TB) (flows.Params, flows.Distribution) {
	p, d, err := mafFlow(64)(flows.NewKey(1), 8, 0)
	if err != nil {
		tb.Fatal(err)
	}
	nudge(p, 0.01)
	return p, d
}

// BenchmarkScore times one LogPDF call of scoreModel on 1, 16 and 1,000
// rows, unprepared (path=plain, what every call cost before prepared
// evaluation) and prepared (path=prepared).
func BenchmarkScore(b *testing.B) {
	p, d := scoreModel(b)
	pd := flows.PrepareDistribution(d, p)
	for _, n := range []int{1, 16, 1000} {
		x := mafNormal(flows.NewKey(5), n, 8, 1)
		b.Run(fmt.Sprintf("path=plain/rows=%d", n), func(b *testing.B) {
			benchCPU(b, func() { d.LogPDF(p, x, nil) })
		})
		b.Run(fmt.Sprintf("path=prepared/rows=%d", n), func(b *testing.B) {
			benchCPU(b, func() { pd.LogPDF(x, nil) })
		})
	}
}

// BenchmarkSampleScoreModel times drawing 1,000 rows from scoreModel,
// unprepared and prepared.
func BenchmarkSampleScoreModel(b *testing.B) {
	p, d := scoreModel(b)
	pd := flows.PrepareDistribution(d, p)
	b.Run("path=plain", func(b *testing.B) {
		benchCPU(b, func() { d.Sample(flows.NewKey(3), p, 1000, nil) })
	})
	b.Run("path=prepared", func(b *testing.B) {
		benchCPU(b, func() { pd.Sample(flows.NewKey(3), 1000, nil) })
	})
}

// benchCPU times f, reporting allocations and, besides the wall time, the
// process's CPU time per call (cpu-ns/op: all threads, so a call that
// spreads over two cores counts both; on a shared machine it leaves out
// the time spent waiting for a core).
func benchCPU(b *testing.B, f func()) {
	b.ReportAllocs()
	c0 := cpuNanos()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
}

// TestPreparedSnapshot: a prepared model keeps the parameters it was
// prepared with; changing them afterwards changes the unprepared density
// only, and preparing again sees the change.
func TestPreparedSnapshot(t *testing.T) {
	p, d := scoreModel(t)
	x := mafNormal(flows.NewKey(5), 7, 8, 1)
	pd := flows.PrepareDistribution(d, p)
	before := d.LogPDF(p, x, nil)
	for i := range p {
		p[i] *= 1.5
	}
	if got := pd.LogPDF(x, nil); !slices.Equal(got, before) {
		t.Errorf("the prepared density changed with the parameters: %v, want %v", got, before)
	}
	after := d.LogPDF(p, x, nil)
	if slices.Equal(after, before) {
		t.Fatal("the test's change of parameters changes nothing")
	}
	if got := flows.PrepareDistribution(d, p).LogPDF(x, nil); !slices.Equal(got, after) {
		t.Errorf("preparing again: %v, want %v", got, after)
	}
}

// TestPreparedConcurrent scores and samples with one prepared model from
// many goroutines at once, on batches of one row, a few rows and several
// row blocks, and compares every result with the unprepared one bit for
// bit (run under -race in CI).
func TestPreparedConcurrent(t *testing.T) {
	p, d := scoreModel(t)
	pd := flows.PrepareDistribution(d, p)
	sizes := []int{1, 3, 300}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := sizes[g%len(sizes)]
			x := mafNormal(flows.NewKey(uint64(10+g)), n, 8, 1)
			for range 3 {
				if !sameFloatBits(pd.LogPDF(x, nil), d.LogPDF(p, x, nil)) {
					errs <- fmt.Sprintf("LogPDF of %d rows differs", n)
				}
				key := flows.NewKey(uint64(g))
				if !sameFloatBits(pd.Sample(key, n, nil).RawMatrix().Data, d.Sample(key, p, n, nil).RawMatrix().Data) {
					errs <- fmt.Sprintf("Sample of %d rows differs", n)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// nudge moves the parameters p off their initial values (the identity
// map, for most layers) by scale times normal draws from a fixed key.
func nudge(p flows.Params, scale float64) {
	rng := flows.NewKey(2).Rand()
	for i := range p {
		p[i] += scale * rng.NormFloat64()
	}
}

// sameFloatBits reports whether a and b are equal bit for bit.
func sameFloatBits(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(u, v float64) bool { return math.Float64bits(u) == math.Float64bits(v) })
}

// gridModels are the models of the scoring and sampling grid of issue 22,
// the PyTorch reference's (../shared/bench/torch_reference.py): MAF (five
// MADEs [H, H], reversal between), RealNVP (8 affine couplings) and the
// spline coupling flow (8 couplings, 8 bins on [−3, 3]), standard normal
// prior.
var gridModels = []struct {
	name   string
	dim, h int
	init   flows.DistInitFunc
}{
	{"maf", 8, 128, mafFlow(128)},
	{"maf", 64, 128, mafFlow(128)},
	{"rnvp", 8, 128, flows.Flow(realNVP(8, 128), flows.Normal())},
	{"rnvp", 8, 512, flows.Flow(realNVP(8, 512), flows.Normal())},
	{"rnvp", 64, 128, flows.Flow(realNVP(8, 128), flows.Normal())},
	{"rqs", 8, 128, flows.Flow(nsfCouplingStack(8, 128), flows.Normal())},
}

// BenchmarkGrid times prepared LogPDF and Sample on 10,000 rows of each
// grid model (rows/s, as the PyTorch reference reports), at parameters
// moved off the identity.
func BenchmarkGrid(b *testing.B) {
	const n = 10000
	for _, g := range gridModels {
		_, _, pd, x := gridSetup(b, g.init, g.dim, n)
		name := fmt.Sprintf("model=%s/dim=%d/hidden=%d", g.name, g.dim, g.h)
		b.Run(name+"/op=density", func(b *testing.B) {
			benchCPU(b, func() { pd.LogPDF(x, nil) })
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		b.Run(name+"/op=sample", func(b *testing.B) {
			benchCPU(b, func() { pd.Sample(flows.NewKey(3), n, nil) })
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// gridSetup returns a grid model from init on dim columns at parameters
// moved off the identity, prepared, and n rows to score.
func gridSetup(b *testing.B, init flows.DistInitFunc, dim, n int) (flows.Params, flows.Distribution, flows.PreparedDistribution, *mat.Dense) {
	p, d, err := init(flows.NewKey(1), dim, 0)
	if err != nil {
		b.Fatal(err)
	}
	nudge(p, 0.01)
	return p, d, flows.PrepareDistribution(d, p), mafNormal(flows.NewKey(5), n, dim, 1)
}

// ExamplePrepareDistribution scores rows with a flow prepared once at its
// parameters: the same log densities as LogPDF, bit for bit, without the
// per-call set-up, and unaffected by later changes to the parameters.
func ExamplePrepareDistribution() {
	made := flows.MADEConfig{Hidden: []int{16, 16}}
	p, flow, err := flows.Flow(flows.Serial(flows.MAF(made), flows.Reverse(), flows.MAF(made)), flows.Normal())(flows.NewKey(1), 3, 0)
	if err != nil {
		panic(err)
	}
	prepared := flows.PrepareDistribution(flow, p)
	x := mat.NewDense(2, 3, []float64{0.1, -0.4, 1.2, 2, 0.5, -1})
	fmt.Println(slices.Equal(prepared.LogPDF(x, nil), flow.LogPDF(p, x, nil)))
	for i := range p {
		p[i] += 0.1 // a training step, say: the prepared flow keeps its copy
	}
	fmt.Println(slices.Equal(prepared.LogPDF(x, nil), flow.LogPDF(p, x, nil)))
	// Output:
	// true
	// false
}

// TestPreparedNets: prepared couplings and MAF layers (their conditioners'
// weights packed, the bias added in the activation's pass) give the
// unprepared bits for every activation, with and without a context, on
// row blocks of 1, 16 and 300 rows (two of them with values large enough
// to overflow the conditioners), with hidden widths across one panel and
// several and a layer of more than one k-block (300 inputs), and in
// float32 mode.
func TestPreparedNets(t *testing.T) {
	if linalg.Backend() == "openblas" {
		// The prepared nets run on our kernels (linalg.Packed), the
		// unprepared ones on OpenBLAS, whose sums are in an order of its
		// own (README, Reproducibility).
		t.Skip("exact bits are our kernels' promise, not OpenBLAS's")
	}
	for _, act := range flows.Activations() {
		for _, prec := range []flows.Precision{flows.Float64, flows.Float32} {
			mlp := flows.MLPWith(flows.MLPConfig{Hidden: []int{300, 20}, Act: act, Precision: prec})
			made := flows.MADEConfig{Hidden: []int{300, 20}, Act: act, Precision: prec}
			layers := map[string]flows.InitFunc{
				"AffineCoupling":       flows.AffineCoupling(mlp),
				"NeuralSplineCoupling": flows.NeuralSplineCoupling(mlp, flows.SplineConfig{Bins: 4, Bound: 3}),
				"MAF":                  flows.MAF(made),
			}
			for name, init := range layers {
				for _, cdim := range []int{0, 2} {
					label := fmt.Sprintf("%s/%v/%v/context=%d", name, act, prec, cdim)
					p, b, err := init(flows.NewKey(1), 5, cdim)
					if err != nil {
						t.Fatal(err)
					}
					nudge(p, 0.05)
					pb := flows.PrepareBijection(b, p)
					for _, n := range []int{1, 16, 300} {
						x := mafNormal(flows.NewKey(uint64(n)), n, 5, 1.5)
						if n > 1 { // conditioner outputs that overflow, replaced by the transformers
							x.SetRow(0, []float64{1e306, -1e306, 1e306, 2, 3})
							x.SetRow(1, []float64{-1e306, 1e306, 1, 1e306, 0})
						}
						var c *mat.Dense
						if cdim > 0 {
							c = mafNormal(flows.NewKey(uint64(n+1)), n, cdim, 1)
						}
						z, ld := b.Direct(p, x, c)
						pz, pld := pb.Direct(x, c)
						if !sameFloatBits(z.RawMatrix().Data, pz.RawMatrix().Data) || !sameFloatBits(ld, pld) {
							t.Errorf("%s, %d rows: prepared Direct differs", label, n)
						}
						u, uld := b.Inverse(p, z, c)
						pu, puld := pb.Inverse(z, c)
						if !sameFloatBits(u.RawMatrix().Data, pu.RawMatrix().Data) || !sameFloatBits(uld, puld) {
							t.Errorf("%s, %d rows: prepared Inverse differs", label, n)
						}
					}
				}
			}
		}
	}
}

// TestPreparedFloat32: prepared flows whose conditioners run in Float32
// (MAF, RealNVP and spline couplings, with and without a context) give
// the unprepared Float32 bits for LogPDF, Sample and Latent, on 1, 16,
// 121 (a row block and one row) and 300 rows, with GOMAXPROCS 1 and 2
// (on the prepared side; the unprepared side is taken once, on all
// cores: its bits do not depend on GOMAXPROCS).
func TestPreparedFloat32(t *testing.T) {
	if linalg.Backend() == "openblas" {
		t.Skip("exact bits are our kernels' promise, not OpenBLAS's")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	made := flows.MADEConfig{Hidden: []int{40, 40}, Act: flows.ReLU, Precision: flows.Float32}
	mlp := flows.MLPWith(flows.MLPConfig{Hidden: []int{40, 40}, Act: flows.Tanh, Precision: flows.Float32})
	models := map[string]flows.DistInitFunc{
		"MAF":     flows.Flow(flows.Serial(flows.MAF(made), flows.Reverse(), flows.MAF(made)), flows.Normal()),
		"RealNVP": flows.Flow(flows.Serial(flows.AffineCoupling(mlp), flows.Reverse(), flows.AffineCoupling(mlp)), flows.Normal()),
		"spline":  flows.Flow(flows.Serial(flows.NeuralSplineCoupling(mlp, flows.SplineConfig{Bins: 4, Bound: 3}), flows.Reverse()), flows.Normal()),
	}
	for name, init := range models {
		for _, cdim := range []int{0, 3} {
			p, d, err := init(flows.NewKey(1), 5, cdim)
			if err != nil {
				t.Fatal(err)
			}
			nudge(p, 0.05)
			pd := flows.PrepareDistribution(d, p)
			for _, n := range []int{1, 16, 121, 300} {
				x := mafNormal(flows.NewKey(uint64(n)), n, 5, 1)
				var c *mat.Dense
				if cdim > 0 {
					c = mafNormal(flows.NewKey(uint64(n+1)), n, cdim, 1)
				}
				lp, s, z := d.LogPDF(p, x, c), d.Sample(flows.NewKey(3), p, n, c), d.Latent(p, x, c)
				for _, procs := range []int{1, 2} {
					runtime.GOMAXPROCS(procs)
					label := fmt.Sprintf("%s, context %d, %d rows, GOMAXPROCS=%d", name, cdim, n, procs)
					if !sameFloatBits(pd.LogPDF(x, c), lp) {
						t.Errorf("%s: prepared LogPDF differs", label)
					}
					if !sameFloatBits(pd.Sample(flows.NewKey(3), n, c).RawMatrix().Data, s.RawMatrix().Data) {
						t.Errorf("%s: prepared Sample differs", label)
					}
					if !sameFloatBits(pd.Latent(x, c).RawMatrix().Data, z.RawMatrix().Data) {
						t.Errorf("%s: prepared Latent differs", label)
					}
				}
			}
		}
	}
}

// TestPreparedFused: the prepared paths that skip work of the unprepared
// ones give its bits: a Flow's LogPDF over row blocks with the prior's
// density fused (Normal), a permutation folded into the MAF layer before
// it (Shuffle, whose inverse differs from itself, as well as Reverse; at
// the end of a stack and in the fused runs of a stack with a layer that
// has no row maps, ActNorm), with and without a context, on 1, 16 and 300
// rows with NaN, infinite and overflowing rows and a strided batch, on
// GOMAXPROCS 1 and 2; LogPDF, Latent and Sample are compared, and a prior
// without density rows (DiagNormal) takes the unfused path.
func TestPreparedFused(t *testing.T) {
	if linalg.Backend() == "openblas" {
		t.Skip("exact bits are our kernels' promise, not OpenBLAS's")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	made := flows.MADEConfig{Hidden: []int{12, 12}}
	maf := flows.MAF(made)
	stacks := map[string]flows.InitFunc{
		"shuffles":   flows.Serial(flows.Shuffle(), maf, flows.Shuffle(), maf, flows.Reverse(), maf, flows.Shuffle()),
		"actnorm":    flows.Serial(maf, flows.Shuffle(), flows.ActNorm(), maf, flows.Shuffle(), maf),
		"inverted":   flows.Serial(maf, flows.Invert(flows.Shuffle()), maf),
		"single MAF": maf,
	}
	for name, stack := range stacks {
		for _, prior := range []flows.DistInitFunc{flows.Normal(), flows.DiagNormal()} {
			for _, cdim := range []int{0, 2} {
				p, d, err := flows.Flow(stack, prior)(flows.NewKey(1), 5, cdim)
				if err != nil {
					t.Fatal(err)
				}
				nudge(p, 0.05)
				pd := flows.PrepareDistribution(d, p)
				for _, n := range []int{1, 16, 300} {
					wide := mafNormal(flows.NewKey(uint64(n)), n, 7, 1.5)
					x := wide.Slice(0, n, 1, 6).(*mat.Dense) // strided
					if n > 1 {
						x.SetRow(0, []float64{1e306, -1e306, 1e306, 2, 3})
						x.SetRow(1, []float64{math.NaN(), 1, 2, 3, 4})
					}
					if n > 2 {
						x.SetRow(2, []float64{math.Inf(1), 0, 1, 2, 3})
					}
					var c *mat.Dense
					if cdim > 0 {
						c = mafNormal(flows.NewKey(uint64(n+1)), n, cdim, 1)
					}
					lp, z, s := d.LogPDF(p, x, c), d.Latent(p, x, c), d.Sample(flows.NewKey(3), p, n, c)
					for _, procs := range []int{1, 2} {
						runtime.GOMAXPROCS(procs)
						label := fmt.Sprintf("%s, context %d, %d rows, GOMAXPROCS=%d", name, cdim, n, procs)
						if !sameFloatBits(pd.LogPDF(x, c), lp) {
							t.Errorf("%s: prepared LogPDF differs", label)
						}
						if !sameFloatBits(pd.Latent(x, c).RawMatrix().Data, z.RawMatrix().Data) {
							t.Errorf("%s: prepared Latent differs", label)
						}
						if !sameFloatBits(pd.Sample(flows.NewKey(3), n, c).RawMatrix().Data, s.RawMatrix().Data) {
							t.Errorf("%s: prepared Sample differs", label)
						}
					}
				}
			}
		}
	}
}
