package flows

// The orthogonal (Householder) Sylvester flow of van den Berg et al. (2018);
// see viflows.go for the direction and the numerical inverse's pullback.
//
// With Q (dim×M) the first M columns of H_1·H_2·…·H_K, H_k = I −
// 2·v_k·v_kᵀ/‖v_k‖² (so QᵀQ = I), R and R̃ upper triangular M×M with
// diagonals tanh(ρ) and tanh(ρ̃), and h = tanh:
//
//	y = Qᵀz,  a = R̃·y + b,  x = z + Q·R·h(a),
//	log|det ∂x/∂z| = Σ_m log(1 + h′(a_m)·R_mm·R̃_mm),
//
// by the matrix determinant lemma (det(I + Q·R·D·R̃·Qᵀ) = det(I_M + D·R̃·R),
// a triangular matrix); |R_mm|, |R̃_mm| < 1 make each factor positive, the
// paper's condition for invertibility.
//
// Inverse (of g, the density direction): Qᵀx = y + R·h(R̃·y + b) is upper
// triangular in y, so y is solved from its last entry up, each a scalar
// increasing equation y_i + R_ii·h(R̃_ii·y_i + σ_i) = ρ_i (slope
// 1 + R_ii·R̃_ii·h′ > 0) whose root lies within ρ_i ± 1; then
// z = Q·y + (x − Q·Qᵀx). J⁻ᵀ by Woodbury: with K = R̃ᵀ·D·Rᵀ (lower
// triangular), J⁻ᵀ·g = g − Q·K·(I + K)⁻¹·Qᵀ·g, a forward substitution.
//
// The pullback through the reflections: for Y = H·X, H = I − 2uuᵀ/n,
// n = ‖u‖²: X̄ = H·Ȳ and ū = −(2/n)·(Ȳ·Xᵀu + X·Ȳᵀu) + (4/n²)·(uᵀȲXᵀu)·u.

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// SylvesterConfig configures a Sylvester flow; zero fields take defaults.
type SylvesterConfig struct {
	// Hidden is M, the number of hidden units (columns of Q), in
	// [1, dim] (default dim).
	Hidden int
	// Reflections is K, the number of Householder reflections that make
	// Q (default M).
	Reflections int
}

// Sylvester returns the orthogonal Sylvester flow of van den Berg,
// Hasenclever, Tomczak and Welling, "Sylvester Normalizing Flows for
// Variational Inference" (2018), with Q made of Householder reflections
// (their H-SNF), in the sampling direction (Inverse)
//
//	x = z + Q·R·tanh(R̃·Qᵀz + b),   log|det ∂x/∂z| = Σ_m log(1 + tanh′(a_m)·R_mm·R̃_mm),
//
// with Q (dim×M) the first M columns of a product of K Householder
// reflections, R and R̃ upper triangular M×M whose diagonals are tanh of
// their parameters (so R_mm·R̃_mm > −1, the condition for invertibility;
// the diagonal parameters are clamped to ±15, with zero gradient beyond,
// so that 1 + R_mm·R̃_mm stays above 4e-13 in float64).
//
// Parameters: [v_1 … v_K (K×dim, row k the reflection vector v_k) |
// R (M×M) | R̃ (M×M) | b (M)], R and R̃ row-major with the entries below the
// diagonal unused (zero gradient) and the diagonal entries ρ, ρ̃ read as
// tanh(ρ), tanh(ρ̃). Init draws the v_k from N(0, 1) and R̃'s used entries
// from N(0, 1/M) (key.Split(2)), and sets R = 0 and b = 0: the layer starts
// as the identity.
//
// Direct, the density direction, solves Qᵀx = y + R·tanh(R̃y + b) for y
// from its last entry up (solveIncreasing per entry, with a bracket of
// width 2 + 2|R_ii|, to 1e-13·max(1, |y_i|)). Both pullbacks are provided;
// the context is ignored. Init returns an error for dim < 1, a negative
// contextDim, M outside [1, dim] or K < 1.
func Sylvester(cfg SylvesterConfig) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		const who = "Sylvester"
		m, k := cfg.Hidden, cfg.Reflections
		if m == 0 {
			m = dim
		}
		if k == 0 {
			k = m
		}
		if dim >= 1 && (m < 1 || m > dim) {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %d hidden units, want in [1, %d]", who, m, dim)
		}
		if k < 1 {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %d reflections, want at least 1", who, k)
		}
		sh := sylShape{d: dim, m: m, k: k}
		np := k*dim + 2*m*m + m
		bj, err := newVILayer(who, dim, contextDim, np, func(p Params) viFlow { return newSylvester(p, sh) })
		if err != nil {
			return nil, Bijection{}, err
		}
		p := make(Params, np)
		keys := key.Split(2)
		rng := keys[0].Rand()
		for i := range k * dim {
			p[i] = rng.NormFloat64()
		}
		rng = keys[1].Rand()
		rt := p[sh.rtOff() : sh.rtOff()+m*m]
		for i := range m {
			for j := i; j < m; j++ {
				rt[i*m+j] = rng.NormFloat64() / math.Sqrt(float64(m))
			}
		}
		return p, bj, nil
	}
}

// sylShape is a Sylvester flow's shape and its parameters' offsets.
type sylShape struct{ d, m, k int }

func (s sylShape) rOff() int  { return s.k * s.d }
func (s sylShape) rtOff() int { return s.rOff() + s.m*s.m }
func (s sylShape) bOff() int  { return s.rtOff() + s.m*s.m }

// sylvester is a Sylvester flow prepared from its parameters.
type sylvester struct {
	sylShape
	v      []float64   // reflection vectors (K×d)
	qs     [][]float64 // qs[k] = H_{k+1}·…·H_K·E (d×M), qs[0] = Q, qs[K] = E
	R, Rt  []float64   // effective R and R̃ (M×M, zero below the diagonal)
	opc    []float64   // 1 + R_mm·R̃_mm, computed without cancellation
	clamp  []bool      // the diagonal parameters ρ_m, ρ̃_m at the clamp (2M)
	b      []float64
	dQ     []float64 // accumulated ∂L/∂Q (d×M)
	dR     []float64 // accumulated ∂L/∂R, ∂L/∂R̃ (effective), ∂L/∂b
	dRt    []float64
	db     []float64
	y, a   []float64 // per-row scratch (M)
	t, s   []float64
	g1, g2 []float64
}

func newSylvester(p Params, sh sylShape) *sylvester {
	d, m, k := sh.d, sh.m, sh.k
	f := &sylvester{sylShape: sh, v: p[:k*d], b: p[sh.bOff() : sh.bOff()+m],
		R: make([]float64, m*m), Rt: make([]float64, m*m), opc: make([]float64, m), clamp: make([]bool, 2*m),
		dQ: make([]float64, d*m), dR: make([]float64, m*m), dRt: make([]float64, m*m), db: make([]float64, m),
		y: make([]float64, m), a: make([]float64, m), t: make([]float64, m), s: make([]float64, m),
		g1: make([]float64, m), g2: make([]float64, m)}
	for i := range m {
		for j := i; j < m; j++ {
			r, rt := p[sh.rOff()+i*m+j], p[sh.rtOff()+i*m+j]
			if i == j {
				a, b := min(max(r, -sylDiagClamp), sylDiagClamp), min(max(rt, -sylDiagClamp), sylDiagClamp)
				f.clamp[i], f.clamp[m+i] = a != r, b != rt
				// 1 + tanh a·tanh b = cosh(a + b)/(cosh a·cosh b).
				f.opc[i] = math.Exp(logCosh(a+b) - logCosh(a) - logCosh(b))
				r, rt = math.Tanh(a), math.Tanh(b)
			}
			f.R[i*m+j], f.Rt[i*m+j] = r, rt
		}
	}
	// Q = H_1·(H_2·(…(H_K·E))).
	f.qs = make([][]float64, k+1)
	e := make([]float64, d*m)
	for i := range m {
		e[i*m+i] = 1
	}
	f.qs[k] = e
	for r := k - 1; r >= 0; r-- {
		f.qs[r] = householder(f.v[r*d:(r+1)*d], f.qs[r+1], m)
	}
	return f
}

// sylDiagClamp bounds the diagonal parameters ρ, ρ̃: beyond ±15, tanh is
// within 2e-13 of ±1 and 1 + R_mm·R̃_mm could reach 0 in float64, making
// the map singular; clamped, it stays above 4e-13, computed accurately.
const sylDiagClamp = 15

// logCosh returns log cosh x without overflow.
func logCosh(x float64) float64 {
	a := math.Abs(x)
	return a + math.Log1p(math.Exp(-2*a)) - math.Ln2
}

// den returns 1 + tanh′(a_m)·R_mm·R̃_mm for t = tanh(a_m), as
// t² + tanh′·(1 + R_mm·R̃_mm): non-negative terms, positive.
func (f *sylvester) den(m int, t float64) float64 {
	return t*t + (1-t*t)*f.opc[m]
}

// householder returns H·X for H = I − 2uuᵀ/‖u‖² and X d×m (H = I when
// u = 0).
func householder(u, X []float64, m int) []float64 {
	d := len(u)
	var n float64
	for _, v := range u {
		n += v * v
	}
	Y := make([]float64, d*m)
	copy(Y, X)
	if n == 0 {
		return Y
	}
	for j := range m {
		var ux float64
		for i := range d {
			ux += u[i] * X[i*m+j]
		}
		c := 2 * ux / n
		for i := range d {
			Y[i*m+j] -= c * u[i]
		}
	}
	return Y
}

// qT sets out (M) to Qᵀ·v.
func (f *sylvester) qT(v, out []float64) {
	Q := f.qs[0]
	clear(out)
	for i, vi := range v {
		for j := range f.m {
			out[j] += Q[i*f.m+j] * vi
		}
	}
}

// qMul adds Q·w (w of length M) into out (d).
func (f *sylvester) qMul(w, out []float64) {
	Q := f.qs[0]
	for i := range f.d {
		var s float64
		for j, wj := range w {
			s += Q[i*f.m+j] * wj
		}
		out[i] += s
	}
}

// hidden sets y = Qᵀz, a = R̃y + b and t = tanh(a) in the scratch.
func (f *sylvester) hidden(z []float64) {
	m := f.m
	f.qT(z, f.y)
	for i := range m {
		s := f.b[i]
		for j := i; j < m; j++ {
			s += f.Rt[i*m+j] * f.y[j]
		}
		f.a[i] = s
		f.t[i] = math.Tanh(s)
	}
}

func (f *sylvester) forward(z, x []float64) float64 {
	m := f.m
	f.hidden(z)
	var ld float64
	for i := range m {
		var s float64
		for j := i; j < m; j++ {
			s += f.R[i*m+j] * f.t[j]
		}
		f.s[i] = s
		ld += math.Log(f.den(i, f.t[i]))
	}
	copy(x, z)
	f.qMul(f.s, x)
	return ld
}

// back: with s = R·t, c_m = R_mm·R̃_mm, h′ = 1 − t², D_m = 1 + h′_m·c_m:
//
//	s̄ = Qᵀgx,  Q̄ += gx·sᵀ,  R̄ += s̄·tᵀ,  t̄ = Rᵀs̄,
//	ā = t̄∘h′ + gl·(c/D)∘(−2t∘h′),  c̄ = gl·h′/D  (R̄_mm += c̄·R̃_mm, R̃̄_mm += c̄·R_mm),
//	b̄ += ā,  R̃̄ += ā·yᵀ,  ȳ = R̃ᵀā,  gz = gx + Q·ȳ,  Q̄ += z·ȳᵀ.
func (f *sylvester) back(z, gx []float64, gl float64, gz []float64) {
	m, d := f.m, f.d
	f.hidden(z)
	for i := range m {
		var s float64
		for j := i; j < m; j++ {
			s += f.R[i*m+j] * f.t[j]
		}
		f.s[i] = s
	}
	sb, ab := f.g1, f.g2
	f.qT(gx, sb)
	for i := range d {
		for j := range m {
			f.dQ[i*m+j] += gx[i] * f.s[j]
		}
	}
	for i := range m {
		for j := i; j < m; j++ {
			f.dR[i*m+j] += sb[i] * f.t[j]
		}
	}
	for j := range m {
		var tb float64
		for i := 0; i <= j; i++ {
			tb += f.R[i*m+j] * sb[i]
		}
		h1 := 1 - f.t[j]*f.t[j]
		c := f.R[j*m+j] * f.Rt[j*m+j]
		den := f.den(j, f.t[j])
		ab[j] = tb*h1 + gl*(c/den)*(-2*f.t[j]*h1)
		cb := gl * h1 / den
		f.dR[j*m+j] += cb * f.Rt[j*m+j]
		f.dRt[j*m+j] += cb * f.R[j*m+j]
	}
	for i := range m {
		f.db[i] += ab[i]
		for j := i; j < m; j++ {
			f.dRt[i*m+j] += ab[i] * f.y[j]
		}
	}
	yb := f.s // reuse: s is no longer needed
	for j := range m {
		var v float64
		for i := 0; i <= j; i++ {
			v += f.Rt[i*m+j] * ab[i]
		}
		yb[j] = v
	}
	copy(gz, gx)
	f.qMul(yb, gz)
	for i := range d {
		for j := range m {
			f.dQ[i*m+j] += z[i] * yb[j]
		}
	}
}

// finish carries the effective gradients to the parameters: the diagonals
// through tanh, Q through the reflections (see the file's notes).
func (f *sylvester) finish(dp Params) {
	m, d, k := f.m, f.d, f.k
	dR, dRt := dp[f.rOff():f.rOff()+m*m], dp[f.rtOff():f.rtOff()+m*m]
	for i := range m {
		for j := i; j < m; j++ {
			gr, grt := f.dR[i*m+j], f.dRt[i*m+j]
			if i == j {
				gr *= 1 - f.R[i*m+i]*f.R[i*m+i]
				grt *= 1 - f.Rt[i*m+i]*f.Rt[i*m+i]
				if f.clamp[i] {
					gr = 0
				}
				if f.clamp[m+i] {
					grt = 0
				}
			}
			dR[i*m+j] += gr
			dRt[i*m+j] += grt
		}
	}
	db := dp[f.bOff() : f.bOff()+m]
	for i, v := range f.db {
		db[i] += v
	}
	// Through Q = H_1·…·H_K·E: Ȳ for qs[r] = H_{r+1}·qs[r+1].
	Yb := append([]float64(nil), f.dQ...)
	for r := range k {
		u := f.v[r*d : (r+1)*d]
		X := f.qs[r+1]
		var n float64
		for _, v := range u {
			n += v * v
		}
		if n == 0 {
			continue // H = I: Ȳ passes through, u gets nothing
		}
		xu := make([]float64, m)  // Xᵀu
		ybu := make([]float64, m) // Ȳᵀu
		for i := range d {
			for j := range m {
				xu[j] += X[i*m+j] * u[i]
				ybu[j] += Yb[i*m+j] * u[i]
			}
		}
		var sc float64 // uᵀȲXᵀu
		for j := range m {
			sc += ybu[j] * xu[j]
		}
		du := dp[r*d : (r+1)*d]
		for i := range d {
			var a, b float64
			for j := range m {
				a += Yb[i*m+j] * xu[j]
				b += X[i*m+j] * ybu[j]
			}
			du[i] += -2/n*(a+b) + 4/(n*n)*sc*u[i]
		}
		// X̄ = H·Ȳ.
		for j := range m {
			c := 2 * ybu[j] / n
			for i := range d {
				Yb[i*m+j] -= c * u[i]
			}
		}
	}
}

func (f *sylvester) inverse(x, z []float64) int {
	m := f.m
	rho := f.g1
	f.qT(x, rho)
	y := f.y
	maxEvals := 0
	for i := m - 1; i >= 0; i-- {
		sig := f.b[i]
		for j := i + 1; j < m; j++ {
			sig += f.Rt[i*m+j] * y[j]
		}
		rhs := rho[i]
		for j := i + 1; j < m; j++ {
			rhs -= f.R[i*m+j] * f.t[j]
		}
		rii, rtii := f.R[i*m+i], f.Rt[i*m+i]
		yi, evals := solveIncreasing(func(v float64) (float64, float64) {
			t := math.Tanh(rtii*v + sig)
			return v + rii*t - rhs, f.den(i, t)
		}, rhs, rhs-1-math.Abs(rii), rhs+1+math.Abs(rii))
		maxEvals = max(maxEvals, evals)
		y[i] = yi
		f.t[i] = math.Tanh(rtii*yi + sig)
	}
	// z = Q·y + (x − Q·Qᵀx).
	copy(z, x)
	for j := range m {
		f.s[j] = y[j] - rho[j]
	}
	f.qMul(f.s, z)
	return maxEvals
}

// solveJT sets out = J⁻ᵀg by Woodbury (see the file's notes).
func (f *sylvester) solveJT(z, g, out []float64) {
	m := f.m
	f.hidden(z)
	// K = R̃ᵀ·D·Rᵀ: K[i][j] = Σ_l R̃[l][i]·h′_l·R[j][l], lower triangular.
	K := mat.NewDense(m, m, nil)
	for i := range m {
		for j := 0; j <= i; j++ {
			var s float64
			for l := j; l <= i; l++ {
				s += f.Rt[l*m+i] * (1 - f.t[l]*f.t[l]) * f.R[j*m+l]
			}
			K.Set(i, j, s)
		}
	}
	q := f.g1
	f.qT(g, q)
	u := f.g2
	for i := range m {
		s := q[i]
		for j := range i {
			s -= K.At(i, j) * u[j]
		}
		u[i] = s / f.den(i, f.t[i]) // 1 + K_ii = 1 + R̃_ii·h′_i·R_ii
	}
	ku := f.s
	for i := range m {
		var s float64
		for j := 0; j <= i; j++ {
			s += K.At(i, j) * u[j]
		}
		ku[i] = -s
	}
	copy(out, g)
	f.qMul(ku, out)
}
