// Package flowstest is the conformance suite that every bijection,
// transformer, net and distribution of package flows passes, published so
// that users who write their own can check their hand-written gradients the
// same way, in the spirit of testing/fstest and net/http/httptest.
//
// Adding a layer to the suite is one line in a test:
//
//	func TestMyLayer(t *testing.T) {
//		flowstest.TestBijection(t, flowstest.Bijection{Name: "MyLayer", Init: MyLayer(), Dim: 3})
//	}
//
// Set ContextDim to check it given a context as well (a layer should pass
// with and without one). For a bijection the suite checks, at parameters
// moved away from their initial values (so that layers which start as the
// identity are checked somewhere they are not):
//
//   - init: the same key gives the same parameters, bit for bit;
//   - width: a batch of the wrong width panics with a "flows:" message, and
//     so does a context of the wrong shape, for a layer that reads it;
//   - roundtrip: Inverse(Direct(x)) ≈ x, and the inverse log-det is the
//     negative of the direct one;
//   - vjp: DirectVJP (and InverseVJP) give what Direct (and Inverse) give;
//   - jacobian: the log-det equals log|det J| of a finite-difference
//     Jacobian in x, row by row, at the row's context;
//   - pullback: the pullback of Direct (and of Inverse, when the layer has
//     one), gradients to inputs, contexts and parameters including through
//     the log-det, agree with central finite differences, and add into the
//     parameter and context gradients instead of overwriting them;
//   - state: parameters listed as state get exactly zero gradient;
//   - unmodified: no function writes to its inputs, context or parameters;
//   - views: strided views (mat.Dense.Slice) give what contiguous copies
//     give;
//   - deterministic: the same call twice gives the same bits;
//   - concurrent: calls from many goroutines at once agree with serial calls
//     (run the tests with -race to also catch data races);
//   - initfromdata: a data-dependent initialisation or state update, when
//     present, returns what Direct returns at the parameters it sets;
//   - prepared: flows.PrepareBijection's Direct and Inverse give the bits
//     of the unprepared ones on 300 rows (several row blocks) and on
//     strided views, keep the parameters they were prepared with when p
//     changes afterwards, and agree under concurrent calls.
//
// For a distribution it checks init, the pullback of the log density (to x,
// the context and the parameters), that inputs are unmodified, that
// sampling is deterministic per key, that flows.PrepareDistribution gives
// the unprepared bits (log density, samples, latents), and in one and two
// dimensions, at a
// fixed context, that the density integrates to one and that samples follow
// the density (Kolmogorov–Smirnov in 1-D, chi-square in 2-D, both at a
// fixed seed and a 0.1% level). For a transformer (TestTransformer) it
// checks the scalar map itself and runs the bijection suite on a coupling
// and a masked autoregressive layer over it, with and without a context.
//
// Every check also exists as a function returning an error (CheckBijection,
// CheckTransformer, CheckNet, CheckDistribution), used by the suite's own
// tests to prove that a perturbed log-det or pullback is caught.
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

	// ContextDim is the width of the context the layer is made with and
	// given (default 0: none).
	ContextDim int

	// Rows is the batch size (default 5).
	Rows int

	// Inputs draws the test batch; the default draws standard normal
	// entries. Layers with a restricted domain (Logit) provide their own.
	Inputs func(key flows.Key, n, dim int) *mat.Dense

	// Contexts draws the context batch (default: standard normal entries;
	// one-hot labels are a fine choice too, the finite differences move
	// them off the simplex harmlessly).
	Contexts func(key flows.Key, n, contextDim int) *mat.Dense

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

// Fixed keys: the suite is deterministic.
var (
	initKey    = flows.NewKey(20260101)
	inputKey   = flows.NewKey(2)
	perturbKey = flows.NewKey(3)
	cotanKey   = flows.NewKey(4)
	pickKey    = flows.NewKey(5)
	contextKey = flows.NewKey(6)
)

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

// contexts draws a context batch of n rows, or returns nil for width 0.
func contexts(draw func(flows.Key, int, int) *mat.Dense, n, cdim int) *mat.Dense {
	if cdim == 0 {
		return nil
	}
	if draw == nil {
		draw = normalBatch
	}
	return draw(contextKey, n, cdim)
}

// zeroGrad returns a zero n×cdim context gradient, or nil for width 0.
func zeroGrad(n, cdim int) *mat.Dense {
	if cdim == 0 {
		return nil
	}
	return mat.NewDense(n, cdim, nil)
}

// panicsWithFlows reports whether f panics with a message starting "flows:".
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
			dp := sentinelParams(len(p))
			dx := back(dy, dp)
			unsentinel(dp) // the pullback must add into dp
			loss := func(p flows.Params, x, _ *mat.Dense) float64 { return dot(net.Apply(p, x), dy) }
			return gradCheck("Apply", loss, p, x, nil, dx, nil, dp, nil)
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

// gradSentinel is what the suite puts in a gradient buffer before a
// pullback, to check that the pullback adds into it.
const gradSentinel = 0.5

func sentinelParams(n int) flows.Params {
	dp := make(flows.Params, n)
	for i := range dp {
		dp[i] = gradSentinel
	}
	return dp
}

func unsentinel(dp []float64) {
	for i := range dp {
		dp[i] -= gradSentinel
	}
}

// sentinelContext returns an n×cdim context gradient filled with the
// sentinel, or nil for width 0.
func sentinelContext(n, cdim int) *mat.Dense {
	if cdim == 0 {
		return nil
	}
	dc := mat.NewDense(n, cdim, nil)
	for i := range n {
		for j := range cdim {
			dc.Set(i, j, gradSentinel)
		}
	}
	return dc
}

// unsentinelContext subtracts the sentinel from every entry of dc.
func unsentinelContext(dc *mat.Dense) {
	if dc == nil {
		return
	}
	n, _ := dc.Dims()
	for i := range n {
		unsentinel(dc.RawRowView(i))
	}
}

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

// equalMats reports whether a and b are both nil or equal.
func equalMats(a, b *mat.Dense) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return mat.Equal(a, b)
}

// preparedRows is the batch size of the prepared checks: more than two
// row blocks of a prepared pass, the last one partial.
const preparedRows = 300

// sameBits reports whether a and b hold the same float64s bit for bit
// (NaNs with the same payload, zeros with the same sign).
func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i, v := range a {
		if math.Float64bits(v) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// denseData returns m's entries row by row (a copy when m is a view).
func denseData(m *mat.Dense) []float64 {
	r, c := m.Dims()
	out := make([]float64, 0, r*c)
	for i := range r {
		out = append(out, m.RawRowView(i)...)
	}
	return out
}
