package flowstest

// The bijection checks, with or without a context.

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
)

// bijCase is one bijection at its test parameters, batch and context.
type bijCase struct {
	Bijection
	p    flows.Params
	bj   flows.Bijection
	x, c *mat.Dense // c nil without a context
}

func (b *Bijection) fill() {
	if b.Rows == 0 {
		b.Rows = 5
	}
	if b.Inputs == nil {
		b.Inputs = normalBatch
	}
	if b.Perturb == nil {
		state := b.State
		b.Perturb = func(key flows.Key, p flows.Params) flows.Params {
			q := defaultPerturb(key, p)
			for _, k := range state {
				q[k] = p[k]
			}
			return q
		}
	}
}

func bijectionChecks(b Bijection) []check {
	b.fill()
	p0, bj, err := b.Init(initKey, b.Dim, b.ContextDim)
	if err != nil {
		return []check{{"init", func() error {
			return fmt.Errorf("init at dim %d, context %d: %v", b.Dim, b.ContextDim, err)
		}}}
	}
	c := &bijCase{Bijection: b, p: b.Perturb(perturbKey, p0), bj: bj,
		x: b.Inputs(inputKey, b.Rows, b.Dim), c: contexts(b.Contexts, b.Rows, b.ContextDim)}
	checks := []check{
		{"init", func() error { return checkInit(b, p0) }},
		{"width", c.checkWidth},
		{"roundtrip", c.checkRoundTrip},
		{"vjp", c.checkVJPAgrees},
		{"jacobian", c.checkJacobian},
		{"pullback", func() error { return c.checkPullback(false) }},
		{"unmodified", c.checkUnmodified},
		{"views", c.checkViews},
		{"deterministic", c.checkDeterministic},
		{"concurrent", c.checkConcurrent},
		{"initfromdata", c.checkInitFromData},
		{"prepared", c.checkPrepared},
	}
	if bj.InverseVJP != nil {
		checks = append(checks, check{"inversepullback", func() error { return c.checkPullback(true) }})
	}
	return checks
}

func checkInit(b Bijection, p0 flows.Params) error {
	p1, _, err := b.Init(initKey, b.Dim, b.ContextDim)
	if err != nil {
		return fmt.Errorf("second init failed: %v", err)
	}
	if !slices.Equal(p0, p1) {
		return errors.New("the same key gave different parameters")
	}
	return finiteVec("initial parameters", p0)
}

// readsContext reports whether the layer's Direct pass depends on the
// context: whether another context changes its output.
func (c *bijCase) readsContext() bool {
	if c.c == nil {
		return false
	}
	other := mat.DenseCopyOf(c.c)
	other.Apply(func(_, _ int, v float64) float64 { return 1.5*v + 0.7 }, other)
	z1, l1 := c.bj.Direct(c.p, c.x, c.c)
	z2, l2 := c.bj.Direct(c.p, c.x, other)
	return !mat.Equal(z1, z2) || !slices.Equal(l1, l2)
}

func (c *bijCase) checkWidth() error {
	type call struct {
		name string
		fn   func()
	}
	wrong := normalBatch(inputKey, c.Rows, c.Dim+1)
	calls := []call{
		{"Direct on a batch of the wrong width", func() { c.bj.Direct(c.p, wrong, c.c) }},
		{"Inverse on a batch of the wrong width", func() { c.bj.Inverse(c.p, wrong, c.c) }},
		{"DirectVJP on a batch of the wrong width", func() { c.bj.DirectVJP(c.p, wrong, c.c) }},
	}
	if c.bj.InverseVJP != nil {
		calls = append(calls, call{"InverseVJP on a batch of the wrong width", func() { c.bj.InverseVJP(c.p, wrong, c.c) }})
	}
	if c.readsContext() {
		wrongC := normalBatch(contextKey, c.Rows, c.ContextDim+1)
		fewC := normalBatch(contextKey, c.Rows+1, c.ContextDim)
		calls = append(calls,
			call{"Direct with a context of the wrong width", func() { c.bj.Direct(c.p, c.x, wrongC) }},
			call{"Inverse with a context of the wrong width", func() { c.bj.Inverse(c.p, c.x, wrongC) }},
			call{"DirectVJP with a context of the wrong width", func() { c.bj.DirectVJP(c.p, c.x, wrongC) }},
			call{"Direct with a context of the wrong length", func() { c.bj.Direct(c.p, c.x, fewC) }},
			call{"Direct with a nil context", func() { c.bj.Direct(c.p, c.x, nil) }})
	}
	var errs []error
	for _, f := range calls {
		if err := panicsWithFlows(f.fn); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", f.name, err))
		}
	}
	return errors.Join(errs...)
}

// strided returns a copy of m inside a wider matrix, offset by off columns,
// as users get from mat.Dense.Slice; nil stays nil.
func strided(m *mat.Dense, off int) *mat.Dense {
	if m == nil {
		return nil
	}
	r, cols := m.Dims()
	wide := mat.NewDense(r, cols+off+1, nil)
	view := wide.Slice(0, r, off, off+cols).(*mat.Dense)
	view.Copy(m)
	return view
}

// checkViews runs every pass on strided views of the batch, the context and
// the gradients and compares with contiguous copies: layers must honour the
// stride.
func (c *bijCase) checkViews() error {
	z, ld := c.bj.Direct(c.p, c.x, c.c)
	zv, ldv := c.bj.Direct(c.p, strided(c.x, 1), strided(c.c, 2))
	if !mat.Equal(z, zv) || !slices.Equal(ld, ldv) {
		return errors.New("the Direct pass on strided views differs from Direct on copies")
	}
	x1, il1 := c.bj.Inverse(c.p, z, c.c)
	x2, il2 := c.bj.Inverse(c.p, strided(z, 2), strided(c.c, 1))
	if !mat.Equal(x1, x2) || !slices.Equal(il1, il2) {
		return errors.New("the Inverse pass on strided views differs from Inverse on copies")
	}
	dz := normalBatch(cotanKey, c.Rows, c.Dim)
	dl := make([]float64, c.Rows)
	for i := range dl {
		dl[i] = 1
	}
	_, _, back := c.bj.DirectVJP(c.p, c.x, c.c)
	dp1, dc1 := make(flows.Params, len(c.p)), zeroGrad(c.Rows, c.ContextDim)
	dx1 := back(dz, dl, dp1, dc1)
	_, _, backv := c.bj.DirectVJP(c.p, strided(c.x, 1), strided(c.c, 1))
	dp2, dc2 := make(flows.Params, len(c.p)), strided(zeroGrad(c.Rows, c.ContextDim), 2)
	dx2 := backv(strided(dz, 1), dl, dp2, dc2)
	if !mat.Equal(dx1, dx2) || !slices.Equal(dp1, dp2) || !equalMats(dc1, denseOrNil(dc2)) {
		return errors.New("the Direct pullback on strided views differs from that on copies")
	}
	return nil
}

// denseOrNil returns a contiguous copy of m, or nil.
func denseOrNil(m *mat.Dense) *mat.Dense {
	if m == nil {
		return nil
	}
	return mat.DenseCopyOf(m)
}

func (c *bijCase) checkRoundTrip() error {
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
	if err := matClose("Inverse(Direct(x)) vs x", x2, c.x, 0, roundTripTol); err != nil {
		return err
	}
	neg := make([]float64, len(ld))
	for i, v := range ld {
		neg[i] = -v
	}
	return vecClose("inverse log-det vs −direct log-det", ild, neg, roundTripTol, roundTripTol)
}

func (c *bijCase) checkVJPAgrees() error {
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
func (c *bijCase) checkJacobian() error {
	if c.RowCoupled {
		return nil
	}
	return jacobianLogDets(c.x, func(i int, row *mat.Dense) (*mat.Dense, []float64) {
		var ctx *mat.Dense
		if c.c != nil {
			ctx = mat.NewDense(1, c.ContextDim, mat.Row(nil, i, c.c))
		}
		return c.bj.Direct(c.p, row, ctx)
	})
}

// checkPullback compares the pullback of Direct (or Inverse) with central
// finite differences of L = Σ dz∘z + Σ dl∘logDet in x, c and the
// parameters, and checks that it adds into dp and dc and gives state
// parameters exactly zero.
func (c *bijCase) checkPullback(inverse bool) error {
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
	dp, dc := sentinelParams(len(c.p)), sentinelContext(c.Rows, c.ContextDim)
	dx := back(dz, dl, dp, dc)
	unsentinel(dp) // the pullback must add into dp and dc
	unsentinelContext(dc)
	var errs []error
	for _, k := range c.State {
		if dp[k] != 0 {
			errs = append(errs, fmt.Errorf("%s: state parameter %d has gradient %g, want exactly 0", what, k, dp[k]))
		}
	}
	return errors.Join(append(errs, gradCheck(what, loss, c.p, in, c.c, dx, dc, dp, c.State))...)
}

func (c *bijCase) checkUnmodified() error {
	x0, p0 := mat.DenseCopyOf(c.x), slices.Clone(c.p)
	c0 := denseOrNil(c.c)
	z, ld, back := c.bj.DirectVJP(c.p, c.x, c.c)
	c.bj.Direct(c.p, c.x, c.c)
	dz := mat.DenseCopyOf(z)
	dl := slices.Clone(ld)
	back(dz, dl, make(flows.Params, len(c.p)), zeroGrad(c.Rows, c.ContextDim))
	if !mat.Equal(dz, z) || !slices.Equal(dl, ld) {
		return errors.New("the Direct pullback modified its gradient arguments")
	}
	zc := mat.DenseCopyOf(z)
	c.bj.Inverse(c.p, z, c.c)
	if c.bj.InverseVJP != nil {
		x, ild, iback := c.bj.InverseVJP(c.p, z, c.c)
		dx, dil := mat.DenseCopyOf(x), slices.Clone(ild)
		iback(dx, dil, make(flows.Params, len(c.p)), zeroGrad(c.Rows, c.ContextDim))
		if !mat.Equal(dx, x) || !slices.Equal(dil, ild) {
			return errors.New("the Inverse pullback modified its gradient arguments")
		}
	}
	switch {
	case !mat.Equal(zc, z):
		return errors.New("the Inverse pass modified its input")
	case !mat.Equal(x0, c.x):
		return errors.New("the Direct pass (or DirectVJP) modified its input")
	case !equalMats(c0, c.c):
		return errors.New("a pass modified the context")
	case !slices.Equal(p0, c.p):
		return errors.New("a pass modified the parameters")
	}
	return nil
}

func (c *bijCase) checkDeterministic() error {
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

// outcome is everything one serial or concurrent run computes.
type outcome struct {
	z, x, dx, dc *mat.Dense
	ld, ild      []float64
	dp           flows.Params
}

func (c *bijCase) once(dz *mat.Dense, dl []float64) outcome {
	var o outcome
	o.z, o.ld = c.bj.Direct(c.p, c.x, c.c)
	o.x, o.ild = c.bj.Inverse(c.p, o.z, c.c)
	_, _, back := c.bj.DirectVJP(c.p, c.x, c.c)
	o.dp, o.dc = make(flows.Params, len(c.p)), zeroGrad(c.Rows, c.ContextDim)
	o.dx = back(dz, dl, o.dp, o.dc)
	return o
}

func (o outcome) equal(q outcome) bool {
	return mat.Equal(o.z, q.z) && mat.Equal(o.x, q.x) && mat.Equal(o.dx, q.dx) && equalMats(o.dc, q.dc) &&
		slices.Equal(o.ld, q.ld) && slices.Equal(o.ild, q.ild) && slices.Equal(o.dp, q.dp)
}

func (c *bijCase) checkConcurrent() error {
	dz := normalBatch(cotanKey, c.Rows, c.Dim)
	dl := make([]float64, c.Rows)
	for i := range dl {
		dl[i] = float64(i) - 1.5
	}
	want := c.once(dz, dl)
	return concurrently(func() bool { return c.once(dz, dl).equal(want) })
}

func (c *bijCase) checkInitFromData() error {
	for _, h := range []struct {
		name string
		fn   func(flows.Params, *mat.Dense, *mat.Dense) *mat.Dense
	}{{"InitFromData", c.bj.InitFromData}, {"UpdateState", c.bj.UpdateState}} {
		if h.fn == nil {
			continue
		}
		p := slices.Clone(c.p)
		x0, c0 := mat.DenseCopyOf(c.x), denseOrNil(c.c)
		z := h.fn(p, c.x, c.c)
		if !mat.Equal(x0, c.x) || !equalMats(c0, c.c) {
			return fmt.Errorf("%s modified its batch or context", h.name)
		}
		want, _ := c.bj.Direct(p, c.x, c.c)
		if err := matClose(h.name+" output vs Direct at the parameters it set", z, want, exactTol, exactTol); err != nil {
			return err
		}
	}
	return nil
}

// checkPrepared checks PrepareBijection: its Direct and Inverse give the
// bits of the unprepared ones at the parameters it was prepared with, on
// the test batch, on a strided view and on a batch of preparedRows rows
// (several row blocks of a prepared pass), whatever happens to those
// parameters afterwards; they agree under concurrent calls, leave their
// inputs alone and panic with a flows: message for a batch of the wrong
// width.
func (c *bijCase) checkPrepared() error {
	p := slices.Clone(c.p)
	pb := flows.PrepareBijection(c.bj, p)
	for i := range p {
		p[i] = math.NaN() // a prepared layer must not see it
	}
	if pb.Direct == nil || pb.Inverse == nil {
		return errors.New("PrepareBijection gave a nil Direct or Inverse")
	}
	x := c.x
	ctx := c.c
	if !c.RowCoupled { // a coupled layer's rows depend on the batch: keep its own
		x = c.Inputs(inputKey, preparedRows, c.Dim)
		ctx = contexts(c.Contexts, preparedRows, c.ContextDim)
	}
	x0, c0 := mat.DenseCopyOf(x), denseOrNil(ctx)
	same := func(x, ctx *mat.Dense) error {
		z, ld := c.bj.Direct(c.p, x, ctx)
		pz, pld := pb.Direct(x, ctx)
		if !sameBits(denseData(z), denseData(pz)) || !sameBits(ld, pld) {
			return errors.New("the prepared Direct differs from Direct")
		}
		u, ild := c.bj.Inverse(c.p, z, ctx)
		pu, pild := pb.Inverse(z, ctx)
		if !sameBits(denseData(u), denseData(pu)) || !sameBits(ild, pild) {
			return errors.New("the prepared Inverse differs from Inverse")
		}
		return nil
	}
	if err := same(x, ctx); err != nil {
		return err
	}
	if err := same(strided(x, 2), strided(ctx, 1)); err != nil {
		return fmt.Errorf("on strided views: %w", err)
	}
	if !mat.Equal(x0, x) || !equalMats(c0, ctx) {
		return errors.New("a prepared pass modified its batch or context")
	}
	if err := panicsWithFlows(func() { pb.Direct(normalBatch(inputKey, 2, c.Dim+1), contexts(c.Contexts, 2, c.ContextDim)) }); err != nil {
		return fmt.Errorf("prepared Direct on a batch of the wrong width: %w", err)
	}
	wz, wld := pb.Direct(x, ctx)
	return concurrently(func() bool {
		z, ld := pb.Direct(x, ctx)
		return sameBits(denseData(z), denseData(wz)) && sameBits(ld, wld)
	})
}
