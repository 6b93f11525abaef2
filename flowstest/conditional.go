package flowstest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
)

// CondBijection describes a conditional bijection to check. The suite runs
// the checks of Bijection given a context batch c (ContextDim columns, one
// row per example), and also checks the gradient with respect to c:
//
//   - init, width (of x and of c), roundtrip given c, vjp;
//   - jacobian: the log-det equals log|det ∂z/∂x| by finite differences in
//     x, at fixed c;
//   - pullback (and inversepullback): dx, dc and dparams of
//     L = Σ dz∘z + Σ dl∘logDet against central finite differences in x, c
//     and the parameters, adding into dp;
//   - unmodified (x, c, parameters and gradient arguments), deterministic,
//     concurrent, initfromdata.
type CondBijection struct {
	Name       string
	Init       flows.CondInitFunc
	Dim        int
	ContextDim int

	// Rows, Inputs and Perturb are as for Bijection. Contexts draws the
	// context batch (default: standard normal entries; one-hot labels are
	// a fine choice too, the finite differences move them off the simplex
	// harmlessly).
	Rows     int
	Inputs   func(key flows.Key, n, dim int) *mat.Dense
	Contexts func(key flows.Key, n, contextDim int) *mat.Dense
	Perturb  func(key flows.Key, p flows.Params) flows.Params
}

// CondDistribution describes a conditional distribution to check: init,
// width, vjp, the pullback of the log density against finite differences in
// x, c and the parameters, unmodified inputs, sampling (one row per context
// row, deterministic per key), concurrency and, in one and two dimensions,
// for one fixed context, that the density integrates to one and that the
// samples given that context follow it.
type CondDistribution struct {
	Name       string
	Init       flows.CondDistInitFunc
	Dim        int
	ContextDim int

	// Rows, Inputs, Contexts, Perturb and Box are as for CondBijection and
	// Distribution.
	Rows     int
	Inputs   func(key flows.Key, n, dim int) *mat.Dense
	Contexts func(key flows.Key, n, contextDim int) *mat.Dense
	Perturb  func(key flows.Key, p flows.Params) flows.Params
	Box      float64
}

// contextKey draws the test contexts; fixed, like the suite's other keys.
var contextKey = flows.NewKey(6)

// TestCondBijection runs every conditional bijection check as a subtest of t.
func TestCondBijection(t *testing.T, b CondBijection) {
	t.Helper()
	run(t, b.Name, condBijectionChecks(b))
}

// CheckCondBijection runs every conditional bijection check and returns
// their failures joined, or nil.
func CheckCondBijection(b CondBijection) error { return runAll(condBijectionChecks(b)) }

// TestCondDistribution runs every conditional distribution check as a
// subtest of t.
func TestCondDistribution(t *testing.T, d CondDistribution) {
	t.Helper()
	run(t, d.Name, condDistributionChecks(d))
}

// CheckCondDistribution runs every conditional distribution check and
// returns their failures joined, or nil.
func CheckCondDistribution(d CondDistribution) error { return runAll(condDistributionChecks(d)) }

type condCase struct {
	CondBijection
	p    flows.Params
	bj   flows.CondBijection
	x, c *mat.Dense
}

func condBijectionChecks(b CondBijection) []check {
	if b.Rows == 0 {
		b.Rows = 5
	}
	if b.Inputs == nil {
		b.Inputs = normalBatch
	}
	if b.Contexts == nil {
		b.Contexts = normalBatch
	}
	if b.Perturb == nil {
		b.Perturb = defaultPerturb
	}
	p0, bj, err := b.Init(initKey, b.Dim, b.ContextDim)
	if err != nil {
		return []check{{"init", func() error {
			return fmt.Errorf("init at dim %d, context %d: %v", b.Dim, b.ContextDim, err)
		}}}
	}
	c := &condCase{CondBijection: b, p: b.Perturb(perturbKey, p0), bj: bj,
		x: b.Inputs(inputKey, b.Rows, b.Dim), c: b.Contexts(contextKey, b.Rows, b.ContextDim)}
	checks := []check{
		{"init", func() error {
			p1, _, err := b.Init(initKey, b.Dim, b.ContextDim)
			if err != nil {
				return fmt.Errorf("second init failed: %v", err)
			}
			if !slices.Equal(p0, p1) {
				return errors.New("the same key gave different parameters")
			}
			return finiteVec("initial parameters", p0)
		}},
		{"width", c.checkWidth},
		{"roundtrip", c.checkRoundTrip},
		{"vjp", c.checkVJPAgrees},
		{"jacobian", c.checkJacobian},
		{"pullback", func() error { return c.checkPullback(false) }},
		{"unmodified", c.checkUnmodified},
		{"deterministic", c.checkDeterministic},
		{"concurrent", c.checkConcurrent},
		{"initfromdata", c.checkInitFromData},
	}
	if bj.InverseVJP != nil {
		checks = append(checks, check{"inversepullback", func() error { return c.checkPullback(true) }})
	}
	return checks
}

func (c *condCase) checkWidth() error {
	wrongX := normalBatch(inputKey, c.Rows, c.Dim+1)
	wrongC := normalBatch(contextKey, c.Rows, c.ContextDim+1)
	fewC := normalBatch(contextKey, c.Rows+1, c.ContextDim)
	var errs []error
	for _, f := range []struct {
		name string
		fn   func()
	}{
		{"Direct on a batch of the wrong width", func() { c.bj.Direct(c.p, wrongX, c.c) }},
		{"Inverse on a batch of the wrong width", func() { c.bj.Inverse(c.p, wrongX, c.c) }},
		{"DirectVJP on a batch of the wrong width", func() { c.bj.DirectVJP(c.p, wrongX, c.c) }},
		{"Direct with a context of the wrong width", func() { c.bj.Direct(c.p, c.x, wrongC) }},
		{"Inverse with a context of the wrong width", func() { c.bj.Inverse(c.p, c.x, wrongC) }},
		{"DirectVJP with a context of the wrong width", func() { c.bj.DirectVJP(c.p, c.x, wrongC) }},
		{"Direct with a context of the wrong length", func() { c.bj.Direct(c.p, c.x, fewC) }},
		{"Direct with a nil context", func() { c.bj.Direct(c.p, c.x, nil) }},
	} {
		if err := panicsWithFlows(f.fn); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", f.name, err))
		}
	}
	return errors.Join(errs...)
}

func (c *condCase) checkRoundTrip() error {
	z, ld := c.bj.Direct(c.p, c.x, c.c)
	if err := finiteMat("Direct output", z); err != nil {
		return err
	}
	if err := finiteVec("Direct log-det", ld); err != nil {
		return err
	}
	if err := shape("Direct", z, ld, c.Rows, c.Dim); err != nil {
		return err
	}
	x2, ild := c.bj.Inverse(c.p, z, c.c)
	if err := shape("Inverse", x2, ild, c.Rows, c.Dim); err != nil {
		return err
	}
	if err := matClose("Inverse(Direct(x; c); c) vs x", x2, c.x, 0, roundTripTol); err != nil {
		return err
	}
	neg := make([]float64, len(ld))
	for i, v := range ld {
		neg[i] = -v
	}
	return vecClose("inverse log-det vs −direct log-det", ild, neg, roundTripTol, roundTripTol)
}

func (c *condCase) checkVJPAgrees() error {
	z, ld := c.bj.Direct(c.p, c.x, c.c)
	z2, ld2, _ := c.bj.DirectVJP(c.p, c.x, c.c)
	if err := matClose("DirectVJP z vs Direct z", z2, z, exactTol, exactTol); err != nil {
		return err
	}
	if err := vecClose("DirectVJP log-det vs Direct log-det", ld2, ld, exactTol, exactTol); err != nil {
		return err
	}
	if c.bj.InverseVJP != nil {
		x, ild := c.bj.Inverse(c.p, z, c.c)
		x2, ild2, _ := c.bj.InverseVJP(c.p, z, c.c)
		if err := matClose("InverseVJP x vs Inverse x", x2, x, exactTol, exactTol); err != nil {
			return err
		}
		if err := vecClose("InverseVJP log-det vs Inverse log-det", ild2, ild, exactTol, exactTol); err != nil {
			return err
		}
	}
	return nil
}

// checkJacobian compares the log-det with log|det ∂z/∂x| by central
// differences in x, row by row, with the row's context held fixed.
func (c *condCase) checkJacobian() error {
	return jacobianLogDets(c.x, func(i int, row *mat.Dense) (*mat.Dense, []float64) {
		return c.bj.Direct(c.p, row, mat.NewDense(1, c.ContextDim, mat.Row(nil, i, c.c)))
	})
}

// checkPullback compares the pullback of Direct (or Inverse) with central
// finite differences of L = Σ dz∘z + Σ dl∘logDet in x, c and the parameters.
func (c *condCase) checkPullback(inverse bool) error {
	fwd, vjp, in := c.bj.Direct, c.bj.DirectVJP, c.x
	what := "Direct"
	if inverse {
		fwd, vjp, what = c.bj.Inverse, c.bj.InverseVJP, "Inverse"
		in, _ = c.bj.Direct(c.p, c.x, c.c) // check where the inverse maps back to the test batch
	}
	rng := cotanKey.Rand()
	dz := normalBatch(cotanKey, c.Rows, c.Dim)
	dl := make([]float64, c.Rows)
	for i := range dl {
		dl[i] = rng.NormFloat64()
	}
	loss := func(p flows.Params, x, ctx *mat.Dense) float64 {
		z, ld := fwd(p, x, ctx)
		return dot(z, dz) + floatsDot(ld, dl)
	}
	_, _, back := vjp(c.p, in, c.c)
	const sentinel = 0.5
	dp := make(flows.Params, len(c.p))
	for i := range dp {
		dp[i] = sentinel
	}
	dx, dc := back(dz, dl, dp)
	for i := range dp {
		dp[i] -= sentinel // the pullback must add into dp
	}
	return condGradCheck(what, loss, c.p, in, c.c, dx, dc, dp)
}

// condGradCheck compares dx, dc and dp with central finite differences of
// loss at (p, x, c): every entry of x and c, and up to maxParamChecks
// parameters.
func condGradCheck(what string, loss func(flows.Params, *mat.Dense, *mat.Dense) float64, p flows.Params, x, c, dx, dc *mat.Dense, dp flows.Params) error {
	if dx == nil || dc == nil {
		return fmt.Errorf("%s pullback returned a nil dx or dc", what)
	}
	if r, cc := dx.Dims(); !sameDims(x, r, cc) {
		return fmt.Errorf("%s pullback returned dx of %d×%d, want the batch's shape", what, r, cc)
	}
	if r, cc := dc.Dims(); !sameDims(c, r, cc) {
		return fmt.Errorf("%s pullback returned dc of %d×%d, want the context's shape", what, r, cc)
	}
	var errs []error
	xs, cs := mat.DenseCopyOf(x), mat.DenseCopyOf(c)
	for _, v := range []struct {
		name string
		m    *mat.Dense
		grad *mat.Dense
	}{{"x", xs, dx}, {"c", cs, dc}} {
		n, d := v.m.Dims()
		for i := 0; i < n; i++ {
			for j := 0; j < d; j++ {
				a := v.m.At(i, j)
				h := fdStep * math.Max(1, math.Abs(a))
				v.m.Set(i, j, a+h)
				lp := loss(p, xs, cs)
				v.m.Set(i, j, a-h)
				lm := loss(p, xs, cs)
				v.m.Set(i, j, a)
				if err := gradClose(fmt.Sprintf("%s: d/d%s[%d,%d]", what, v.name, i, j), v.grad.At(i, j), (lp-lm)/(2*h)); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	ps := slices.Clone(p)
	for _, k := range pick(len(p)) {
		v := ps[k]
		h := fdStep * math.Max(1, math.Abs(v))
		ps[k] = v + h
		lp := loss(ps, x, c)
		ps[k] = v - h
		lm := loss(ps, x, c)
		ps[k] = v
		if err := gradClose(fmt.Sprintf("%s: d/dparams[%d]", what, k), dp[k], (lp-lm)/(2*h)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more", len(errs)-10))
	}
	return errors.Join(errs...)
}

func sameDims(m *mat.Dense, r, c int) bool {
	mr, mc := m.Dims()
	return mr == r && mc == c
}

func (c *condCase) checkUnmodified() error {
	x0, c0, p0 := mat.DenseCopyOf(c.x), mat.DenseCopyOf(c.c), slices.Clone(c.p)
	z, ld, back := c.bj.DirectVJP(c.p, c.x, c.c)
	c.bj.Direct(c.p, c.x, c.c)
	dz, dl := mat.DenseCopyOf(z), slices.Clone(ld)
	back(dz, dl, make(flows.Params, len(c.p)))
	if !mat.Equal(dz, z) || !slices.Equal(dl, ld) {
		return errors.New("the Direct pullback modified its gradient arguments")
	}
	zc := mat.DenseCopyOf(z)
	c.bj.Inverse(c.p, z, c.c)
	if c.bj.InverseVJP != nil {
		x, ild, iback := c.bj.InverseVJP(c.p, z, c.c)
		dx, dil := mat.DenseCopyOf(x), slices.Clone(ild)
		iback(dx, dil, make(flows.Params, len(c.p)))
		if !mat.Equal(dx, x) || !slices.Equal(dil, ild) {
			return errors.New("the Inverse pullback modified its gradient arguments")
		}
	}
	switch {
	case !mat.Equal(zc, z):
		return errors.New("the Inverse pass modified its input")
	case !mat.Equal(x0, c.x):
		return errors.New("the Direct pass (or DirectVJP) modified its input")
	case !mat.Equal(c0, c.c):
		return errors.New("a pass modified the context")
	case !slices.Equal(p0, c.p):
		return errors.New("a pass modified the parameters")
	}
	return nil
}

func (c *condCase) checkDeterministic() error {
	z1, l1 := c.bj.Direct(c.p, c.x, c.c)
	z2, l2 := c.bj.Direct(c.p, c.x, c.c)
	if !mat.Equal(z1, z2) || !slices.Equal(l1, l2) {
		return errors.New("the Direct pass gave different results on the same input")
	}
	x1, il1 := c.bj.Inverse(c.p, z1, c.c)
	x2, il2 := c.bj.Inverse(c.p, z1, c.c)
	if !mat.Equal(x1, x2) || !slices.Equal(il1, il2) {
		return errors.New("the Inverse pass gave different results on the same input")
	}
	return nil
}

func (c *condCase) checkConcurrent() error {
	dz := normalBatch(cotanKey, c.Rows, c.Dim)
	dl := make([]float64, c.Rows)
	for i := range dl {
		dl[i] = float64(i) - 1.5
	}
	type result struct {
		z, x, dx, dc *mat.Dense
		ld, ild      []float64
		dp           flows.Params
	}
	once := func() result {
		var o result
		o.z, o.ld = c.bj.Direct(c.p, c.x, c.c)
		o.x, o.ild = c.bj.Inverse(c.p, o.z, c.c)
		_, _, back := c.bj.DirectVJP(c.p, c.x, c.c)
		o.dp = make(flows.Params, len(c.p))
		o.dx, o.dc = back(dz, dl, o.dp)
		return o
	}
	want := once()
	return concurrently(func() bool {
		o := once()
		return mat.Equal(o.z, want.z) && mat.Equal(o.x, want.x) && mat.Equal(o.dx, want.dx) &&
			mat.Equal(o.dc, want.dc) && slices.Equal(o.ld, want.ld) && slices.Equal(o.ild, want.ild) &&
			slices.Equal(o.dp, want.dp)
	})
}

func (c *condCase) checkInitFromData() error {
	for _, h := range []struct {
		name string
		fn   func(flows.Params, *mat.Dense, *mat.Dense) *mat.Dense
	}{{"InitFromData", c.bj.InitFromData}, {"UpdateState", c.bj.UpdateState}} {
		if h.fn == nil {
			continue
		}
		p := slices.Clone(c.p)
		x0, c0 := mat.DenseCopyOf(c.x), mat.DenseCopyOf(c.c)
		z := h.fn(p, c.x, c.c)
		if !mat.Equal(x0, c.x) || !mat.Equal(c0, c.c) {
			return fmt.Errorf("%s modified its batch or context", h.name)
		}
		want, _ := c.bj.Direct(p, c.x, c.c)
		if err := matClose(h.name+" output vs Direct at the parameters it set", z, want, exactTol, exactTol); err != nil {
			return err
		}
	}
	return nil
}

// Conditional distributions

func condDistributionChecks(d CondDistribution) []check {
	if d.Rows == 0 {
		d.Rows = 5
	}
	if d.Inputs == nil {
		d.Inputs = normalBatch
	}
	if d.Contexts == nil {
		d.Contexts = normalBatch
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
	p := d.Perturb(perturbKey, p0)
	x := d.Inputs(inputKey, d.Rows, d.Dim)
	ctx := d.Contexts(contextKey, d.Rows, d.ContextDim)
	checks := []check{
		{"init", func() error {
			p1, _, err := d.Init(initKey, d.Dim, d.ContextDim)
			if err != nil || !slices.Equal(p0, p1) {
				return errors.New("the same key gave different parameters")
			}
			return nil
		}},
		{"width", func() error {
			if err := panicsWithFlows(func() { dist.LogPDF(p, normalBatch(inputKey, d.Rows, d.Dim+1), ctx) }); err != nil {
				return fmt.Errorf("LogPDF on a batch of the wrong width: %v", err)
			}
			if err := panicsWithFlows(func() { dist.LogPDF(p, x, normalBatch(contextKey, d.Rows, d.ContextDim+1)) }); err != nil {
				return fmt.Errorf("LogPDF with a context of the wrong width: %v", err)
			}
			return nil
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
			const sentinel = 0.5
			dp := make(flows.Params, len(p))
			for i := range dp {
				dp[i] = sentinel
			}
			dx, dc := back(dl, dp)
			for i := range dp {
				dp[i] -= sentinel
			}
			loss := func(p flows.Params, x, c *mat.Dense) float64 { return floatsDot(dist.LogPDF(p, x, c), dl) }
			return condGradCheck("LogPDF", loss, p, x, ctx, dx, dc, dp)
		}},
		{"unmodified", func() error {
			x0, c0, pc := mat.DenseCopyOf(x), mat.DenseCopyOf(ctx), slices.Clone(p)
			lp, back := dist.LogPDFVJP(p, x, ctx)
			dl := slices.Clone(lp)
			back(dl, make(flows.Params, len(p)))
			dist.LogPDF(p, x, ctx)
			dist.Sample(flows.NewKey(9), p, ctx)
			if !mat.Equal(x0, x) || !mat.Equal(c0, ctx) || !slices.Equal(pc, p) || !slices.Equal(dl, lp) {
				return errors.New("a call modified its inputs, context, parameters or gradient")
			}
			return nil
		}},
		{"sample", func() error {
			s1 := dist.Sample(flows.NewKey(7), p, ctx)
			s2 := dist.Sample(flows.NewKey(7), p, ctx)
			s3 := dist.Sample(flows.NewKey(8), p, ctx)
			if r, c := s1.Dims(); r != d.Rows || c != d.Dim {
				return fmt.Errorf("sampling with %d contexts is %d×%d, want %d×%d", d.Rows, r, c, d.Rows, d.Dim)
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
		{"concurrent", func() error {
			dl := make([]float64, d.Rows)
			for i := range dl {
				dl[i] = 1
			}
			once := func() ([]float64, *mat.Dense, *mat.Dense, flows.Params, *mat.Dense) {
				lp, back := dist.LogPDFVJP(p, x, ctx)
				dp := make(flows.Params, len(p))
				dx, dc := back(dl, dp)
				return lp, dx, dc, dp, dist.Sample(flows.NewKey(7), p, ctx)
			}
			l0, dx0, dc0, dp0, s0 := once()
			return concurrently(func() bool {
				l, dx, dc, dp, s := once()
				return slices.Equal(l, l0) && mat.Equal(dx, dx0) && mat.Equal(dc, dc0) && slices.Equal(dp, dp0) && mat.Equal(s, s0)
			})
		}},
	}
	// Fixing one context gives an ordinary distribution, which the
	// unconditional integral and goodness-of-fit checks apply to.
	if d.Dim == 1 || d.Dim == 2 {
		fixed := fixContext(dist, mat.Row(nil, 0, ctx))
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

// fixContext returns the distribution of x given the fixed context row c.
func fixContext(d flows.CondDistribution, c []float64) flows.Distribution {
	repeat := func(n int) *mat.Dense {
		m := mat.NewDense(n, len(c), nil)
		for i := 0; i < n; i++ {
			m.SetRow(i, c)
		}
		return m
	}
	return flows.Distribution{
		LogPDF: func(p flows.Params, x *mat.Dense) []float64 {
			n, _ := x.Dims()
			return d.LogPDF(p, x, repeat(n))
		},
		Sample: func(key flows.Key, p flows.Params, n int) *mat.Dense { return d.Sample(key, p, repeat(n)) },
	}
}
