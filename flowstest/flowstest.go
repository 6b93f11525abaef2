// Package flowstest is the conformance suite that every bijection, net and
// distribution of package flows passes, published so that users who write
// their own layer can check its hand-written gradients the same way, in the
// spirit of testing/fstest and net/http/httptest.
//
// Adding a layer to the suite is one line in a test:
//
//	func TestMyLayer(t *testing.T) {
//		flowstest.TestBijection(t, flowstest.Bijection{Name: "MyLayer", Init: MyLayer(), Dim: 3})
//	}
//
// For a bijection the suite checks, at parameters moved away from their
// initial values (so that layers which start as the identity are checked
// somewhere they are not):
//
//   - init: the same key gives the same parameters, bit for bit;
//   - width: a batch of the wrong width panics with a "flows:" message;
//   - roundtrip: Inverse(Direct(x)) ≈ x, and the inverse log-det is the
//     negative of the direct one;
//   - vjp: DirectVJP (and InverseVJP) give what Direct (and Inverse) give;
//   - jacobian: the log-det equals log|det J| of a finite-difference Jacobian;
//   - pullback: the pullback of Direct (and of Inverse, when the layer has
//     one), gradients to inputs and parameters including through the
//     log-det, agree with central finite differences, and add into the
//     parameter gradient instead of overwriting it;
//   - unmodified: no function writes to its inputs or parameters;
//   - views: strided views (mat.Dense.Slice) give what contiguous copies give;
//   - deterministic: the same call twice gives the same bits;
//   - concurrent: calls from many goroutines at once agree with serial calls
//     (run the tests with -race to also catch data races);
//   - initfromdata: a data-dependent initialisation or state update, when
//     present, returns what Direct returns at the parameters it sets.
//
// For a distribution it checks init, the pullback of the log density, that
// inputs are unmodified, that sampling is deterministic per key, and in one
// and two dimensions that the density integrates to one and that samples
// follow the density (Kolmogorov–Smirnov in 1-D, chi-square in 2-D, both at
// a fixed seed and a 0.1% level).
//
// Every check also exists as a function returning an error (CheckBijection,
// CheckNet, CheckDistribution), used by the suite's own tests to prove that a
// perturbed log-det or pullback is caught.
package flowstest

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
)

// Tolerances. Each comes with its reason; a case can tighten or loosen them
// only through the fields documented on Bijection and Distribution.
const (
	// fdStep is the central-difference step (relative to max(1,|v|)). The
	// truncation error is about fdStep²·|f'''|/6 ≈ 1e-11 for O(1)
	// curvature and the rounding error about eps·|L|/fdStep ≈ 1e-10 for
	// |L| ≈ 10, so a finite difference is good to ~1e-9 absolute.
	fdStep = 1e-5

	// gradAbs and gradRel bound |analytic − finite difference|: three
	// orders of magnitude above the ~1e-9 error of the difference itself,
	// so curvature up to ~1e3 passes, while a wrong term (an error of
	// order the gradient) fails.
	gradAbs = 1e-6
	gradRel = 1e-5

	// logDetTol bounds |logDet − log|det J_fd||. J's entries carry ~1e-9
	// error, moved into log|det| by ‖J⁻¹‖, which is O(1)–O(10) at the
	// perturbed test parameters.
	logDetTol = 1e-6

	// roundTripTol bounds |Inverse(Direct(x)) − x| relative to max(1,|x|):
	// a few hundred ulps of accumulated rounding, well below any real bug.
	roundTripTol = 1e-9

	// exactTol bounds differences between two code paths that compute the
	// same value (Direct vs DirectVJP): a few ulps, not an approximation.
	exactTol = 1e-12

	// maxParamChecks caps how many parameter coordinates are checked by
	// finite differences (chosen at random from the key) to keep large
	// layers fast; every coordinate is checked when there are fewer.
	maxParamChecks = 200
)

// Bijection describes a bijection to check.
type Bijection struct {
	Name string         // names the subtests
	Init flows.InitFunc // the layer under test
	Dim  int            // input dimension

	// Rows is the batch size (default 5).
	Rows int

	// Inputs draws the test batch; the default draws standard normal
	// entries. Layers with a restricted domain (Logit) provide their own.
	Inputs func(key flows.Key, n, dim int) *mat.Dense

	// Perturb returns the parameters to check at, given the initial ones.
	// The default adds N(0, 0.2²) to every entry, which moves layers that
	// start as the identity away from it. It must not modify p.
	Perturb func(key flows.Key, p flows.Params) flows.Params

	// RowCoupled says the rows of a batch interact (batch statistics in
	// training mode): the per-row Jacobian check is then skipped, and the
	// layer must test its log-det itself.
	RowCoupled bool

	// State lists the indices of parameters that are non-trainable state
	// (BatchNorm's running statistics): the default Perturb leaves them
	// alone, and every pullback must give them exactly zero gradient.
	State []int
}

// Net describes a conditioner net to check.
type Net struct {
	Name    string
	Init    flows.NetInitFunc
	In, Out int

	// Rows, Inputs and Perturb are as for Bijection.
	Rows    int
	Inputs  func(key flows.Key, n, dim int) *mat.Dense
	Perturb func(key flows.Key, p flows.Params) flows.Params
}

// TestBijection runs every bijection check as a subtest of t.
func TestBijection(t *testing.T, b Bijection) {
	t.Helper()
	run(t, b.Name, bijectionChecks(b))
}

// CheckBijection runs every bijection check and returns their failures
// joined, or nil.
func CheckBijection(b Bijection) error { return runAll(bijectionChecks(b)) }

// TestNet runs every net check as a subtest of t.
func TestNet(t *testing.T, n Net) {
	t.Helper()
	run(t, n.Name, netChecks(n))
}

// CheckNet runs every net check and returns their failures joined, or nil.
func CheckNet(n Net) error { return runAll(netChecks(n)) }

type check struct {
	name string
	fn   func() error
}

func run(t *testing.T, name string, checks []check) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		for _, c := range checks {
			t.Run(c.name, func(t *testing.T) {
				if err := c.fn(); err != nil {
					t.Error(err)
				}
			})
		}
	})
}

func runAll(checks []check) error {
	var errs []error
	for _, c := range checks {
		if err := c.fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

// defaults

func normalBatch(key flows.Key, n, dim int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, dim, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			x.Set(i, j, rng.NormFloat64())
		}
	}
	return x
}

func defaultPerturb(key flows.Key, p flows.Params) flows.Params {
	rng := key.Rand()
	q := slices.Clone(p)
	for i := range q {
		q[i] += 0.2 * rng.NormFloat64()
	}
	return q
}

// Fixed keys: the suite is deterministic.
var (
	initKey    = flows.NewKey(20260101)
	inputKey   = flows.NewKey(2)
	perturbKey = flows.NewKey(3)
	cotanKey   = flows.NewKey(4)
	pickKey    = flows.NewKey(5)
)

type bijCase struct {
	Bijection
	p  flows.Params
	bj flows.Bijection
	x  *mat.Dense
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
	p0, bj, err := b.Init(initKey, b.Dim)
	if err != nil {
		return []check{{"init", func() error { return fmt.Errorf("init at dim %d: %v", b.Dim, err) }}}
	}
	c := &bijCase{Bijection: b, p: b.Perturb(perturbKey, p0), bj: bj, x: b.Inputs(inputKey, b.Rows, b.Dim)}
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
	}
	if bj.InverseVJP != nil {
		checks = append(checks, check{"inversepullback", func() error { return c.checkPullback(true) }})
	}
	return checks
}

func checkInit(b Bijection, p0 flows.Params) error {
	p1, _, err := b.Init(initKey, b.Dim)
	if err != nil {
		return fmt.Errorf("second init failed: %v", err)
	}
	if !slices.Equal(p0, p1) {
		return errors.New("the same key gave different parameters")
	}
	for _, v := range p0 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("initial parameters are not finite")
		}
	}
	return nil
}

// panics reports whether f panics with a message starting "flows:".
func panicsWithFlows(f func()) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			err = errors.New("no panic")
			return
		}
		msg := fmt.Sprint(r)
		if !strings.HasPrefix(msg, "flows:") {
			err = fmt.Errorf("panic %q does not start with \"flows:\"", msg)
		}
	}()
	f()
	return nil
}

func (c *bijCase) checkWidth() error {
	wrong := normalBatch(inputKey, 2, c.Dim+1)
	fns := []struct {
		name string
		fn   func()
	}{
		{"Direct", func() { c.bj.Direct(c.p, wrong) }},
		{"Inverse", func() { c.bj.Inverse(c.p, wrong) }},
		{"DirectVJP", func() { c.bj.DirectVJP(c.p, wrong) }},
	}
	if c.bj.InverseVJP != nil {
		fns = append(fns, struct {
			name string
			fn   func()
		}{"InverseVJP", func() { c.bj.InverseVJP(c.p, wrong) }})
	}
	var errs []error
	for _, f := range fns {
		if err := panicsWithFlows(f.fn); err != nil {
			errs = append(errs, fmt.Errorf("%s on a batch of width %d: %v", f.name, c.Dim+1, err))
		}
	}
	return errors.Join(errs...)
}

// checkViews runs every pass on a strided view of the batch (a column slice
// of a wider matrix, as users get from mat.Dense.Slice) and compares with
// the contiguous batch: layers must honour the stride.
func (c *bijCase) checkViews() error {
	wide := mat.NewDense(c.Rows, c.Dim+2, nil)
	view := wide.Slice(0, c.Rows, 1, 1+c.Dim).(*mat.Dense)
	view.Copy(c.x)
	z, ld := c.bj.Direct(c.p, c.x)
	zv, ldv := c.bj.Direct(c.p, view)
	if !mat.Equal(z, zv) || !slices.Equal(ld, ldv) {
		return errors.New("the Direct pass on a strided view differs from Direct on a copy")
	}
	zw := mat.NewDense(c.Rows, c.Dim+3, nil)
	zview := zw.Slice(0, c.Rows, 2, 2+c.Dim).(*mat.Dense)
	zview.Copy(z)
	x1, il1 := c.bj.Inverse(c.p, z)
	x2, il2 := c.bj.Inverse(c.p, zview)
	if !mat.Equal(x1, x2) || !slices.Equal(il1, il2) {
		return errors.New("the Inverse pass on a strided view differs from Inverse on a copy")
	}
	dz := normalBatch(cotanKey, c.Rows, c.Dim)
	dzw := mat.NewDense(c.Rows, c.Dim+1, nil)
	dzview := dzw.Slice(0, c.Rows, 1, 1+c.Dim).(*mat.Dense)
	dzview.Copy(dz)
	dl := make([]float64, c.Rows)
	for i := range dl {
		dl[i] = 1
	}
	_, _, back := c.bj.DirectVJP(c.p, c.x)
	dp1 := make(flows.Params, len(c.p))
	dx1 := back(dz, dl, dp1)
	_, _, backv := c.bj.DirectVJP(c.p, view)
	dp2 := make(flows.Params, len(c.p))
	dx2 := backv(dzview, dl, dp2)
	if !mat.Equal(dx1, dx2) || !slices.Equal(dp1, dp2) {
		return errors.New("the Direct pullback on strided views differs from that on copies")
	}
	return nil
}

func (c *bijCase) checkRoundTrip() error {
	z, ld := c.bj.Direct(c.p, c.x)
	if err := finiteMat("Direct output", z); err != nil {
		return err
	}
	if err := finiteVec("Direct log-det", ld); err != nil {
		return err
	}
	if err := shape("Direct", z, ld, c.Rows, c.Dim); err != nil {
		return err
	}
	x2, ild := c.bj.Inverse(c.p, z)
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
	z, ld := c.bj.Direct(c.p, c.x)
	z2, ld2, _ := c.bj.DirectVJP(c.p, c.x)
	if err := matClose("DirectVJP z vs Direct z", z2, z, exactTol, exactTol); err != nil {
		return err
	}
	if err := vecClose("DirectVJP log-det vs Direct log-det", ld2, ld, exactTol, exactTol); err != nil {
		return err
	}
	if c.bj.InverseVJP != nil {
		x, ild := c.bj.Inverse(c.p, z)
		x2, ild2, _ := c.bj.InverseVJP(c.p, z)
		if err := matClose("InverseVJP x vs Inverse x", x2, x, exactTol, exactTol); err != nil {
			return err
		}
		if err := vecClose("InverseVJP log-det vs Inverse log-det", ild2, ild, exactTol, exactTol); err != nil {
			return err
		}
	}
	return nil
}

func (c *bijCase) checkJacobian() error {
	if c.RowCoupled {
		return nil
	}
	return jacobianLogDets(c.x, func(i int, row *mat.Dense) (*mat.Dense, []float64) {
		return c.bj.Direct(c.p, row)
	})
}

// jacobianLogDets compares, for each row i of x, the log-det that direct
// returns for that row alone (a 1×dim batch) with log|det J| of its
// central finite-difference Jacobian.
func jacobianLogDets(x *mat.Dense, direct func(i int, row *mat.Dense) (*mat.Dense, []float64)) error {
	n, d := x.Dims()
	for i := 0; i < n; i++ {
		row := mat.NewDense(1, d, mat.Row(nil, i, x))
		_, ld := direct(i, row)
		jac := mat.NewDense(d, d, nil)
		for j := 0; j < d; j++ {
			v := row.At(0, j)
			h := fdStep * math.Max(1, math.Abs(v))
			row.Set(0, j, v+h)
			zp, _ := direct(i, row)
			row.Set(0, j, v-h)
			zm, _ := direct(i, row)
			row.Set(0, j, v)
			for k := 0; k < d; k++ {
				jac.Set(k, j, (zp.At(0, k)-zm.At(0, k))/(2*h))
			}
		}
		var lu mat.LU
		lu.Factorize(jac)
		logAbs, _ := lu.LogDet()
		if !(math.Abs(logAbs-ld[0]) <= logDetTol*math.Max(1, math.Abs(logAbs))) {
			return fmt.Errorf("row %d: log-det %.12g, log|det J| by finite differences %.12g", i, ld[0], logAbs)
		}
	}
	return nil
}

// checkPullback compares the pullback of Direct (or Inverse) with central
// finite differences of L = Σ dz∘z + Σ dl∘logDet.
func (c *bijCase) checkPullback(inverse bool) error {
	fwd, vjp, in := c.bj.Direct, c.bj.DirectVJP, c.x
	what := "Direct"
	if inverse {
		fwd, vjp, what = c.bj.Inverse, c.bj.InverseVJP, "Inverse"
		in, _ = c.bj.Direct(c.p, c.x) // check where the inverse maps back to the test batch
	}
	rng := cotanKey.Rand()
	dz := normalBatch(cotanKey, c.Rows, c.Dim)
	dl := make([]float64, c.Rows)
	for i := range dl {
		dl[i] = rng.NormFloat64()
	}
	loss := func(p flows.Params, x *mat.Dense) float64 {
		z, ld := fwd(p, x)
		return dot(z, dz) + floatsDot(ld, dl)
	}
	_, _, back := vjp(c.p, in)
	const sentinel = 0.5
	dp := make(flows.Params, len(c.p))
	for i := range dp {
		dp[i] = sentinel
	}
	dx := back(dz, dl, dp)
	if r, cc := dx.Dims(); r != c.Rows || cc != c.Dim {
		return fmt.Errorf("%s pullback returned dx of %d×%d, want %d×%d", what, r, cc, c.Rows, c.Dim)
	}
	for i := range dp {
		dp[i] -= sentinel // the pullback must add into dp
	}
	var errs []error
	for _, k := range c.State {
		if dp[k] != 0 {
			errs = append(errs, fmt.Errorf("%s: state parameter %d has gradient %g, want exactly 0", what, k, dp[k]))
		}
	}
	return errors.Join(append(errs, gradCheck(what, loss, c.p, in, dx, dp, c.State))...)
}

// gradCheck compares dx and dp with central finite differences of loss at
// (p, x), for every input entry and for up to maxParamChecks parameters.
func gradCheck(what string, loss func(flows.Params, *mat.Dense) float64, p flows.Params, x *mat.Dense, dx *mat.Dense, dp flows.Params, skip []int) error {
	var errs []error
	xs := mat.DenseCopyOf(x)
	n, d := xs.Dims()
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			v := xs.At(i, j)
			h := fdStep * math.Max(1, math.Abs(v))
			xs.Set(i, j, v+h)
			lp := loss(p, xs)
			xs.Set(i, j, v-h)
			lm := loss(p, xs)
			xs.Set(i, j, v)
			if err := gradClose(fmt.Sprintf("%s: d/dx[%d,%d]", what, i, j), dx.At(i, j), (lp-lm)/(2*h)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	ps := slices.Clone(p)
	for _, k := range pick(len(p)) {
		if slices.Contains(skip, k) {
			continue
		}
		v := ps[k]
		h := fdStep * math.Max(1, math.Abs(v))
		ps[k] = v + h
		lp := loss(ps, x)
		ps[k] = v - h
		lm := loss(ps, x)
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

// pick returns the parameter indices to check: all of them, or
// maxParamChecks drawn without replacement from a fixed key.
func pick(n int) []int {
	if n <= maxParamChecks {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := pickKey.Rand().Perm(n)[:maxParamChecks]
	slices.Sort(idx)
	return idx
}

func gradClose(what string, got, want float64) error {
	if math.Abs(got-want) <= gradAbs+gradRel*math.Abs(want) {
		return nil
	}
	return fmt.Errorf("%s = %.10g, finite differences %.10g", what, got, want)
}

func (c *bijCase) checkUnmodified() error {
	x0, p0 := mat.DenseCopyOf(c.x), slices.Clone(c.p)
	z, ld, back := c.bj.DirectVJP(c.p, c.x)
	c.bj.Direct(c.p, c.x)
	dz := mat.DenseCopyOf(z)
	dl := slices.Clone(ld)
	back(dz, dl, make(flows.Params, len(c.p)))
	if !mat.Equal(dz, z) || !slices.Equal(dl, ld) {
		return errors.New("the Direct pullback modified its gradient arguments")
	}
	zc := mat.DenseCopyOf(z)
	c.bj.Inverse(c.p, z)
	if c.bj.InverseVJP != nil {
		x, ild, iback := c.bj.InverseVJP(c.p, z)
		dx, dil := mat.DenseCopyOf(x), slices.Clone(ild)
		iback(dx, dil, make(flows.Params, len(c.p)))
		if !mat.Equal(dx, x) || !slices.Equal(dil, ild) {
			return errors.New("the Inverse pullback modified its gradient arguments")
		}
	}
	if !mat.Equal(zc, z) {
		return errors.New("the Inverse pass modified its input")
	}
	if !mat.Equal(x0, c.x) {
		return errors.New("the Direct pass (or DirectVJP) modified its input")
	}
	if !slices.Equal(p0, c.p) {
		return errors.New("a pass modified the parameters")
	}
	return nil
}

func (c *bijCase) checkDeterministic() error {
	z1, l1 := c.bj.Direct(c.p, c.x)
	z2, l2 := c.bj.Direct(c.p, c.x)
	if !mat.Equal(z1, z2) || !slices.Equal(l1, l2) {
		return errors.New("the Direct pass gave different results on the same input")
	}
	x1, il1 := c.bj.Inverse(c.p, z1)
	x2, il2 := c.bj.Inverse(c.p, z1)
	if !mat.Equal(x1, x2) || !slices.Equal(il1, il2) {
		return errors.New("the Inverse pass gave different results on the same input")
	}
	return nil
}

// outcome is everything one serial or concurrent run computes.
type outcome struct {
	z, x, dx *mat.Dense
	ld, ild  []float64
	dp       flows.Params
}

func (c *bijCase) once(dz *mat.Dense, dl []float64) outcome {
	var o outcome
	o.z, o.ld = c.bj.Direct(c.p, c.x)
	o.x, o.ild = c.bj.Inverse(c.p, o.z)
	_, _, back := c.bj.DirectVJP(c.p, c.x)
	o.dp = make(flows.Params, len(c.p))
	o.dx = back(dz, dl, o.dp)
	return o
}

func (o outcome) equal(q outcome) bool {
	return mat.Equal(o.z, q.z) && mat.Equal(o.x, q.x) && mat.Equal(o.dx, q.dx) &&
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

// concurrently runs f on several goroutines at once and reports an error if
// any run disagrees with the serial result.
func concurrently(f func() bool) error {
	workers := max(4, 2*runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	bad := make([]bool, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 3; r++ {
				if !f() {
					bad[w] = true
				}
			}
		}()
	}
	wg.Wait()
	if slices.Contains(bad, true) {
		return errors.New("concurrent calls disagree with a serial call")
	}
	return nil
}

func (c *bijCase) checkInitFromData() error {
	for _, h := range []struct {
		name string
		fn   func(flows.Params, *mat.Dense) *mat.Dense
	}{{"InitFromData", c.bj.InitFromData}, {"UpdateState", c.bj.UpdateState}} {
		if h.fn == nil {
			continue
		}
		p := slices.Clone(c.p)
		x0 := mat.DenseCopyOf(c.x)
		z := h.fn(p, c.x)
		if !mat.Equal(x0, c.x) {
			return fmt.Errorf("%s modified its batch", h.name)
		}
		want, _ := c.bj.Direct(p, c.x)
		if err := matClose(h.name+" output vs Direct at the parameters it set", z, want, exactTol, exactTol); err != nil {
			return err
		}
	}
	return nil
}

// Nets

func netChecks(n Net) []check {
	if n.Rows == 0 {
		n.Rows = 5
	}
	if n.Inputs == nil {
		n.Inputs = normalBatch
	}
	if n.Perturb == nil {
		n.Perturb = defaultPerturb
	}
	p0, net, err := n.Init(initKey, n.In, n.Out)
	if err != nil {
		return []check{{"init", func() error { return fmt.Errorf("init %d→%d: %v", n.In, n.Out, err) }}}
	}
	p := n.Perturb(perturbKey, p0)
	x := n.Inputs(inputKey, n.Rows, n.In)
	dy := normalBatch(cotanKey, n.Rows, n.Out)
	return []check{
		{"init", func() error {
			p1, _, err := n.Init(initKey, n.In, n.Out)
			if err != nil || !slices.Equal(p0, p1) {
				return errors.New("the same key gave different parameters")
			}
			return nil
		}},
		{"width", func() error {
			wrong := normalBatch(inputKey, 2, n.In+1)
			if err := panicsWithFlows(func() { net.Apply(p, wrong) }); err != nil {
				return fmt.Errorf("the Apply pass: %v", err)
			}
			if err := panicsWithFlows(func() { net.ApplyVJP(p, wrong) }); err != nil {
				return fmt.Errorf("ApplyVJP: %v", err)
			}
			return nil
		}},
		{"vjp", func() error {
			y, _ := net.ApplyVJP(p, x)
			if r, c := y.Dims(); r != n.Rows || c != n.Out {
				return fmt.Errorf("output is %d×%d, want %d×%d", r, c, n.Rows, n.Out)
			}
			return matClose("ApplyVJP y vs Apply y", y, net.Apply(p, x), exactTol, exactTol)
		}},
		{"pullback", func() error {
			_, back := net.ApplyVJP(p, x)
			const sentinel = 0.5
			dp := make(flows.Params, len(p))
			for i := range dp {
				dp[i] = sentinel
			}
			dx := back(dy, dp)
			for i := range dp {
				dp[i] -= sentinel // the pullback must add into dp
			}
			loss := func(p flows.Params, x *mat.Dense) float64 { return dot(net.Apply(p, x), dy) }
			return gradCheck("Apply", loss, p, x, dx, dp, nil)
		}},
		{"unmodified", func() error {
			x0, pc, dyc := mat.DenseCopyOf(x), slices.Clone(p), mat.DenseCopyOf(dy)
			net.Apply(p, x)
			_, back := net.ApplyVJP(p, x)
			back(dy, make(flows.Params, len(p)))
			if !mat.Equal(x0, x) || !slices.Equal(pc, p) || !mat.Equal(dyc, dy) {
				return errors.New("a pass modified its inputs, parameters or gradient")
			}
			return nil
		}},
		{"concurrent", func() error {
			once := func() (*mat.Dense, *mat.Dense, flows.Params) {
				y, back := net.ApplyVJP(p, x)
				dp := make(flows.Params, len(p))
				return y, back(dy, dp), dp
			}
			y0, dx0, dp0 := once()
			return concurrently(func() bool {
				y, dx, dp := once()
				return mat.Equal(y, y0) && mat.Equal(dx, dx0) && slices.Equal(dp, dp0)
			})
		}},
	}
}

// small helpers

func dot(a, b *mat.Dense) float64 {
	r, c := a.Dims()
	s := 0.0
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			s += a.At(i, j) * b.At(i, j)
		}
	}
	return s
}

func floatsDot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func shape(what string, m *mat.Dense, ld []float64, n, d int) error {
	if r, c := m.Dims(); r != n || c != d {
		return fmt.Errorf("%s output is %d×%d, want %d×%d", what, r, c, n, d)
	}
	if len(ld) != n {
		return fmt.Errorf("%s log-det has length %d, want %d", what, len(ld), n)
	}
	return nil
}

func finiteMat(what string, m *mat.Dense) error {
	r, c := m.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			if v := m.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s[%d,%d] = %v", what, i, j, v)
			}
		}
	}
	return nil
}

func finiteVec(what string, v []float64) error {
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%s[%d] = %v", what, i, x)
		}
	}
	return nil
}

func matClose(what string, got, want *mat.Dense, abs, rel float64) error {
	r, c := want.Dims()
	if gr, gc := got.Dims(); gr != r || gc != c {
		return fmt.Errorf("%s: %d×%d, want %d×%d", what, gr, gc, r, c)
	}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			g, w := got.At(i, j), want.At(i, j)
			if !(math.Abs(g-w) <= abs+rel*math.Max(1, math.Abs(w))) {
				return fmt.Errorf("%s: [%d,%d] = %.15g, want %.15g", what, i, j, g, w)
			}
		}
	}
	return nil
}

func vecClose(what string, got, want []float64, abs, rel float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: length %d, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !(math.Abs(got[i]-want[i]) <= abs+rel*math.Max(1, math.Abs(want[i]))) {
			return fmt.Errorf("%s: [%d] = %.15g, want %.15g", what, i, got[i], want[i])
		}
	}
	return nil
}
