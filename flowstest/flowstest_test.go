package flowstest_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"gonum.org/v1/gonum/mat"
)

// scale is a small reference layer written in the test, z = x·exp(a) + b
// with layout [a (dim) | b (dim)], whose parts the tests below break one at
// a time to prove that the suite notices.
type scale struct {
	ldFactor     float64 // multiplies the Direct log-det (1 when correct)
	invLDSign    float64 // sign of the Inverse log-det relative to −Direct's (1 when correct)
	dropLDGrad   bool    // the pullback forgets the log-det term
	overwriteDP  bool    // the pullback overwrites dp instead of adding
	dxFactor     float64 // multiplies the pullback's dx (1 when correct)
	writesInput  bool    // Direct scribbles on its input
	noWidthPanic bool    // Direct accepts a batch of the wrong width
}

func (s scale) init() flows.InitFunc {
	return func(_ flows.Key, dim int) (flows.Params, flows.Bijection, error) {
		check := func(x *mat.Dense) {
			if _, c := x.Dims(); c != dim && !s.noWidthPanic {
				panic("flows: scale: wrong width")
			}
		}
		direct := func(p flows.Params, x *mat.Dense) (*mat.Dense, []float64) {
			check(x)
			n, _ := x.Dims()
			z := mat.NewDense(n, dim, nil)
			ld := make([]float64, n)
			for i := 0; i < n; i++ {
				for j := 0; j < dim; j++ {
					z.Set(i, j, x.At(i, j)*math.Exp(p[j])+p[dim+j])
					ld[i] += s.ldFactor * p[j]
				}
			}
			if s.writesInput {
				x.Set(0, 0, x.At(0, 0)+1e-3)
			}
			return z, ld
		}
		inverse := func(p flows.Params, z *mat.Dense) (*mat.Dense, []float64) {
			check(z)
			n, _ := z.Dims()
			x := mat.NewDense(n, dim, nil)
			ld := make([]float64, n)
			for i := 0; i < n; i++ {
				for j := 0; j < dim; j++ {
					x.Set(i, j, (z.At(i, j)-p[dim+j])*math.Exp(-p[j]))
					ld[i] -= s.invLDSign * s.ldFactor * p[j]
				}
			}
			return x, ld
		}
		return make(flows.Params, 2*dim), flows.Bijection{
			Direct:  direct,
			Inverse: inverse,
			DirectVJP: func(p flows.Params, x *mat.Dense) (*mat.Dense, []float64, flows.Pullback) {
				xc := mat.DenseCopyOf(x)
				z, ld := direct(p, x)
				return z, ld, func(dz *mat.Dense, dl []float64, dp flows.Params) *mat.Dense {
					n, _ := dz.Dims()
					if s.overwriteDP {
						clear(dp)
					}
					dx := mat.NewDense(n, dim, nil)
					for i := 0; i < n; i++ {
						for j := 0; j < dim; j++ {
							e := math.Exp(p[j])
							dx.Set(i, j, s.dxFactor*dz.At(i, j)*e)
							dp[j] += dz.At(i, j) * xc.At(i, j) * e
							if !s.dropLDGrad {
								dp[j] += dl[i] * s.ldFactor
							}
							dp[dim+j] += dz.At(i, j)
						}
					}
					return dx
				}
			},
		}, nil
	}
}

var correct = scale{ldFactor: 1, invLDSign: 1, dxFactor: 1}

func TestReferenceLayerPasses(t *testing.T) {
	flowstest.TestBijection(t, flowstest.Bijection{Name: "scale", Init: correct.init(), Dim: 3})
}

// TestSuiteCatchesBugs breaks the reference layer in each way the suite
// promises to notice and checks that the named check fails.
func TestSuiteCatchesBugs(t *testing.T) {
	for _, tc := range []struct {
		name, check string
		mutate      func(*scale)
	}{
		{"log-det off by 1%", "jacobian", func(s *scale) { s.ldFactor = 1.01 }},
		{"inverse log-det sign", "roundtrip", func(s *scale) { s.invLDSign = -1 }},
		{"pullback forgets log-det", "pullback", func(s *scale) { s.dropLDGrad = true }},
		{"pullback overwrites dp", "pullback", func(s *scale) { s.overwriteDP = true }},
		{"dx off by 0.1%", "pullback", func(s *scale) { s.dxFactor = 1.001 }},
		{"writes its input", "unmodified", func(s *scale) { s.writesInput = true }},
		{"no width panic", "width", func(s *scale) { s.noWidthPanic = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.check == "unmodified" && raceEnabled {
				t.Skip("the deliberate write races with the concurrency check")
			}
			s := correct
			tc.mutate(&s)
			err := flowstest.CheckBijection(flowstest.Bijection{Name: "broken", Init: s.init(), Dim: 3})
			if err == nil || !strings.Contains(err.Error(), tc.check+":") {
				t.Errorf("check %q did not fail; suite said: %v", tc.check, err)
			}
		})
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
		wide := func(key flows.Key, dim int) (flows.Params, flows.Distribution, error) {
			p, d, err := flows.Normal()(key, dim)
			sample := d.Sample
			d.Sample = func(key flows.Key, p flows.Params, n int) *mat.Dense {
				x := sample(key, p, n)
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
