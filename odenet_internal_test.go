package flows

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// odeNetCase is a dynamics net at perturbed parameters, with rows, a
// context, tangent directions and cotangents.
type odeNetCase struct {
	nt          *odeNet
	p           Params
	z, c, eps   []float64
	A, w        []float64
	n, k        int
	t           float64
	description string
}

func newODENetCase(act Activation, dim, cdim, k int) odeNetCase {
	nt := newODENet(dim, cdim, []int{5, 4}, act)
	p := nt.init(NewKey(1), false)
	rng := NewKey(2).Rand()
	for i := range p {
		p[i] += 0.3 * rng.NormFloat64() // away from f ≡ 0
	}
	n := 3
	draw := func(m int) []float64 {
		v := make([]float64, m)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	return odeNetCase{nt: nt, p: p, z: draw(n * dim), c: draw(n * cdim), eps: draw(k * n * dim),
		A: draw(n * dim), w: draw(n), n: n, k: k, t: 0.37,
		description: fmt.Sprintf("%v/dim=%d/cdim=%d/K=%d", act, dim, cdim, k)}
}

// loss returns Σ A∘f + Σ w∘T at (p, z, c).
func (tc odeNetCase) loss(p Params, z, c []float64) float64 {
	ws := tc.nt.newWork(tc.n, tc.k)
	tr := make([]float64, tc.n)
	f := tc.nt.forward(p, tc.t, z, c, tc.eps, ws, tr)
	var s float64
	for i, v := range f {
		s += tc.A[i] * v
	}
	if tc.k > 0 {
		for i, v := range tr {
			s += tc.w[i] * v
		}
	}
	return s
}

func fdCheck(t *testing.T, what string, v []float64, grad []float64, loss func() float64) {
	t.Helper()
	for i := range v {
		x := v[i]
		h := 1e-5 * max(1, math.Abs(x))
		v[i] = x + h
		lp := loss()
		v[i] = x - h
		lm := loss()
		v[i] = x
		fd := (lp - lm) / (2 * h)
		if math.Abs(fd-grad[i]) > 1e-7+1e-6*math.Abs(fd) {
			t.Errorf("%s[%d] = %.10g, finite differences %.10g", what, i, grad[i], fd)
		}
	}
}

// TestODENetReverse checks the reverse pass (the VJP alone, K = 0, and the
// second-order products with tangents) against finite differences of the
// forward pass, for both activations, with and without a context.
func TestODENetReverse(t *testing.T) {
	for _, act := range []Activation{Tanh, SiLU} {
		for _, cdim := range []int{0, 2} {
			for _, k := range []int{0, 1, 3} {
				tc := newODENetCase(act, 3, cdim, k)
				t.Run(tc.description, func(t *testing.T) {
					ws := tc.nt.newWork(tc.n, tc.k)
					tr := make([]float64, tc.n)
					tc.nt.forward(tc.p, tc.t, tc.z, tc.c, tc.eps, ws, tr)
					dp := make([]float64, len(tc.p))
					zb := make([]float64, len(tc.z))
					cb := make([]float64, len(tc.c))
					var w []float64
					if k > 0 {
						w = tc.w
					}
					tc.nt.backward(tc.p, tc.A, w, tc.eps, ws, dp, zb, cb)
					p, z, c := slices.Clone(tc.p), slices.Clone(tc.z), slices.Clone(tc.c)
					l := func() float64 { return tc.loss(p, z, c) }
					fdCheck(t, "dz", z, zb, l)
					fdCheck(t, "dc", c, cb, l)
					fdCheck(t, "dp", p, dp, l)
				})
			}
		}
	}
}

// TestODENetTangent checks the forward tangents against finite differences
// of f along ε, and that the exact trace (unit directions) is the trace of
// the finite-difference Jacobian.
func TestODENetTangent(t *testing.T) {
	tc := newODENetCase(SiLU, 3, 1, 1)
	nt, n, d := tc.nt, tc.n, 3
	ws := nt.newWork(n, 1)
	tr := make([]float64, n)
	nt.forward(tc.p, tc.t, tc.z, tc.c, tc.eps, ws, tr)
	fd := slices.Clone(ws.ad[nt.layers()-1])
	f := func(z []float64) []float64 {
		return slices.Clone(nt.forward(tc.p, tc.t, z, tc.c, nil, nt.newWork(n, 0), nil))
	}
	const h = 1e-5
	zp, zm := slices.Clone(tc.z), slices.Clone(tc.z)
	for i := range zp {
		zp[i] += h * tc.eps[i]
		zm[i] -= h * tc.eps[i]
	}
	fp, fm := f(zp), f(zm)
	for i := range fd {
		if want := (fp[i] - fm[i]) / (2 * h); math.Abs(fd[i]-want) > 1e-8 {
			t.Errorf("tangent[%d] = %.10g, finite differences %.10g", i, fd[i], want)
		}
	}
	// Exact trace: unit directions.
	eps := make([]float64, d*n*d)
	for k := 0; k < d; k++ {
		for i := 0; i < n; i++ {
			eps[(k*n+i)*d+k] = 1
		}
	}
	nt.forward(tc.p, tc.t, tc.z, tc.c, eps, nt.newWork(n, d), tr)
	for i := 0; i < n; i++ {
		var want float64
		for k := 0; k < d; k++ {
			zp, zm := slices.Clone(tc.z), slices.Clone(tc.z)
			zp[i*d+k] += h
			zm[i*d+k] -= h
			want += (f(zp)[i*d+k] - f(zm)[i*d+k]) / (2 * h)
		}
		if math.Abs(tr[i]-want) > 1e-8 {
			t.Errorf("row %d: trace %.10g, finite differences %.10g", i, tr[i], want)
		}
	}
}
