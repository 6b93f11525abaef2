package flows

// The per-column affine map, written once for ActNorm, BatchNorm and
// Standardize (and a Model's context standardisation).
//
// Each of them maps column j of a row by out_j = (in_j − sub_j)·mul_j +
// add_j, with per-column vectors fixed for the call (colAffine): ActNorm
// z = (x − bias)·e^{−logScale} and x = z·e^{logScale} + bias; BatchNorm's
// evaluation map z = (x − μ)·a + β and its inverse (z − β)·(1/a) + μ, its
// training map x̂ = (x − m)·r then z = x̂·γ + β; Standardize
// (x − mean)/scale (a division, as it has always been computed) and
// z·scale + mean. An absent term is skipped, not taken as 0, so that
// every map keeps its bits (−0 + 0 would be +0).
//
// ActNorm's and BatchNorm's trained maps have the same pullback
// (scaleShiftVJP): a per-column log-factor θ (f = e^{±θ}·c, c fixed) and a
// per-column shift β, either added after the factor, out = in·f + β (the
// "direct" form: ActNorm's Inverse, BatchNorm's evaluation map), or
// subtracted before it, out = (in − β)·f with f = e^{−θ}·c (the inverse
// form: ActNorm's Direct, BatchNorm's Inverse). With g = ∂L/∂out and
// Λ = Σ_i dLogDet_i (the log-det being ±Σ_j θ_j + const per row):
//
//	direct form:   ∂L/∂in = g·f,  ∂L/∂β = Σ_i g,     ∂L/∂θ = Σ_i g·(out − β) + Λ
//	inverse form:  ∂L/∂in = g·f,  ∂L/∂β = −Σ_i g·f,  ∂L/∂θ = −Σ_i g·out − Λ
//
// ActNorm's Inverse computes its ∂L/∂θ as Σ_i (g·f)·in, equal up to
// rounding to the direct form's; the pinned bits keep that order
// (scaledIn).

import "gonum.org/v1/gonum/mat"

// colAffine is the per-column map out_j = (in_j − sub_j)·mul_j + add_j, or
// (in_j − sub_j)/div_j + add_j when div is set; a nil sub, mul or add is
// no term (see the file comment).
type colAffine struct {
	sub, mul, div, add []float64
}

// apply returns the map of the rows of m as a new n×d row-major slice.
func (a colAffine) apply(m *mat.Dense) (out []float64, n int) {
	xs, n, _ := rawRows(m)
	return a.applyRows(xs, n), n
}

// applyRows returns the map of the n contiguous rows xs as a new slice:
// one loop for each shape the layers use, the terms applied one at a time
// for any other.
func (a colAffine) applyRows(xs []float64, n int) []float64 {
	out := make([]float64, len(xs))
	d := len(xs) / max(n, 1)
	for i := range n {
		src, dst := xs[i*d:(i+1)*d], out[i*d:(i+1)*d]
		switch {
		case a.sub != nil && a.mul != nil && a.add != nil && a.div == nil:
			sub, mul, add := a.sub[:d], a.mul[:d], a.add[:d]
			for j, v := range src {
				dst[j] = (v-sub[j])*mul[j] + add[j]
			}
		case a.sub != nil && a.mul != nil && a.add == nil && a.div == nil:
			sub, mul := a.sub[:d], a.mul[:d]
			for j, v := range src {
				dst[j] = (v - sub[j]) * mul[j]
			}
		case a.sub == nil && a.mul != nil && a.add != nil && a.div == nil:
			mul, add := a.mul[:d], a.add[:d]
			for j, v := range src {
				dst[j] = v*mul[j] + add[j]
			}
		default:
			a.stagedRow(dst, src)
		}
	}
	return out
}

// stagedRow writes the map of src into dst, one term at a time.
func (a colAffine) stagedRow(dst, src []float64) {
	copy(dst, src)
	if a.sub != nil {
		for j, s := range a.sub[:len(dst)] {
			dst[j] -= s
		}
	}
	if a.div != nil {
		for j, s := range a.div[:len(dst)] {
			dst[j] /= s
		}
	} else if a.mul != nil {
		for j, s := range a.mul[:len(dst)] {
			dst[j] *= s
		}
	}
	if a.add != nil {
		for j, s := range a.add[:len(dst)] {
			dst[j] += s
		}
	}
}

// slopeBack returns dL/din from dL/dout = g (n×d): g·mul, or g/div.
func (a colAffine) slopeBack(g *mat.Dense) []float64 {
	out, _ := colAffine{mul: a.mul, div: a.div}.apply(g)
	return out
}

// scaleShiftVJP is the pullback of a trained per-column map with factor f
// and shift β (the forms and formulas are in the file comment).
type scaleShiftVJP struct {
	f []float64 // ∂out_j/∂in_j
	// h is n×d, kept by the pass: out − β in the direct form, out in the
	// inverse form, in with scaledIn.
	h        []float64
	inverse  bool // the inverse form: β subtracted before f = e^{−θ}·c
	scaledIn bool // ∂L/∂θ = Σ_i (g·f)·h (ActNorm's Inverse), not Σ_i g·h
}

// back adds ∂L/∂θ into dTheta and ∂L/∂β into dShift and returns ∂L/∂in,
// given g = ∂L/∂out (n×d) and dLogDet.
func (v scaleShiftVJP) back(g *mat.Dense, dLogDet, dTheta, dShift []float64) *mat.Dense {
	var sumLD float64
	for _, x := range dLogDet {
		sumLD += x
	}
	if v.inverse {
		sumLD = -sumLD
	}
	for j := range dTheta {
		dTheta[j] += sumLD
	}
	r := g.RawMatrix()
	n, d := r.Rows, r.Cols
	din := make([]float64, n*d)
	for i := range n {
		gr, hr, dr := r.Data[i*r.Stride:i*r.Stride+d], v.h[i*d:(i+1)*d], din[i*d:(i+1)*d]
		f, dT, dS := v.f[:d], dTheta[:d], dShift[:d]
		switch {
		case v.inverse:
			for j, gij := range gr {
				s := gij * f[j]
				dr[j] = s
				dS[j] -= s
				dT[j] -= gij * hr[j]
			}
		case v.scaledIn:
			for j, gij := range gr {
				s := gij * f[j]
				dr[j] = s
				dS[j] += gij
				dT[j] += s * hr[j]
			}
		default:
			for j, gij := range gr {
				dr[j] = gij * f[j]
				dS[j] += gij
				dT[j] += gij * hr[j]
			}
		}
	}
	return mat.NewDense(n, d, din)
}

// repeatedLogDet returns a new slice of n copies of v: the per-row
// log-determinant of a layer whose Jacobian does not depend on the row.
func repeatedLogDet(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}
