package flowstest_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"gonum.org/v1/gonum/mat"
)

// condScale is a small conditional reference layer written in the test,
// z = x·exp(a + c·V) + b + c·W, layout [a (dim) | b (dim) | V (cdim×dim) |
// W (cdim×dim)], logDet = Σ_j (a + c·V)_j, whose parts the tests below break
// one at a time to prove that the suite notices.
type condScale struct {
	dcFactor      float64 // multiplies the pullback's dc (1 when correct)
	dropLDContext bool    // the pullback forgets the log-det's dependence on c
	ldFactor      float64 // multiplies the log-det (1 when correct)
	writesContext bool    // Direct scribbles on its context
	noCtxPanic    bool    // Direct accepts a context of the wrong shape
}

func (s condScale) init() flows.CondInitFunc {
	return func(_ flows.Key, dim, cdim int) (flows.Params, flows.CondBijection, error) {
		np := 2*dim + 2*cdim*dim
		check := func(x, c *mat.Dense) {
			n, w := x.Dims()
			if w != dim {
				panic("flows: condScale: wrong width")
			}
			if c == nil {
				panic("flows: condScale: nil context")
			}
			if r, cc := c.Dims(); (r != n || cc != cdim) && !s.noCtxPanic {
				panic("flows: condScale: wrong context")
			}
		}
		// logScale returns a + c·V for row i.
		logScale := func(p flows.Params, c *mat.Dense, i, j int) float64 {
			v := p[j]
			for k := 0; k < cdim; k++ {
				v += c.At(i, k) * p[2*dim+k*dim+j]
			}
			return v
		}
		shift := func(p flows.Params, c *mat.Dense, i, j int) float64 {
			v := p[dim+j]
			for k := 0; k < cdim; k++ {
				v += c.At(i, k) * p[2*dim+cdim*dim+k*dim+j]
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
			if s.writesContext {
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
					ld[i] -= s.ldFactor * s1
				}
			}
			return x, ld
		}
		return make(flows.Params, np), flows.CondBijection{
			Direct:  direct,
			Inverse: inverse,
			DirectVJP: func(p flows.Params, x, c *mat.Dense) (*mat.Dense, []float64, flows.CondPullback) {
				xc, cc := mat.DenseCopyOf(x), mat.DenseCopyOf(c)
				z, ld := direct(p, x, c)
				return z, ld, func(dz *mat.Dense, dl []float64, dp flows.Params) (*mat.Dense, *mat.Dense) {
					n, _ := dz.Dims()
					dx := mat.NewDense(n, dim, nil)
					dc := mat.NewDense(n, cdim, nil)
					for i := 0; i < n; i++ {
						for j := 0; j < dim; j++ {
							e := math.Exp(logScale(p, cc, i, j))
							g := dz.At(i, j)
							dx.Set(i, j, g*e)
							// ∂L/∂s = g·x·e + dl·ldFactor; ∂L/∂t = g.
							ds := g * xc.At(i, j) * e
							dsc := ds
							ds += dl[i] * s.ldFactor
							if !s.dropLDContext {
								dsc = ds
							}
							dp[j] += ds
							dp[dim+j] += g
							for k := 0; k < cdim; k++ {
								dp[2*dim+k*dim+j] += ds * cc.At(i, k)
								dp[2*dim+cdim*dim+k*dim+j] += g * cc.At(i, k)
								dc.Set(i, k, dc.At(i, k)+s.dcFactor*(dsc*p[2*dim+k*dim+j]+g*p[2*dim+cdim*dim+k*dim+j]))
							}
						}
					}
					return dx, dc
				}
			},
		}, nil
	}
}

var condCorrect = condScale{dcFactor: 1, ldFactor: 1}

func TestCondReferenceLayerPasses(t *testing.T) {
	flowstest.TestCondBijection(t, flowstest.CondBijection{Name: "condScale", Init: condCorrect.init(), Dim: 3, ContextDim: 2})
	flowstest.TestCondDistribution(t, flowstest.CondDistribution{
		Name: "CondFlow(condScale)", Init: flows.CondFlow(condCorrect.init(), flows.Normal()), Dim: 2, ContextDim: 2,
	})
}

// TestCondSuiteCatchesBugs breaks the conditional reference layer in each
// way the suite promises to notice, in particular a wrong dc, and checks
// that the named check fails.
func TestCondSuiteCatchesBugs(t *testing.T) {
	for _, tc := range []struct {
		name, check string
		mutate      func(*condScale)
	}{
		{"dc off by 0.1%", "pullback", func(s *condScale) { s.dcFactor = 1.001 }},
		{"dc zero", "pullback", func(s *condScale) { s.dcFactor = 0 }},
		{"dc forgets the log-det", "pullback", func(s *condScale) { s.dropLDContext = true }},
		{"log-det off by 1%", "jacobian", func(s *condScale) { s.ldFactor = 1.01 }},
		{"writes its context", "unmodified", func(s *condScale) { s.writesContext = true }},
		{"no context panic", "width", func(s *condScale) { s.noCtxPanic = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.check == "unmodified" && raceEnabled {
				t.Skip("the deliberate write races with the concurrency check")
			}
			s := condCorrect
			tc.mutate(&s)
			err := flowstest.CheckCondBijection(flowstest.CondBijection{Name: "broken", Init: s.init(), Dim: 3, ContextDim: 2})
			if err == nil || !strings.Contains(err.Error(), tc.check+":") {
				t.Errorf("check %q did not fail; suite said: %v", tc.check, err)
			}
		})
	}
	// The distribution suite notices a wrong dc through the flow too.
	broken := condScale{dcFactor: 1.001, ldFactor: 1}
	err := flowstest.CheckCondDistribution(flowstest.CondDistribution{
		Name: "broken", Init: flows.CondFlow(broken.init(), flows.Normal()), Dim: 2, ContextDim: 2,
	})
	if err == nil || !strings.Contains(err.Error(), "pullback:") || !strings.Contains(err.Error(), "d/dc") {
		t.Errorf("a CondFlow with a wrong dc passed the distribution suite: %v", err)
	}
}
