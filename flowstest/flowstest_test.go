package flowstest_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"gonum.org/v1/gonum/mat"
)

// scale is a small reference layer written in the test,
//
//	z = x·exp(a + c·V) + b + c·W,   logDet = Σ_j (a + c·V)_j,
//
// with layout [a (dim) | b (dim) | V (cdim×dim) | W (cdim×dim)] (just
// [a | b] without a context), whose parts the tests below break one at a
// time to prove that the suite notices.
type scale struct {
	ldFactor      float64 // multiplies the log-det (1 when correct)
	invLDSign     float64 // sign of the Inverse log-det relative to −Direct's (1 when correct)
	dropLDGrad    bool    // the pullback forgets the log-det term
	overwriteDP   bool    // the pullback overwrites dp instead of adding
	dxFactor      float64 // multiplies the pullback's dx (1 when correct)
	writesInput   bool    // Direct scribbles on its input
	noWidthPanic  bool    // Direct accepts a batch of the wrong width
	dcFactor      float64 // multiplies the pullback's dc (1 when correct)
	dropLDContext bool    // dc forgets the log-det's dependence on c
	overwriteDC   bool    // the pullback overwrites dc instead of adding
	writesContext bool    // Direct scribbles on its context
	noCtxPanic    bool    // Direct accepts a context of the wrong shape
}

func (s scale) init() flows.InitFunc {
	return func(_ flows.Key, dim, cdim int) (flows.Params, flows.Bijection, error) {
		np := 2*dim + 2*cdim*dim
		check := func(x, c *mat.Dense) {
			n, w := x.Dims()
			if w != dim && !s.noWidthPanic {
				panic("flows: scale: wrong width")
			}
			if cdim == 0 {
				return
			}
			if c == nil {
				panic("flows: scale: nil context")
			}
			if r, cc := c.Dims(); (r != n || cc != cdim) && !s.noCtxPanic {
				panic("flows: scale: wrong context")
			}
		}
		ctx := func(c *mat.Dense, i, k int) float64 {
			if k >= cdim {
				return 0
			}
			_, cc := c.Dims()
			return c.At(i, min(k, cc-1))
		}
		// logScale and shift return a + c·V and b + c·W for row i.
		logScale := func(p flows.Params, c *mat.Dense, i, j int) float64 {
			v := p[j]
			for k := 0; k < cdim; k++ {
				v += ctx(c, i, k) * p[2*dim+k*dim+j]
			}
			return v
		}
		shift := func(p flows.Params, c *mat.Dense, i, j int) float64 {
			v := p[dim+j]
			for k := 0; k < cdim; k++ {
				v += ctx(c, i, k) * p[2*dim+cdim*dim+k*dim+j]
			}
			return v
		}
		direct := func(p flows.Params, x, c *mat.Dense) (*mat.Dense, []float64) {
			check(x, c)
			n, _ := x.Dims()
			z := mat.NewDense(n, dim, nil)
			ld := make([]float64, n)
			for i := 0; i < n; i++ {
				for j := 0; j < dim; j++ {
					s1 := logScale(p, c, i, j)
					z.Set(i, j, x.At(i, j)*math.Exp(s1)+shift(p, c, i, j))
					ld[i] += s.ldFactor * s1
				}
			}
			if s.writesInput {
				x.Set(0, 0, x.At(0, 0)+1e-3)
			}
			if s.writesContext && c != nil {
				c.Set(0, 0, c.At(0, 0)+1e-3)
			}
			return z, ld
		}
		inverse := func(p flows.Params, z, c *mat.Dense) (*mat.Dense, []float64) {
			check(z, c)
			n, _ := z.Dims()
			x := mat.NewDense(n, dim, nil)
			ld := make([]float64, n)
			for i := 0; i < n; i++ {
				for j := 0; j < dim; j++ {
					s1 := logScale(p, c, i, j)
					x.Set(i, j, (z.At(i, j)-shift(p, c, i, j))*math.Exp(-s1))
					ld[i] -= s.invLDSign * s.ldFactor * s1
				}
			}
			return x, ld
		}
		return make(flows.Params, np), flows.Bijection{
			Direct:  direct,
			Inverse: inverse,
			DirectVJP: func(p flows.Params, x, c *mat.Dense) (*mat.Dense, []float64, flows.Pullback) {
				xc := mat.DenseCopyOf(x)
				var cc *mat.Dense
				if c != nil {
					cc = mat.DenseCopyOf(c)
				}
				z, ld := direct(p, x, c)
				return z, ld, func(dz *mat.Dense, dl []float64, dp flows.Params, dc *mat.Dense) *mat.Dense {
					n, _ := dz.Dims()
					if s.overwriteDP {
						clear(dp)
					}
					if s.overwriteDC && dc != nil {
						dc.Zero()
					}
					dx := mat.NewDense(n, dim, nil)
					for i := 0; i < n; i++ {
						for j := 0; j < dim; j++ {
							e := math.Exp(logScale(p, cc, i, j))
							g := dz.At(i, j)
							dx.Set(i, j, s.dxFactor*g*e)
							// ∂L/∂s = g·x·e + dl·ldFactor; ∂L/∂t = g.
							ds := g * xc.At(i, j) * e
							dsc := ds
							if !s.dropLDGrad {
								ds += dl[i] * s.ldFactor
							}
							if !s.dropLDContext {
								dsc = ds
							}
							dp[j] += ds
							dp[dim+j] += g
							for k := 0; k < cdim; k++ {
								dp[2*dim+k*dim+j] += ds * cc.At(i, k)
								dp[2*dim+cdim*dim+k*dim+j] += g * cc.At(i, k)
								if dc != nil {
									dc.Set(i, k, dc.At(i, k)+s.dcFactor*(dsc*p[2*dim+k*dim+j]+g*p[2*dim+cdim*dim+k*dim+j]))
								}
							}
						}
					}
					return dx
				}
			},
		}, nil
	}
}

var correct = scale{ldFactor: 1, invLDSign: 1, dxFactor: 1, dcFactor: 1}

func TestReferenceLayerPasses(t *testing.T) {
	for _, cdim := range []int{0, 2} {
		flowstest.TestBijection(t, flowstest.Bijection{Name: "scale", Init: correct.init(), Dim: 3, ContextDim: cdim})
		flowstest.TestDistribution(t, flowstest.Distribution{
			Name: "Flow(scale)", Init: flows.Flow(correct.init(), flows.Normal()), Dim: 2, ContextDim: cdim,
		})
	}
}

// TestSuiteCatchesBugs breaks the reference layer in each way the suite
// promises to notice and checks that the named check fails, without a
// context and with one.
func TestSuiteCatchesBugs(t *testing.T) {
	for _, tc := range []struct {
		name, check string
		cdims       []int
		mutate      func(*scale)
	}{
		{"log-det off by 1%", "jacobian", []int{0, 2}, func(s *scale) { s.ldFactor = 1.01 }},
		{"inverse log-det sign", "roundtrip", []int{0, 2}, func(s *scale) { s.invLDSign = -1 }},
		{"pullback forgets log-det", "pullback", []int{0, 2}, func(s *scale) { s.dropLDGrad = true }},
		{"pullback overwrites dp", "pullback", []int{0, 2}, func(s *scale) { s.overwriteDP = true }},
		{"dx off by 0.1%", "pullback", []int{0, 2}, func(s *scale) { s.dxFactor = 1.001 }},
		{"writes its input", "unmodified", []int{0, 2}, func(s *scale) { s.writesInput = true }},
		{"no width panic", "width", []int{0, 2}, func(s *scale) { s.noWidthPanic = true }},
		{"dc off by 0.1%", "pullback", []int{2}, func(s *scale) { s.dcFactor = 1.001 }},
		{"dc zero", "pullback", []int{2}, func(s *scale) { s.dcFactor = 0 }},
		{"dc forgets the log-det", "pullback", []int{2}, func(s *scale) { s.dropLDContext = true }},
		{"pullback overwrites dc", "pullback", []int{2}, func(s *scale) { s.overwriteDC = true }},
		{"writes its context", "unmodified", []int{2}, func(s *scale) { s.writesContext = true }},
		{"no context panic", "width", []int{2}, func(s *scale) { s.noCtxPanic = true }},
	} {
		for _, cdim := range tc.cdims {
			t.Run(tc.name, func(t *testing.T) {
				if tc.check == "unmodified" && raceEnabled {
					t.Skip("the deliberate write races with the concurrency check")
				}
				s := correct
				tc.mutate(&s)
				err := flowstest.CheckBijection(flowstest.Bijection{Name: "broken", Init: s.init(), Dim: 3, ContextDim: cdim})
				if err == nil || !strings.Contains(err.Error(), tc.check+":") {
					t.Errorf("context %d: check %q did not fail; suite said: %v", cdim, tc.check, err)
				}
			})
		}
	}
	// The distribution suite notices a wrong dc through the flow too.
	broken := correct
	broken.dcFactor = 1.001
	err := flowstest.CheckDistribution(flowstest.Distribution{
		Name: "broken", Init: flows.Flow(broken.init(), flows.Normal()), Dim: 2, ContextDim: 2,
	})
	if err == nil || !strings.Contains(err.Error(), "pullback:") || !strings.Contains(err.Error(), "d/dc") {
		t.Errorf("a Flow with a wrong dc passed the distribution suite: %v", err)
	}
}

// TestSuiteCatchesStateGradient declares a trained parameter of the
// reference layer as state: its non-zero gradient must be reported.
func TestSuiteCatchesStateGradient(t *testing.T) {
	err := flowstest.CheckBijection(flowstest.Bijection{Name: "state", Init: correct.init(), Dim: 3, State: []int{0}})
	if err == nil || !strings.Contains(err.Error(), "state parameter 0") {
		t.Errorf("a state parameter with a gradient passed: %v", err)
	}
}

// TestSuiteCatchesWrongSampler gives a distribution whose sampler is off
// (scale 1.2 instead of 1) and checks that both goodness-of-fit tests fail,
// and that the correct sampler passes them.
func TestSuiteCatchesWrongSampler(t *testing.T) {
	for _, dim := range []int{1, 2} {
		ok := flowstest.CheckDistribution(flowstest.Distribution{Name: "normal", Init: flows.Normal(), Dim: dim})
		if ok != nil {
			t.Errorf("dim %d: the standard normal fails: %v", dim, ok)
		}
		wide := func(key flows.Key, dim, cdim int) (flows.Params, flows.Distribution, error) {
			p, d, err := flows.Normal()(key, dim, cdim)
			sample := d.Sample
			d.Sample = func(key flows.Key, p flows.Params, n int, c *mat.Dense) *mat.Dense {
				x := sample(key, p, n, c)
				x.Scale(1.2, x)
				return x
			}
			return p, d, err
		}
		err := flowstest.CheckDistribution(flowstest.Distribution{Name: "wide", Init: wide, Dim: dim})
		if err == nil || !strings.Contains(err.Error(), "goodnessoffit:") {
			t.Errorf("dim %d: a sampler with scale 1.2 passed: %v", dim, err)
		}
	}
}

// brokenAffine is the affine transformer with its log-derivative scaled by
// ldFactor (its pullback consistent with that) and its pullback's dx scaled
// by dxFactor: the scalar checks must catch either.
func brokenAffine(dxFactor, ldFactor float64) flows.Transformer {
	t := flows.Affine(3)
	fwd, vjp := t.Forward, t.ForwardVJP
	t.Forward = func(th []float64, x float64) (float64, float64) {
		y, ld := fwd(th, x)
		return y, ld * ldFactor
	}
	t.ForwardVJP = func(th []float64, x, y, gy, gl float64, dth []float64) float64 {
		return dxFactor * vjp(th, x, y, gy, gl*ldFactor, dth)
	}
	return t
}

// TestTransformerSuiteCatchesBugs breaks the affine transformer's log-det
// and its pullback and checks that the scalar checks fail.
func TestTransformerSuiteCatchesBugs(t *testing.T) {
	if err := flowstest.CheckTransformer(flowstest.Transformer{Name: "Affine", Transformer: flows.Affine(3)}); err != nil {
		t.Fatalf("the affine transformer fails: %v", err)
	}
	for _, tc := range []struct {
		name, check string
		t           flows.Transformer
	}{
		{"log-derivative off by 1%", "logderiv:", brokenAffine(1, 1.01)},
		{"dx off by 0.1%", "pullback:", brokenAffine(1.001, 1)},
	} {
		err := flowstest.CheckTransformer(flowstest.Transformer{Name: "broken", Transformer: tc.t})
		if err == nil || !strings.Contains(err.Error(), tc.check) {
			t.Errorf("%s: check %q did not fail; suite said: %v", tc.name, tc.check, err)
		}
	}
}
