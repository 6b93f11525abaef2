package flowstest

// Finite differences: the Jacobian's log-determinant, and gradients to
// inputs, contexts and parameters.

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
)

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

// gradCheck compares dx, dc and dp with central finite differences of
// loss at (p, x, c): every entry of x and of c (c and dc nil without a
// context, and dc nil meaning zero), and up to maxParamChecks parameters
// not listed in skip.
func gradCheck(what string, loss func(flows.Params, *mat.Dense, *mat.Dense) float64, p flows.Params, x, c, dx, dc *mat.Dense, dp flows.Params, skip []int) error {
	if dx == nil {
		return fmt.Errorf("%s pullback returned a nil dx", what)
	}
	if r, cc := dx.Dims(); !sameDims(x, r, cc) {
		return fmt.Errorf("%s pullback returned dx of %d×%d, want the batch's shape", what, r, cc)
	}
	var errs []error
	xs := mat.DenseCopyOf(x)
	var cs *mat.Dense
	if c != nil {
		cs = mat.DenseCopyOf(c)
		if dc == nil {
			r, cc := c.Dims()
			dc = mat.NewDense(r, cc, nil) // nil means no dependence on the context
		}
	}
	fd := func(name string, m, grad *mat.Dense) {
		n, d := m.Dims()
		for i := 0; i < n; i++ {
			for j := 0; j < d; j++ {
				a := m.At(i, j)
				h := fdStep * math.Max(1, math.Abs(a))
				m.Set(i, j, a+h)
				lp := loss(p, xs, cs)
				m.Set(i, j, a-h)
				lm := loss(p, xs, cs)
				m.Set(i, j, a)
				if err := gradClose(fmt.Sprintf("%s: d/d%s[%d,%d]", what, name, i, j), grad.At(i, j), (lp-lm)/(2*h)); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	fd("x", xs, dx)
	if cs != nil {
		fd("c", cs, dc)
	}
	ps := slices.Clone(p)
	for _, k := range pick(len(p)) {
		if slices.Contains(skip, k) {
			continue
		}
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
