package flows_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"github.com/gonormflows/flows/internal/linalg"
)

func TestMAFConformance(t *testing.T) {
	var cases []flowstest.Bijection
	for _, dim := range []int{1, 2, 3, 5} {
		for _, order := range madeOrders {
			for _, c := range []struct {
				hidden []int
				act    flows.Activation
			}{{[]int{8}, flows.Tanh}, {[]int{8, 6}, flows.ReLU}, {[]int{7, 5}, flows.SiLU}, {nil, flows.Tanh}} {
				cfg := flows.MADEConfig{Hidden: c.hidden, Act: c.act, Order: order}
				cases = append(cases,
					flowstest.Bijection{Name: fmt.Sprintf("MAF/dim=%d/%v/hidden=%v/%v", dim, order, c.hidden, c.act), Init: flows.MAF(cfg), Dim: dim},
					flowstest.Bijection{Name: fmt.Sprintf("IAF/dim=%d/%v/hidden=%v/%v", dim, order, c.hidden, c.act), Init: flows.Invert(flows.MAF(cfg)), Dim: dim})
			}
		}
	}
	// Sorted degrees, with hidden layers of several groups of columns (the
	// products skip blocks). Not in the openblas build: its unprepared
	// products are OpenBLAS's whole ones, whose bits the prepared pass (our
	// kernels) does not promise at these widths.
	for _, order := range madeOrders {
		if linalg.Backend() == "openblas" {
			break
		}
		cfg := flows.MADESkipAlways(flows.MADEConfig{Hidden: []int{70, 45}, Act: flows.ReLU, Order: order, Degrees: flows.SortedDegrees})
		cases = append(cases,
			flowstest.Bijection{Name: fmt.Sprintf("MAF/sorted/dim=5/%v", order), Init: flows.MAF(cfg), Dim: 5},
			flowstest.Bijection{Name: fmt.Sprintf("IAF/sorted/dim=5/%v", order), Init: flows.Invert(flows.MAF(cfg)), Dim: 5})
	}
	// Hidden layers narrower than dim−1 (some dependences cut).
	narrow := flows.MADEConfig{Hidden: []int{2, 3}, Act: flows.Tanh, Order: flows.RandomOrder}
	cases = append(cases,
		flowstest.Bijection{Name: "MAF/dim=6/narrow", Init: flows.MAF(narrow), Dim: 6},
		flowstest.Bijection{Name: "IAF/dim=6/narrow", Init: flows.Invert(flows.MAF(narrow)), Dim: 6})
	cfg := flows.MADEConfig{Hidden: []int{8, 8}, Act: flows.Tanh}
	cases = append(cases,
		flowstest.Bijection{Name: "Serial(MAF,Reverse,MAF)", Init: flows.Serial(flows.MAF(cfg), flows.Reverse(), flows.MAF(cfg)), Dim: 4},
		flowstest.Bijection{Name: "Serial(IAF,Reverse,IAF)", Init: flows.Serial(flows.Invert(flows.MAF(cfg)), flows.Reverse(), flows.Invert(flows.MAF(cfg))), Dim: 3},
		flowstest.Bijection{Name: "Invert(Serial(MAF,Reverse,MAF))", Init: flows.Invert(flows.Serial(flows.MAF(cfg), flows.Reverse(), flows.MAF(cfg))), Dim: 3},
		// Larger inputs and scales: the log-scale bound saturates somewhere.
		flowstest.Bijection{Name: "MAF/dim=4/large", Init: flows.MAF(cfg), Dim: 4, Perturb: func(key flows.Key, p flows.Params) flows.Params {
			rng := key.Rand()
			q := slices.Clone(p)
			for i := range q {
				q[i] += rng.NormFloat64()
			}
			return q
		}},
	)
	for _, c := range cases {
		flowstest.TestBijection(t, c)
	}
}

// TestMAFIdentityAtInit checks that a MAF starts as the identity, exactly.
func TestMAFIdentityAtInit(t *testing.T) {
	for _, dim := range []int{1, 2, 7} {
		for _, order := range madeOrders {
			p, bj, err := flows.MAF(flows.MADEConfig{Hidden: []int{16, 16}, Act: flows.ReLU, Order: order})(flows.NewKey(9), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			x := mafNormal(flows.NewKey(10), 20, dim, 3)
			for name, f := range map[string]func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64){"Direct": bj.Direct, "Inverse": bj.Inverse} {
				z, ld := f(p, x, nil)
				if !mat.Equal(z, x) {
					t.Errorf("dim %d, %v: %s at init is not the identity", dim, order, name)
				}
				for _, v := range ld {
					if v != 0 {
						t.Errorf("dim %d, %v: %s log-det at init %g, want 0", dim, order, name, v)
						break
					}
				}
			}
		}
	}
}

// TestMAFMatchesMADE checks MAF against its definition, computed here
// from a separate MADE with the same key (MAF's parameters are
// MADE(cfg)(key, dim, 2·dim)'s): Direct from one MADE pass, and Inverse
// against the plain fixed-point iteration x ← z·exp(α(x)) + μ(x), dim
// whole-net passes, which the incremental inverse must reproduce. The
// configurations include narrow hidden layers and every activation.
func TestMAFMatchesMADE(t *testing.T) {
	for _, c := range []struct {
		dim    int
		hidden []int
		act    flows.Activation
		order  flows.Order
	}{
		{1, []int{3}, flows.Tanh, flows.NaturalOrder},
		{4, nil, flows.ReLU, flows.RandomOrder},
		{5, []int{9, 7}, flows.SiLU, flows.RandomOrder},
		{6, []int{2}, flows.ELU, flows.ReversedOrder},
		{7, []int{3, 12, 4}, flows.LeakyReLU, flows.RandomOrder},
		{8, []int{20, 20}, flows.Tanh, flows.NaturalOrder},
	} {
		name := fmt.Sprintf("dim=%d/hidden=%v/%v/%v", c.dim, c.hidden, c.act, c.order)
		cfg := flows.MADEConfig{Hidden: c.hidden, Act: c.act, Order: c.order}
		key := flows.NewKey(11)
		p, bj, err := flows.MAF(cfg)(key, c.dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		pm, net, err := flows.MADE(cfg)(key, c.dim, 2*c.dim)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p, pm) {
			t.Fatalf("%s: MAF's parameters differ from MADE's with the same key", name)
		}
		rng := flows.NewKey(12).Rand()
		for i := range p {
			p[i] += 0.3 * rng.NormFloat64()
		}
		const n = 7
		x := mafNormal(flows.NewKey(13), n, c.dim, 1)
		muAlpha := func(x *mat.Dense) (mu, alpha *mat.Dense) {
			y := net.Apply(p, x)
			mu = mat.NewDense(n, c.dim, nil)
			alpha = mat.NewDense(n, c.dim, nil)
			for r := 0; r < n; r++ {
				for i := 0; i < c.dim; i++ {
					mu.Set(r, i, y.At(r, i))
					alpha.Set(r, i, 3*math.Tanh(y.At(r, c.dim+i)/3))
				}
			}
			return mu, alpha
		}

		z, ld := bj.Direct(p, x, nil)
		mu, alpha := muAlpha(x)
		for r := 0; r < n; r++ {
			sum := 0.0
			for i := 0; i < c.dim; i++ {
				want := (x.At(r, i) - mu.At(r, i)) * math.Exp(-alpha.At(r, i))
				if math.Abs(z.At(r, i)-want) > 1e-12*math.Max(1, math.Abs(want)) {
					t.Errorf("%s: z[%d,%d] = %.17g, want %.17g", name, r, i, z.At(r, i), want)
				}
				sum += alpha.At(r, i)
			}
			if math.Abs(ld[r]+sum) > 1e-12*math.Max(1, math.Abs(sum)) {
				t.Errorf("%s: log-det[%d] = %.17g, want %.17g", name, r, ld[r], -sum)
			}
		}

		// Fixed-point iteration: after pass t the first t positions are exact.
		zi := mafNormal(flows.NewKey(14), n, c.dim, 1)
		xi := mat.NewDense(n, c.dim, nil)
		for pass := 0; pass < c.dim; pass++ {
			mu, alpha := muAlpha(xi)
			next := mat.NewDense(n, c.dim, nil)
			for r := 0; r < n; r++ {
				for i := 0; i < c.dim; i++ {
					next.Set(r, i, zi.At(r, i)*math.Exp(alpha.At(r, i))+mu.At(r, i))
				}
			}
			xi = next
		}
		_, alphaFinal := muAlpha(xi)
		got, ild := bj.Inverse(p, zi, nil)
		for r := 0; r < n; r++ {
			sum := 0.0
			for i := 0; i < c.dim; i++ {
				// Two summation orders of the same products: a few ulps.
				if want := xi.At(r, i); math.Abs(got.At(r, i)-want) > 1e-12*math.Max(1, math.Abs(want)) {
					t.Errorf("%s: Inverse x[%d,%d] = %.17g, fixed point %.17g", name, r, i, got.At(r, i), want)
				}
				sum += alphaFinal.At(r, i)
			}
			if math.Abs(ild[r]-sum) > 1e-12*math.Max(1, math.Abs(sum)) {
				t.Errorf("%s: Inverse log-det[%d] = %.17g, want %.17g", name, r, ild[r], sum)
			}
		}
	}
}

// TestMAFViews checks that strided views give the same answers as copies.
func TestMAFViews(t *testing.T) {
	const dim = 3
	p, bj, err := flows.MAF(flows.MADEConfig{Hidden: []int{6}, Act: flows.Tanh})(flows.NewKey(1), dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := flows.NewKey(2).Rand()
	for i := range p {
		p[i] += 0.3 * rng.NormFloat64()
	}
	big := mafNormal(flows.NewKey(3), 6, 5, 1)
	view := big.Slice(1, 5, 1, 4).(*mat.Dense)
	cp := mat.DenseCopyOf(view)
	for name, f := range map[string]func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64){"Direct": bj.Direct, "Inverse": bj.Inverse} {
		a, la := f(p, view, nil)
		b, lb := f(p, cp, nil)
		if !mat.Equal(a, b) || !slices.Equal(la, lb) {
			t.Errorf("%s: a strided view and its copy disagree", name)
		}
	}
	for name, f := range map[string]func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, flows.Pullback){"DirectVJP": bj.DirectVJP, "InverseVJP": bj.InverseVJP} {
		_, _, backA := f(p, cp, nil)
		_, _, backB := f(p, cp, nil)
		dl := []float64{1, -1, 0.5, 2}
		dpA, dpB := make(flows.Params, len(p)), make(flows.Params, len(p))
		dxA := backA(view, dl, dpA, nil)
		dxB := backB(mat.DenseCopyOf(view), dl, dpB, nil)
		if !mat.Equal(dxA, dxB) || !slices.Equal(dpA, dpB) {
			t.Errorf("%s: pullback of a strided view and of its copy disagree", name)
		}
	}
}

func TestMAFInitErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  flows.MADEConfig
		dim  int
		want string
	}{
		{flows.MADEConfig{}, 0, "dimension"},
		{flows.MADEConfig{Hidden: []int{-1}}, 2, "hidden layer 0"},
		{flows.MADEConfig{Act: flows.Activation(-1)}, 2, "activation"},
		{flows.MADEConfig{Order: flows.Order(-1)}, 2, "order"},
	} {
		_, _, err := flows.MAF(c.cfg)(flows.NewKey(1), c.dim, 0)
		if err == nil || !strings.HasPrefix(err.Error(), "flows: MAF: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("MAF(%+v) at dim %d: error %v, want \"flows: MAF: …%s…\"", c.cfg, c.dim, err, c.want)
		}
	}
}

// mafNormal returns an n×dim batch of N(0, scale²) entries.
func mafNormal(key flows.Key, n, dim int, scale float64) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, dim, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			x.Set(i, j, scale*rng.NormFloat64())
		}
	}
	return x
}

// mafStack is the benchmarks' model: five MAF layers, each MADE with two
// hidden layers of width h (ReLU), with Reverse between them, at
// parameters moved off the identity.
func mafStack(b *testing.B, dim, h int) (flows.Params, flows.Bijection) {
	cfg := flows.MADEConfig{Hidden: []int{h, h}, Act: flows.ReLU}
	var layers []flows.InitFunc
	for l := 0; l < 5; l++ {
		if l > 0 {
			layers = append(layers, flows.Reverse())
		}
		layers = append(layers, flows.MAF(cfg))
	}
	p, bj, err := flows.Serial(layers...)(flows.NewKey(1), dim, 0)
	if err != nil {
		b.Fatal(err)
	}
	rng := flows.NewKey(2).Rand()
	for i := range p {
		p[i] += 0.01 * rng.NormFloat64()
	}
	return p, bj
}

// mafFlow is the benchmarks' MAF: five MAF layers, each MADE with two hidden
// ReLU layers of width h and sorted degrees (as `flows fit --kind maf`
// builds them), reversal between layers, standard normal prior.
func mafFlow(h int) flows.DistInitFunc {
	cfg := flows.MADEConfig{Hidden: []int{h, h}, Act: flows.ReLU, Degrees: flows.SortedDegrees}
	var layers []flows.InitFunc
	for l := 0; l < 5; l++ {
		if l > 0 {
			layers = append(layers, flows.Reverse())
		}
		layers = append(layers, flows.MAF(cfg))
	}
	return flows.Flow(flows.Serial(layers...), flows.Normal())
}

// BenchmarkMAFStep times one training step (log density, gradient, Adam)
// of mafFlow at the dim/hidden/batch sizes of the performance issue.
func BenchmarkMAFStep(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("dim=%d/hidden=%d/batch=%d", s.dim, s.hidden, s.batch), func(b *testing.B) {
			benchStep(b, mafFlow(s.hidden), s.dim, s.batch)
		})
	}
}

// BenchmarkMAFSample times sampling, Inverse on 10,000 standard-normal
// rows, of a five-layer MAF stack (see mafStack).
func BenchmarkMAFSample(b *testing.B) {
	const n = 10000
	for _, c := range []struct{ dim, h int }{{8, 128}, {64, 128}} {
		b.Run(fmt.Sprintf("dim=%d/hidden=%d", c.dim, c.h), func(b *testing.B) {
			p, bj := mafStack(b, c.dim, c.h)
			z := mafNormal(flows.NewKey(5), n, c.dim, 1)
			b.ReportAllocs()
			for b.Loop() {
				bj.Inverse(p, z, nil)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkMAFDensity times density evaluation, Direct on 10,000 rows, of
// the same stacks as BenchmarkMAFSample: one dense MADE pass per layer,
// the yardstick for the dim sequential steps of sampling.
func BenchmarkMAFDensity(b *testing.B) {
	const n = 10000
	for _, c := range []struct{ dim, h int }{{8, 128}, {64, 128}} {
		b.Run(fmt.Sprintf("dim=%d/hidden=%d", c.dim, c.h), func(b *testing.B) {
			p, bj := mafStack(b, c.dim, c.h)
			x := mafNormal(flows.NewKey(5), n, c.dim, 1)
			b.ReportAllocs()
			for b.Loop() {
				bj.Direct(p, x, nil)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
