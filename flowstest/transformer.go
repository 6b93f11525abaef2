package flowstest

// The transformer checks: the scalar map, then both layer forms over it.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/gonormflows/flows"
)

// Transformer describes a transformer to check.
type Transformer struct {
	Name        string
	Transformer flows.Transformer

	// Theta draws one element's parameters (length Transformer.Params) to
	// check the scalar map at; the default draws N(0, 1) entries.
	Theta func(key flows.Key, p int) []float64

	// Inputs draws the points x the scalar map is checked at; the default
	// draws N(0, 1.5²) entries, inside and outside the unit interval.
	Inputs func(key flows.Key, n int) []float64

	// NotIdentityAtZero says that θ = 0 is not the identity (the
	// transformers of package flows all are, so that layers start as the
	// identity).
	NotIdentityAtZero bool

	// Perturb moves the layers' parameters as for Bijection (default
	// N(0, 0.2²) on every entry).
	Perturb func(key flows.Key, p flows.Params) flows.Params
}

// TestTransformer checks the scalar map of t (identity at θ = 0, monotone,
// log-derivative against finite differences, round trip, both pullbacks
// against finite differences) and runs the bijection suite on
// flows.Coupling and flows.MaskedAutoregressive over it, each with and
// without a context.
func TestTransformer(t *testing.T, tr Transformer) {
	t.Helper()
	run(t, tr.Name, transformerChecks(tr))
	for _, b := range transformerLayers(tr) {
		TestBijection(t, b)
	}
}

// CheckTransformer runs every transformer check, those of the layers over
// it included, and returns their failures joined, or nil.
func CheckTransformer(tr Transformer) error {
	errs := []error{runAll(transformerChecks(tr))}
	for _, b := range transformerLayers(tr) {
		if err := CheckBijection(b); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.Name, err))
		}
	}
	return errors.Join(errs...)
}

// transformerLayers is the bijection suite's cases for tr: a coupling and a
// masked autoregressive layer, each without and with a context.
func transformerLayers(tr Transformer) []Bijection {
	var bs []Bijection
	for _, cdim := range []int{0, 2} {
		bs = append(bs,
			Bijection{Name: fmt.Sprintf("%s/Coupling/context=%d", tr.Name, cdim),
				Init: flows.Coupling(flows.MLP([]int{8, 8}, flows.Tanh), tr.Transformer), Dim: 3, ContextDim: cdim, Perturb: tr.Perturb},
			Bijection{Name: fmt.Sprintf("%s/MaskedAutoregressive/context=%d", tr.Name, cdim),
				Init: flows.MaskedAutoregressive(flows.MADEConfig{Hidden: []int{8, 8}, Act: flows.Tanh}, tr.Transformer), Dim: 3, ContextDim: cdim, Perturb: tr.Perturb})
	}
	return bs
}

// scalarCases is how many (θ, x) pairs the scalar checks visit.
const scalarCases = 40

func transformerChecks(tr Transformer) []check {
	t := tr.Transformer
	if t.Params < 1 || t.Forward == nil || t.Inverse == nil || t.ForwardVJP == nil {
		return []check{{"contract", func() error {
			return fmt.Errorf("transformer %q has %d parameters or lacks Forward, Inverse or ForwardVJP", t.Name, t.Params)
		}}}
	}
	if tr.Theta == nil {
		tr.Theta = func(key flows.Key, p int) []float64 {
			rng := key.Rand()
			th := make([]float64, p)
			for i := range th {
				th[i] = rng.NormFloat64()
			}
			return th
		}
	}
	if tr.Inputs == nil {
		tr.Inputs = func(key flows.Key, n int) []float64 {
			rng := key.Rand()
			xs := make([]float64, n)
			for i := range xs {
				xs[i] = 1.5 * rng.NormFloat64()
			}
			return xs
		}
	}
	thetas := make([][]float64, scalarCases)
	for i := range thetas {
		thetas[i] = tr.Theta(perturbKey.Fold(uint64(i)), t.Params)
	}
	xs := tr.Inputs(inputKey, scalarCases)
	checks := []check{
		{"monotone", func() error {
			for i, th := range thetas {
				sorted := slices.Sorted(slices.Values(xs))
				prev := math.Inf(-1)
				for _, x := range sorted {
					y, _ := t.Forward(th, x)
					if !(y >= prev) {
						return fmt.Errorf("θ case %d: f(%v) = %v is below f at a smaller x, %v", i, x, y, prev)
					}
					prev = y
				}
			}
			return nil
		}},
		{"logderiv", func() error {
			for i, th := range thetas {
				x := xs[i]
				_, ld := t.Forward(th, x)
				h := fdStep * math.Max(1, math.Abs(x))
				yp, _ := t.Forward(th, x+h)
				ym, _ := t.Forward(th, x-h)
				if fd := math.Log((yp - ym) / (2 * h)); !(math.Abs(fd-ld) <= logDetTol*math.Max(1, math.Abs(fd))) {
					return fmt.Errorf("θ case %d, x = %v: log f′ = %.12g, by finite differences %.12g", i, x, ld, fd)
				}
			}
			return nil
		}},
		{"roundtrip", func() error {
			for i, th := range thetas {
				x := xs[i]
				y, ld := t.Forward(th, x)
				x2, ild := t.Inverse(th, y)
				if !(math.Abs(x2-x) <= roundTripTol*math.Max(1, math.Abs(x))) {
					return fmt.Errorf("θ case %d: Inverse(Forward(%v)) = %v", i, x, x2)
				}
				if !(math.Abs(ild+ld) <= roundTripTol*math.Max(1, math.Abs(ld))) {
					return fmt.Errorf("θ case %d, x = %v: inverse log-derivative %v, want −%v", i, x, ild, ld)
				}
			}
			return nil
		}},
		{"pullback", func() error {
			return scalarPullbackChecks("ForwardVJP", thetas, xs, t.Forward, t.ForwardVJP, 0.7, 0.3)
		}},
	}
	if !tr.NotIdentityAtZero {
		checks = append(checks, check{"identity", func() error {
			zero := make([]float64, t.Params)
			for _, x := range xs {
				y, ld := t.Forward(zero, x)
				// The maps compute the identity through their general
				// formulas (a spline with uniform bins, a mixture of equal
				// logistics), which rounds to within a few ulps.
				if !(math.Abs(y-x) <= 1e-12*math.Max(1, math.Abs(x))) || !(math.Abs(ld) <= 1e-12) {
					return fmt.Errorf("at θ = 0, f(%v) = %v with log f′ = %v, want the identity", x, y, ld)
				}
			}
			return nil
		}})
	}
	if t.InverseVJP != nil {
		checks = append(checks, check{"inversepullback", func() error {
			// At the points the inverse maps back to the test inputs.
			ys := make([]float64, len(xs))
			for i, th := range thetas {
				ys[i], _ = t.Forward(th, xs[i])
			}
			return scalarPullbackChecks("InverseVJP", thetas, ys, t.Inverse, t.InverseVJP, 0.4, -0.6)
		}})
	}
	return checks
}

// scalarGradCheck compares dx and dth with Richardson-extrapolated central
// differences of loss at (th, x): (4·D(h/2) − D(h))/3, whose truncation
// error is O(h⁴), since random θ make steep maps (a spline with a narrow
// bin) whose curvature a plain central difference at fdStep misses by more
// than the tolerance. The scalar cost of the second evaluation is nothing.
func scalarGradCheck(what string, loss func([]float64, float64) float64, th []float64, x, dx float64, dth []float64) error {
	deriv := func(f func(float64) float64, v float64) float64 {
		h := fdStep * math.Max(1, math.Abs(v))
		d := func(h float64) float64 { return (f(v+h) - f(v-h)) / (2 * h) }
		return (4*d(h/2) - d(h)) / 3
	}
	var errs []error
	if err := gradClose(what+": d/dx", dx, deriv(func(v float64) float64 { return loss(th, v) }, x)); err != nil {
		errs = append(errs, err)
	}
	ths := slices.Clone(th)
	for k := range th {
		fd := deriv(func(v float64) float64 {
			ths[k] = v
			defer func() { ths[k] = th[k] }()
			return loss(ths, x)
		}, th[k])
		if err := gradClose(fmt.Sprintf("%s: d/dθ[%d]", what, k), dth[k], fd); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// scalarPullbackChecks checks the pullback vjp of the scalar map f (a
// transformer's Forward with ForwardVJP, or Inverse with InverseVJP) at
// each θ case and its point, against finite differences of the loss
// gOut·f(θ, u) + gLD·log|f′|, with cotangents varied from case to case
// around gOut and gLD.
func scalarPullbackChecks(name string, thetas [][]float64, us []float64, f func(th []float64, u float64) (float64, float64),
	vjp func(th []float64, u, v, g, gl float64, dth []float64) float64, gOut, gLD float64) error {
	var errs []error
	for i, th := range thetas {
		u := us[i]
		g, gl := gOut+0.1*float64(i%5), gLD+0.2*float64(i%3)
		loss := func(th []float64, u float64) float64 {
			v, ld := f(th, u)
			return g*v + gl*ld
		}
		v, _ := f(th, u)
		dth := sentinelParams(len(th))
		du := vjp(th, u, v, g, gl, dth)
		unsentinel(dth)
		errs = append(errs, scalarGradCheck(fmt.Sprintf("%s θ case %d", name, i), loss, th, u, du, dth))
	}
	return errors.Join(errs...)
}
