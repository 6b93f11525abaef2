package flowstest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Distribution describes a distribution to check.
type Distribution struct {
	Name string
	Init flows.DistInitFunc
	Dim  int

	// ContextDim, Rows, Inputs, Contexts and Perturb are as for Bijection.
	ContextDim int
	Rows       int
	Inputs     func(key flows.Key, n, dim int) *mat.Dense
	Contexts   func(key flows.Key, n, contextDim int) *mat.Dense
	Perturb    func(key flows.Key, p flows.Params) flows.Params

	// Box is the half-width of the square [−Box, Box]^Dim over which a 1-D
	// or 2-D density is integrated and its samples binned (default 8), at
	// the first test context. The mass outside it must be below 1e-3.
	Box float64
}

const (
	// massTol bounds |∫p − 1| over the box: the mass outside the box
	// (required below 1e-3) plus the quadrature error, which for the grids
	// below is under 1e-4 for densities whose features are wider than a
	// few grid cells (0.004·Box in 1-D, 0.02·Box in 2-D).
	massTol = 2e-3

	// gofSamples and gofLevel: the goodness-of-fit tests draw this many
	// samples at a fixed seed and reject at this level, so a correct
	// sampler fails with probability 0.1% (and, the seed being fixed,
	// either always or never), while a sampler with a wrong mixture weight
	// or scale fails by a wide margin.
	gofSamples = 4000
	gofLevel   = 1e-3
)

// TestDistribution runs every distribution check as a subtest of t.
func TestDistribution(t *testing.T, d Distribution) {
	t.Helper()
	run(t, d.Name, distributionChecks(d))
}

// CheckDistribution runs every distribution check and returns their
// failures joined, or nil.
func CheckDistribution(d Distribution) error { return runAll(distributionChecks(d)) }

// distributionChecks returns the checks of d (defaults filled in).
func distributionChecks(d Distribution) []check {
	if d.Rows == 0 {
		d.Rows = 5
	}
	if d.Inputs == nil {
		d.Inputs = normalBatch
	}
	if d.Perturb == nil {
		d.Perturb = defaultPerturb
	}
	if d.Box == 0 {
		d.Box = 8
	}
	p0, dist, err := d.Init(initKey, d.Dim, d.ContextDim)
	if err != nil {
		return []check{{"init", func() error {
			return fmt.Errorf("init at dim %d, context %d: %v", d.Dim, d.ContextDim, err)
		}}}
	}
	r := &distRun{d: d, dist: dist, p0: p0, p: d.Perturb(perturbKey, p0)}
	r.x = d.Inputs(inputKey, d.Rows, d.Dim)
	r.ctx = contexts(d.Contexts, d.Rows, d.ContextDim)
	return append(append(r.callChecks(), r.sampleChecks()...), r.fixedChecks()...)
}

// distRun is one distribution under test: its initial and perturbed
// parameters, test rows and contexts.
type distRun struct {
	d      Distribution
	dist   flows.Distribution
	p0, p  flows.Params
	x, ctx *mat.Dense
}

// sampleCtx is the context of n samples: the test contexts, cycled.
func (r *distRun) sampleCtx(n int) *mat.Dense {
	if r.ctx == nil {
		return nil
	}
	m := mat.NewDense(n, r.d.ContextDim, nil)
	for i := range n {
		m.SetRow(i, r.ctx.RawRowView(i%r.d.Rows))
	}
	return m
}

// callChecks are the checks of the same key, the width, LogPDFVJP, the
// pullback and the inputs left unmodified.
func (r *distRun) callChecks() []check {
	d, dist, p, p0, x, ctx, sampleCtx := r.d, r.dist, r.p, r.p0, r.x, r.ctx, r.sampleCtx
	return []check{
		{"init", func() error {
			p1, _, err := d.Init(initKey, d.Dim, d.ContextDim)
			if err != nil || !slices.Equal(p0, p1) {
				return errors.New("the same key gave different parameters")
			}
			return nil
		}},
		{"width", func() error {
			return panicsWithFlows(func() { dist.LogPDF(p, normalBatch(inputKey, 2, d.Dim+1), sampleCtx(2)) })
		}},
		{"vjp", func() error {
			lp := dist.LogPDF(p, x, ctx)
			if err := finiteVec("LogPDF", lp); err != nil {
				return err
			}
			lp2, _ := dist.LogPDFVJP(p, x, ctx)
			return vecClose("LogPDFVJP vs LogPDF", lp2, lp, exactTol, exactTol)
		}},
		{"pullback", func() error {
			dl := make([]float64, d.Rows)
			rng := cotanKey.Rand()
			for i := range dl {
				dl[i] = rng.NormFloat64()
			}
			_, back := dist.LogPDFVJP(p, x, ctx)
			dp, dc := sentinelParams(len(p)), sentinelContext(d.Rows, d.ContextDim)
			dx := back(dl, dp, dc)
			unsentinel(dp)
			unsentinelContext(dc)
			loss := func(p flows.Params, x, c *mat.Dense) float64 { return floatsDot(dist.LogPDF(p, x, c), dl) }
			return gradCheck("LogPDF", loss, p, x, ctx, dx, dc, dp, nil)
		}},
		{"unmodified", func() error {
			x0, c0, pc := mat.DenseCopyOf(x), denseOrNil(ctx), slices.Clone(p)
			lp, back := dist.LogPDFVJP(p, x, ctx)
			dl := slices.Clone(lp)
			back(dl, make(flows.Params, len(p)), zeroGrad(d.Rows, d.ContextDim))
			dist.LogPDF(p, x, ctx)
			dist.Sample(flows.NewKey(9), p, d.Rows, ctx)
			if dist.Latent != nil {
				dist.Latent(p, x, ctx)
			}
			if !mat.Equal(x0, x) || !equalMats(c0, ctx) || !slices.Equal(pc, p) || !slices.Equal(dl, lp) {
				return errors.New("a call modified its inputs, context, parameters or gradient")
			}
			return nil
		}},
	}
}

// sampleChecks are the checks of sampling, the latent rows and concurrent
// use.
func (r *distRun) sampleChecks() []check {
	d, dist, p, x, ctx, sampleCtx := r.d, r.dist, r.p, r.x, r.ctx, r.sampleCtx
	return []check{
		{"sample", func() error {
			s1 := dist.Sample(flows.NewKey(7), p, 11, sampleCtx(11))
			s2 := dist.Sample(flows.NewKey(7), p, 11, sampleCtx(11))
			s3 := dist.Sample(flows.NewKey(8), p, 11, sampleCtx(11))
			if r, c := s1.Dims(); r != 11 || c != d.Dim {
				return fmt.Errorf("Sample(n=11) is %d×%d, want 11×%d", r, c, d.Dim)
			}
			if err := finiteMat("sample", s1); err != nil {
				return err
			}
			if !mat.Equal(s1, s2) {
				return errors.New("the same key gave different samples")
			}
			if mat.Equal(s1, s3) {
				return errors.New("different keys gave the same samples")
			}
			return nil
		}},
		{"latent", func() error {
			if dist.Latent == nil {
				return nil
			}
			z := dist.Latent(p, x, ctx)
			if r, c := z.Dims(); r != d.Rows || c != d.Dim {
				return fmt.Errorf("the latent rows are %d×%d, want %d×%d", r, c, d.Rows, d.Dim)
			}
			return finiteMat("Latent", z)
		}},
		{"concurrent", func() error {
			dl := make([]float64, d.Rows)
			for i := range dl {
				dl[i] = 1
			}
			once := func() ([]float64, *mat.Dense, *mat.Dense, flows.Params, *mat.Dense) {
				lp, back := dist.LogPDFVJP(p, x, ctx)
				dp, dc := make(flows.Params, len(p)), zeroGrad(d.Rows, d.ContextDim)
				dx := back(dl, dp, dc)
				return lp, dx, dc, dp, dist.Sample(flows.NewKey(7), p, 5, sampleCtx(5))
			}
			l0, dx0, dc0, dp0, s0 := once()
			return concurrently(func() bool {
				l, dx, dc, dp, s := once()
				return slices.Equal(l, l0) && mat.Equal(dx, dx0) && equalMats(dc, dc0) && slices.Equal(dp, dp0) && mat.Equal(s, s0)
			})
		}},
		{"prepared", func() error { return checkPreparedDist(d, dist, p) }},
	}
}

// fixedChecks are, for 1 or 2 columns, the integral and goodness-of-fit
// checks at one fixed context.
func (r *distRun) fixedChecks() []check {
	d, dist, p, ctx := r.d, r.dist, r.p, r.ctx
	var checks []check
	if d.Dim == 1 || d.Dim == 2 {
		var row []float64
		if ctx != nil {
			row = mat.Row(nil, 0, ctx)
		}
		fixed := fixContext(dist, row)
		integral, gof := integral1D, ks1D
		if d.Dim == 2 {
			integral, gof = integral2D, chiSquare2D
		}
		checks = append(checks,
			check{"integral", func() error { return integral(fixed, p, d.Box) }},
			check{"goodnessoffit", func() error { return gof(fixed, p, d.Box) }})
	}
	return checks
}

// fixedDist is a distribution at one fixed context: its log density and
// sampler take no context.
type fixedDist struct {
	logPDF func(p flows.Params, x *mat.Dense) []float64
	sample func(key flows.Key, p flows.Params, n int) *mat.Dense
}

// fixContext returns d at the fixed context row c (nil for none).
func fixContext(d flows.Distribution, c []float64) fixedDist {
	repeat := func(n int) *mat.Dense {
		if c == nil {
			return nil
		}
		m := mat.NewDense(n, len(c), nil)
		for i := 0; i < n; i++ {
			m.SetRow(i, c)
		}
		return m
	}
	return fixedDist{
		logPDF: func(p flows.Params, x *mat.Dense) []float64 {
			n, _ := x.Dims()
			return d.LogPDF(p, x, repeat(n))
		},
		sample: func(key flows.Key, p flows.Params, n int) *mat.Dense { return d.Sample(key, p, n, repeat(n)) },
	}
}

// grid1D returns the log density at the midpoints of n equal cells of
// [−box, box], and the cell width.
func grid1D(dist fixedDist, p flows.Params, box float64, n int) ([]float64, float64) {
	h := 2 * box / float64(n)
	x := mat.NewDense(n, 1, nil)
	for i := 0; i < n; i++ {
		x.Set(i, 0, -box+(float64(i)+0.5)*h)
	}
	return dist.logPDF(p, x), h
}

func integral1D(dist fixedDist, p flows.Params, box float64) error {
	lp, h := grid1D(dist, p, box, 4000)
	mass := 0.0
	for _, v := range lp {
		mass += math.Exp(v) * h
	}
	if math.Abs(mass-1) > massTol {
		return fmt.Errorf("density integrates to %.6f over [−%g, %g], want 1", mass, box, box)
	}
	return nil
}

// ks1D compares samples with the CDF obtained by integrating the density:
// the Kolmogorov–Smirnov statistic must be below its critical value.
func ks1D(dist fixedDist, p flows.Params, box float64) error {
	const cells = 4000
	lp, h := grid1D(dist, p, box, cells)
	cdf := make([]float64, cells+1) // cdf[i] = P(X < −box + i·h), up to the outside mass
	for i, v := range lp {
		cdf[i+1] = cdf[i] + math.Exp(v)*h
	}
	s := dist.sample(flows.NewKey(42), p, gofSamples)
	xs := mat.Col(nil, 0, s)
	sort.Float64s(xs)
	F := func(x float64) float64 {
		t := (x + box) / h
		switch {
		case t <= 0:
			return 0
		case t >= cells:
			return cdf[cells]
		}
		i := int(t)
		return cdf[i] + (t-float64(i))*(cdf[min(i+1, cells)]-cdf[i])
	}
	n := float64(len(xs))
	D := 0.0
	for i, x := range xs {
		f := F(x)
		D = math.Max(D, math.Max(float64(i+1)/n-f, f-float64(i)/n))
	}
	// Asymptotic critical value of √n·D at level α: sqrt(−ln(α/2)/2),
	// 1.95 at 0.1%, plus the CDF's own error (massTol).
	crit := math.Sqrt(-math.Log(gofLevel/2)/2)/math.Sqrt(n) + massTol
	if D > crit {
		return fmt.Errorf("Kolmogorov–Smirnov statistic %.4f over %d samples exceeds %.4f", D, len(xs), crit)
	}
	return nil
}

const grid2D = 400 // quadrature points per axis

func integral2D(dist fixedDist, p flows.Params, box float64) error {
	cell := cellMass2D(dist, p, box, 1)
	if math.Abs(cell[0]-1) > massTol {
		return fmt.Errorf("density integrates to %.6f over [−%g, %g]², want 1", cell[0], box, box)
	}
	return nil
}

// cellMass2D integrates the density over a bins×bins partition of the box by
// the midpoint rule on a grid2D×grid2D grid; cells are numbered row-major
// with the first coordinate as the row.
func cellMass2D(dist fixedDist, p flows.Params, box float64, bins int) []float64 {
	h := 2 * box / grid2D
	x := mat.NewDense(grid2D*grid2D, 2, nil)
	for i := 0; i < grid2D; i++ {
		for j := 0; j < grid2D; j++ {
			x.Set(i*grid2D+j, 0, -box+(float64(i)+0.5)*h)
			x.Set(i*grid2D+j, 1, -box+(float64(j)+0.5)*h)
		}
	}
	lp := dist.logPDF(p, x)
	mass := make([]float64, bins*bins)
	for i := 0; i < grid2D; i++ {
		for j := 0; j < grid2D; j++ {
			mass[(i*bins/grid2D)*bins+j*bins/grid2D] += math.Exp(lp[i*grid2D+j]) * h * h
		}
	}
	return mass
}

// chiSquare2D bins samples on a 16×16 grid over the box (plus one cell for
// outside it) and compares the counts with the density's cell masses.
func chiSquare2D(dist fixedDist, p flows.Params, box float64) error {
	const bins = 16
	mass := cellMass2D(dist, p, box, bins)
	s := dist.sample(flows.NewKey(42), p, gofSamples)
	counts := make([]float64, bins*bins+1)
	for i := 0; i < gofSamples; i++ {
		a, b := s.At(i, 0), s.At(i, 1)
		if math.Abs(a) >= box || math.Abs(b) >= box {
			counts[bins*bins]++
			continue
		}
		ia := int((a + box) / (2 * box) * bins)
		ib := int((b + box) / (2 * box) * bins)
		counts[ia*bins+ib]++
	}
	inside := 0.0
	for _, m := range mass {
		inside += m
	}
	expected := append(mass, math.Max(0, 1-inside))
	// Pool cells with fewer than 5 expected samples, as the chi-square
	// approximation requires.
	var chi2, poolE, poolC float64
	dof := -1
	for i, e := range expected {
		e *= gofSamples
		if e < 5 {
			poolE += e
			poolC += counts[i]
			continue
		}
		chi2 += (counts[i] - e) * (counts[i] - e) / e
		dof++
	}
	if poolE > 0 {
		chi2 += (poolC - poolE) * (poolC - poolE) / math.Max(poolE, 1)
		dof++
	}
	if dof < 1 {
		return errors.New("too few populated cells for a chi-square test")
	}
	crit := distuv.ChiSquared{K: float64(dof)}.Quantile(1 - gofLevel)
	if chi2 > crit {
		return fmt.Errorf("chi-square %.1f on %d degrees of freedom exceeds %.1f", chi2, dof, crit)
	}
	return nil
}

// checkPreparedDist checks PrepareDistribution: its LogPDF, Sample and
// Latent give the bits of the unprepared ones at the parameters it was
// prepared with, on a batch of several row blocks, whatever happens to
// those parameters afterwards, and under concurrent calls.
func checkPreparedDist(d Distribution, dist flows.Distribution, p flows.Params) error {
	q := slices.Clone(p)
	pd := flows.PrepareDistribution(dist, q)
	for i := range q {
		q[i] = math.NaN() // a prepared distribution must not see it
	}
	if pd.LogPDF == nil || pd.Sample == nil || (pd.Latent == nil) != (dist.Latent == nil) {
		return errors.New("PrepareDistribution gave nil functions where the distribution has them")
	}
	x := d.Inputs(inputKey, preparedRows, d.Dim)
	ctx := contexts(d.Contexts, preparedRows, d.ContextDim)
	if !sameBits(pd.LogPDF(x, ctx), dist.LogPDF(p, x, ctx)) {
		return errors.New("the prepared LogPDF differs from LogPDF")
	}
	if !sameBits(denseData(pd.Sample(flows.NewKey(7), preparedRows, ctx)), denseData(dist.Sample(flows.NewKey(7), p, preparedRows, ctx))) {
		return errors.New("the prepared Sample differs from Sample")
	}
	if dist.Latent != nil && !sameBits(denseData(pd.Latent(x, ctx)), denseData(dist.Latent(p, x, ctx))) {
		return errors.New("the prepared Latent differs from Latent")
	}
	want := pd.LogPDF(x, ctx)
	return concurrently(func() bool { return sameBits(pd.LogPDF(x, ctx), want) })
}
