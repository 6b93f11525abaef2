package flows_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"
)

// mixture is an explicit Gaussian mixture for the tests.
type mixture struct {
	means   [][]float64
	covs    []*mat.SymDense
	weights []float64
}

func (m mixture) init() flows.DistInitFunc { return flows.GMM(m.means, m.covs, m.weights) }

// gmm1D has three well-separated components of unequal weight and width.
var gmm1D = mixture{
	means: [][]float64{{-3}, {0}, {2.5}},
	covs: []*mat.SymDense{
		mat.NewSymDense(1, []float64{0.5}),
		mat.NewSymDense(1, []float64{1}),
		mat.NewSymDense(1, []float64{0.3}),
	},
	weights: []float64{0.6, 0.3, 0.1},
}

// gmm2D has three correlated (non-diagonal) components with weights far
// from uniform, so that sampling the wrong mixture is visible in the
// goodness-of-fit test, all well inside the suite's [−8, 8]² box.
var gmm2D = mixture{
	means: [][]float64{{-3, -2}, {2, 3}, {3, -3}},
	covs: []*mat.SymDense{
		mat.NewSymDense(2, []float64{1, 0.5, 0.5, 1}),
		mat.NewSymDense(2, []float64{0.6, -0.3, -0.3, 0.8}),
		mat.NewSymDense(2, []float64{0.5, 0.2, 0.2, 0.4}),
	},
	weights: []float64{0.7, 0.2, 0.1},
}

// gmm4D has two components with dense covariances A Aᵀ + I/2.
var gmm4D = func() mixture {
	rng := flows.NewKey(41).Rand()
	m := mixture{weights: []float64{0.35, 0.65}}
	for range 2 {
		mu := make([]float64, 4)
		a := mat.NewDense(4, 4, nil)
		for i := range 4 {
			mu[i] = 2 * rng.NormFloat64()
			for j := range 4 {
				a.Set(i, j, 0.5*rng.NormFloat64())
			}
		}
		cov := mat.NewSymDense(4, nil)
		cov.SymOuterK(1, a)
		for i := range 4 {
			cov.SetSym(i, i, cov.At(i, i)+0.5)
		}
		m.means = append(m.means, mu)
		m.covs = append(m.covs, cov)
	}
	return m
}()

func TestGMMConformance(t *testing.T) {
	wide := func(key flows.Key, n, dim int) *mat.Dense {
		// Points up to ~10 away, where the responsibilities are sharp and
		// the far components' terms are tiny but still differentiated.
		rng := key.Rand()
		x := mat.NewDense(n, dim, nil)
		for i := range n {
			for j := range dim {
				x.Set(i, j, 4*rng.NormFloat64())
			}
		}
		return x
	}
	for _, c := range []flowstest.Distribution{
		{Name: "GMM/dim=1/K=3", Init: gmm1D.init(), Dim: 1},
		{Name: "GMM/dim=2/K=3", Init: gmm2D.init(), Dim: 2},
		{Name: "GMM/dim=2/K=3/wide", Init: gmm2D.init(), Dim: 2, Inputs: wide, Rows: 8},
		{Name: "GMM/dim=4/K=2", Init: gmm4D.init(), Dim: 4},
		{Name: "GMM/dim=2/K=1", Init: flows.GMM(gmm2D.means[1:2], gmm2D.covs[1:2], []float64{1}), Dim: 2},
		{Name: "GMMRandom/dim=1/K=2", Init: flows.GMMRandom(2), Dim: 1},
		{Name: "GMMRandom/dim=3/K=4", Init: flows.GMMRandom(4), Dim: 3},
		{Name: "Flow/Shuffle/GMM/dim=2", Init: flows.Flow(flows.Shuffle(), gmm2D.init()), Dim: 2},
	} {
		flowstest.TestDistribution(t, c)
	}
}

// TestGMMComponentChoice checks that the sampler picks components with the
// mixture's weights: 10,000 samples from three components 20 standard
// deviations apart are classified by nearest mean (misclassification
// probability below 1e-20), and the counts are tested against the weights
// with a chi-square test at the 0.1% level. The seed is fixed, so a correct
// sampler passes always; sampling with softmax(w) instead of softmax(log w)
// (jax-flows' mistake) gives about (0.43, 0.26, 0.24) and fails by far.
func TestGMMComponentChoice(t *testing.T) {
	weights := []float64{0.7, 0.2, 0.1}
	means := [][]float64{{-20, 0}, {0, 20}, {20, 0}}
	eye := mat.NewSymDense(2, []float64{1, 0, 0, 1})
	p, d, err := flows.GMM(means, []*mat.SymDense{eye, eye, eye}, weights)(flows.NewKey(1), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	s := d.Sample(flows.NewKey(2024), p, n, nil)
	counts := make([]float64, len(weights))
	for i := range n {
		best, bestD := 0, math.Inf(1)
		for c, mu := range means {
			if dd := floats.Distance(s.RawRowView(i), mu, 2); dd < bestD {
				best, bestD = c, dd
			}
		}
		counts[best]++
	}
	chi2 := 0.0
	for c, w := range weights {
		e := n * w
		chi2 += (counts[c] - e) * (counts[c] - e) / e
	}
	crit := distuv.ChiSquared{K: float64(len(weights) - 1)}.Quantile(1 - 1e-3)
	t.Logf("counts %v, chi-square %.2f (critical %.2f)", counts, chi2, crit)
	if chi2 > crit {
		t.Errorf("component counts %v for weights %v: chi-square %.1f exceeds %.1f", counts, weights, chi2, crit)
	}
}

// TestGMMLogPDFMatchesIndependent compares the log density with a mixture
// computed independently, without Cholesky factors or triangular solves:
// log N = −½ (x−μ)ᵀ Σ⁻¹ (x−μ) − ½ log det Σ − (d/2) log 2π with Σ⁻¹ and
// log det Σ from gonum's LU-based mat.Inverse and mat.LogDet, summed with
// floats.LogSumExp. (gonum's distmv.Normal would be the natural reference,
// but package distmv imports golang.org/x/tools, which this module's go.sum
// does not list.)
func TestGMMLogPDFMatchesIndependent(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    mixture
		pts  [][]float64
	}{
		{"dim=1", gmm1D, [][]float64{{0}, {-3.2}, {2.5}, {7}, {-30}}},
		{"dim=2", gmm2D, [][]float64{{0, 0}, {-3, -2}, {2.5, 2}, {5, -6}, {-10, 12}}},
		{"dim=4", gmm4D, [][]float64{{0, 0, 0, 0}, {1, -2, 0.5, 3}, gmm4D.means[1], {-6, 4, 5, -3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dim := len(tc.m.means[0])
			p, d, err := tc.m.init()(flows.NewKey(1), dim, 0)
			if err != nil {
				t.Fatal(err)
			}
			logN := func(c int, pt []float64) float64 {
				var prec mat.Dense
				if err := prec.Inverse(tc.m.covs[c]); err != nil {
					t.Fatalf("covariance %d: %v", c, err)
				}
				logDet, sign := mat.LogDet(tc.m.covs[c])
				if sign <= 0 {
					t.Fatalf("covariance %d has determinant sign %g", c, sign)
				}
				diff := mat.NewVecDense(dim, nil)
				diff.SubVec(mat.NewVecDense(dim, pt), mat.NewVecDense(dim, tc.m.means[c]))
				q := mat.Inner(diff, &prec, diff)
				return -0.5*q - 0.5*logDet - 0.5*float64(dim)*math.Log(2*math.Pi)
			}
			x := mat.NewDense(len(tc.pts), dim, nil)
			for i, pt := range tc.pts {
				x.SetRow(i, pt)
			}
			got := d.LogPDF(p, x, nil)
			for i, pt := range tc.pts {
				terms := make([]float64, len(tc.m.weights))
				for c, w := range tc.m.weights {
					terms[c] = math.Log(w) + logN(c, pt)
				}
				want := floats.LogSumExp(terms)
				// Two factorisations of the same well-conditioned
				// covariances: rounding only, relative to |log p|.
				if math.Abs(got[i]-want) > 1e-10*math.Max(1, math.Abs(want)) {
					t.Errorf("log p(%v) = %.15g, independent mixture gives %.15g", pt, got[i], want)
				}
			}
			// In one dimension, also against the textbook density.
			if dim == 1 {
				for i, pt := range tc.pts {
					s := 0.0
					for c, w := range tc.m.weights {
						sd := math.Sqrt(tc.m.covs[c].At(0, 0))
						s += w * distuv.Normal{Mu: tc.m.means[c][0], Sigma: sd}.Prob(pt[0])
					}
					if math.Abs(got[i]-math.Log(s)) > 1e-10*math.Max(1, math.Abs(got[i])) {
						t.Errorf("log p(%g) = %.15g, distuv mixture gives %.15g", pt[0], got[i], math.Log(s))
					}
				}
			}
		})
	}
}

// TestGMMComponents checks the parameter layout: the mixture read back from
// the initial parameters is the one given.
func TestGMMComponents(t *testing.T) {
	for _, m := range []mixture{gmm1D, gmm2D, gmm4D} {
		dim := len(m.means[0])
		p, _, err := m.init()(flows.NewKey(1), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(m.weights) * (1 + dim + dim*(dim+1)/2); len(p) != want {
			t.Fatalf("dim %d: %d parameters, want %d", dim, len(p), want)
		}
		means, covs, weights := flows.GMMComponents(p, len(m.weights), dim)
		// Round trips through log/exp and a Cholesky factorisation.
		const tol = 1e-12
		if !floats.EqualApprox(weights, m.weights, tol) {
			t.Errorf("dim %d: weights %v, want %v", dim, weights, m.weights)
		}
		for c := range m.weights {
			if !floats.EqualApprox(means[c], m.means[c], tol) {
				t.Errorf("dim %d: mean %d is %v, want %v", dim, c, means[c], m.means[c])
			}
			if !mat.EqualApprox(covs[c], m.covs[c], tol) {
				t.Errorf("dim %d: covariance %d is %v, want %v", dim, c, mat.Formatted(covs[c]), mat.Formatted(m.covs[c]))
			}
		}
	}
}

func TestGMMInitErrors(t *testing.T) {
	eye := mat.NewSymDense(2, []float64{1, 0, 0, 1})
	good := mixture{
		means:   [][]float64{{0, 0}, {1, 1}},
		covs:    []*mat.SymDense{eye, eye},
		weights: []float64{0.5, 0.5},
	}
	with := func(f func(m *mixture)) flows.DistInitFunc {
		m := mixture{
			means:   [][]float64{{0, 0}, {1, 1}},
			covs:    []*mat.SymDense{eye, eye},
			weights: []float64{0.5, 0.5},
		}
		f(&m)
		return m.init()
	}
	if _, _, err := good.init()(flows.NewKey(1), 2, 0); err != nil {
		t.Fatalf("a valid mixture failed: %v", err)
	}
	for _, tc := range []struct {
		name string
		init flows.DistInitFunc
		dim  int
		want string
	}{
		{"not positive definite", with(func(m *mixture) {
			m.covs[1] = mat.NewSymDense(2, []float64{1, 2, 2, 1}) // eigenvalues 3, −1
		}), 2, "not positive definite"},
		{"singular", with(func(m *mixture) {
			m.covs[0] = mat.NewSymDense(2, []float64{1, 1, 1, 1})
		}), 2, "not positive definite"},
		{"negative weight", with(func(m *mixture) { m.weights = []float64{1.2, -0.2} }), 2, "negative"},
		{"zero weight", with(func(m *mixture) { m.weights = []float64{1, 0} }), 2, "weight 1 is 0"},
		{"weights sum to 0.9", with(func(m *mixture) { m.weights = []float64{0.5, 0.4} }), 2, "sum to 0.9"},
		{"NaN weight", with(func(m *mixture) { m.weights[0] = math.NaN() }), 2, "finite"},
		{"infinite weight", with(func(m *mixture) { m.weights[0] = math.Inf(1) }), 2, "finite"},
		{"NaN mean", with(func(m *mixture) { m.means[1] = []float64{0, math.NaN()} }), 2, "non-finite"},
		{"NaN covariance", with(func(m *mixture) {
			m.covs[0] = mat.NewSymDense(2, []float64{1, math.NaN(), math.NaN(), 1})
		}), 2, "non-finite"},
		{"mean of wrong length", with(func(m *mixture) { m.means[0] = []float64{0, 0, 0} }), 2, "mean 0 has length 3"},
		{"covariance of wrong size", with(func(m *mixture) { m.covs[1] = mat.NewSymDense(3, nil) }), 2, "covariance 1 is 3×3"},
		{"init at another dim", good.init(), 3, "want dimension 3"},
		{"nil covariance", with(func(m *mixture) { m.covs[0] = nil }), 2, "nil"},
		{"too few means", with(func(m *mixture) { m.means = m.means[:1] }), 2, "as many"},
		{"too many covariances", with(func(m *mixture) { m.covs = append(m.covs, eye) }), 2, "as many"},
		{"no components", flows.GMM(nil, nil, nil), 2, "no components"},
		{"dim 0", good.init(), 0, "dimension 0"},
		{"GMMRandom(0)", flows.GMMRandom(0), 2, "0 components"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := tc.init(flows.NewKey(1), tc.dim, 0)
			if err == nil {
				t.Fatalf("no error (parameters %v)", p)
			}
			if !strings.HasPrefix(err.Error(), "flows: GMM: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want one prefixed \"flows: GMM: \" mentioning %q", err, tc.want)
			}
		})
	}
}

// TestGMMCopiesArguments checks that changing the arguments after GMM does
// not change the mixture it makes.
func TestGMMCopiesArguments(t *testing.T) {
	means := [][]float64{{1}, {2}}
	covs := []*mat.SymDense{mat.NewSymDense(1, []float64{1}), mat.NewSymDense(1, []float64{2})}
	weights := []float64{0.25, 0.75}
	init := flows.GMM(means, covs, weights)
	p0, _, err := init(flows.NewKey(1), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	means[0][0], weights[0] = 100, -1
	covs[1].SetSym(0, 0, -5)
	p1, _, err := init(flows.NewKey(1), 1, 0)
	if err != nil || !floats.Equal(p0, p1) {
		t.Errorf("changing the arguments changed the init: %v (err %v), was %v", p1, err, p0)
	}
}

// TestGMMFarAway checks that a point 1e3 from every component has a finite
// log density (where exp of every component's term underflows) and finite
// gradients, with the right asymptotics.
func TestGMMFarAway(t *testing.T) {
	p, d, err := gmm2D.init()(flows.NewKey(1), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(2, 2, []float64{1e3, -1e3, -1e3, 5e2})
	lp, back := d.LogPDFVJP(p, x, nil)
	dp := make(flows.Params, len(p))
	dx := back([]float64{1, 1}, dp, nil)
	for i, v := range lp {
		// ½‖u‖² is at least ½(1e3)²/λ_max(Σ) with λ_max < 2 for every
		// component: the value is large, negative and finite.
		if math.IsNaN(v) || math.IsInf(v, 0) || v > -1e5 {
			t.Errorf("log p of far point %d = %g, want finite and below −1e5", i, v)
		}
	}
	for _, v := range append(dp, dx.RawMatrix().Data...) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("non-finite gradient at far points: dx %v, dp %v", dx.RawMatrix().Data, dp)
		}
	}
}

func TestGMMMisuse(t *testing.T) {
	p, d, err := gmm2D.init()(flows.NewKey(1), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(1, 2, nil)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"short params LogPDF", func() { d.LogPDF(p[1:], x, nil) }},
		{"short params Sample", func() { d.Sample(flows.NewKey(1), p[1:], 3, nil) }},
		{"negative n", func() { d.Sample(flows.NewKey(1), p, -1, nil) }},
		{"short dp", func() {
			_, back := d.LogPDFVJP(p, x, nil)
			back([]float64{1}, make(flows.Params, len(p)-1), nil)
		}},
		{"GMMComponents wrong length", func() { flows.GMMComponents(p, 2, 2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if msg, _ := r.(string); !strings.HasPrefix(msg, "flows: GMM: ") {
					t.Errorf("panic %v, want one prefixed \"flows: GMM: \"", r)
				}
			}()
			tc.f()
		})
	}
}
