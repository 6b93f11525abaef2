package flows

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// gmmSumTol is how far the weights handed to GMM may sum from 1: a few
// hundred ulps of rounding in weights typed or computed by hand, far below
// any real mistake (weights summing to 0.9).
const gmmSumTol = 1e-9

// GMM is a Gaussian mixture with K = len(weights) components,
//
//	p(x) = Σ_k w_k N(x; μ_k, Σ_k),
//
// whose weights, means and covariances are all trainable parameters. It
// starts at the mixture given: means[k] (length dim), covariances[k]
// (dim×dim, positive definite) and weights[k] (positive, summing to 1
// within 1e-9). The arguments are copied, so changing them afterwards does
// not change the mixture.
//
// The weights are the softmax of K free logits (the logits start at
// log w_k) and each covariance is Σ_k = L_k L_kᵀ with L_k lower triangular,
// its diagonal exp of a free log-diagonal and its strictly-lower part free,
// so every parameter vector is a valid mixture. Parameter layout:
//
//	[logits (K) | means (K×dim, component-major) | per component:
//	 log-diagonal of L (dim), then strictly-lower entries of L row-major
//	 (L₁₀, L₂₀, L₂₁, L₃₀, …: dim(dim−1)/2)]
//
// GMMComponents reads a mixture back from such a vector.
//
// Init returns an error, not a panic, when the mixture cannot be used at
// the dimension: no components, a mean or covariance of the wrong size, a
// non-finite entry, a covariance that is not positive definite (its
// Cholesky factorisation fails), a weight that is not positive, or weights
// that do not sum to 1. The key is not used.
func GMM(means [][]float64, covariances []*mat.SymDense, weights []float64) DistInitFunc {
	ms := make([][]float64, len(means))
	for k, m := range means {
		ms[k] = slices.Clone(m)
	}
	cs := make([]*mat.SymDense, len(covariances))
	for k, c := range covariances {
		if c != nil && !c.IsEmpty() {
			cs[k] = mat.NewSymDense(c.SymmetricDim(), nil)
			cs[k].CopySym(c)
		}
	}
	ws := slices.Clone(weights)
	return func(_ Key, dim, _ int) (Params, Distribution, error) {
		p, err := gmmParams(dim, ms, cs, ws)
		if err != nil {
			return nil, Distribution{}, err
		}
		return p, gmmDistribution(len(ws), dim), nil
	}
}

// GMMRandom is a trainable Gaussian mixture of k components (see GMM for
// the model and the parameter layout) that starts with equal weights, unit
// covariances, and means drawn from N(0, I) with the key, which breaks the
// symmetry between components. Init returns an error when k < 1.
func GMMRandom(k int) DistInitFunc {
	return func(key Key, dim, _ int) (Params, Distribution, error) {
		if err := checkDim("GMM", dim, 1); err != nil {
			return nil, Distribution{}, err
		}
		if k < 1 {
			return nil, Distribution{}, fmt.Errorf("flows: GMM: %d components, need at least 1", k)
		}
		g := gmmLayout{k: k, dim: dim}
		p := make(Params, g.size())
		// Logits 0 (equal weights) and log-diagonal 0, lower part 0
		// (L = I); only the means are drawn.
		rng := key.Rand()
		for i := range g.means(p) {
			p[g.k+i] = rng.NormFloat64()
		}
		return p, gmmDistribution(k, dim), nil
	}
}

// GMMComponents returns the mixture that the parameters p of a k-component
// GMM (or GMMRandom) over rows of width dim stand for: the means, the
// covariances L Lᵀ and the weights softmax(logits). It panics when p does
// not have the length of that layout.
func GMMComponents(p Params, k, dim int) (means [][]float64, covariances []*mat.SymDense, weights []float64) {
	if k < 1 || dim < 1 {
		panic(fmt.Sprintf("flows: GMM: %d components of dimension %d", k, dim))
	}
	g := gmmLayout{k: k, dim: dim}
	checkParams("GMM", p, g.size())
	weights = gmmSoftmax(make([]float64, k), g.logits(p))
	L := make([]float64, dim*dim)
	for c := range k {
		means = append(means, slices.Clone(g.mean(p, c)))
		g.lower(p, c, L)
		Lm := mat.NewTriDense(dim, mat.Lower, L)
		cov := mat.NewSymDense(dim, nil)
		cov.SymOuterK(1, Lm) // mat.TriDense as a Matrix: L Lᵀ
		covariances = append(covariances, cov)
	}
	return means, covariances, weights
}

// gmmLayout locates the parts of a GMM's parameter vector.
type gmmLayout struct{ k, dim int }

// chol is the number of parameters of one component's Cholesky factor.
func (g gmmLayout) chol() int { return g.dim * (g.dim + 1) / 2 }

func (g gmmLayout) size() int { return g.k + g.k*g.dim + g.k*g.chol() }

func (g gmmLayout) logits(p Params) []float64 { return p[:g.k:g.k] }

func (g gmmLayout) means(p Params) []float64 { return p[g.k : g.k+g.k*g.dim] }

func (g gmmLayout) mean(p Params, c int) []float64 {
	off := g.k + c*g.dim
	return p[off : off+g.dim : off+g.dim]
}

// cholOff is the offset of component c's log-diagonal; its strictly-lower
// entries follow, entry (i, j), j < i, at cholOff + dim + i(i−1)/2 + j.
func (g gmmLayout) cholOff(c int) int { return g.k + g.k*g.dim + c*g.chol() }

// lower writes component c's factor L into dst, dim×dim row-major with
// zeros above the diagonal, and returns Σ log L_ii.
func (g gmmLayout) lower(p Params, c int, dst []float64) (logDiag float64) {
	d := g.dim
	off := g.cholOff(c)
	clear(dst)
	for i := range d {
		dst[i*d+i] = math.Exp(p[off+i])
		logDiag += p[off+i]
		row := off + d + i*(i-1)/2
		copy(dst[i*d:i*d+i], p[row:row+i])
	}
	return logDiag
}

// gmmParams validates an explicit mixture at dimension dim and returns its
// parameter vector.
func gmmParams(dim int, means [][]float64, covs []*mat.SymDense, weights []float64) (Params, error) {
	if err := checkDim("GMM", dim, 1); err != nil {
		return nil, err
	}
	k := len(weights)
	if k < 1 {
		return nil, fmt.Errorf("flows: GMM: no components (no weights), need at least 1")
	}
	if len(means) != k || len(covs) != k {
		return nil, fmt.Errorf("flows: GMM: %d weights, %d means and %d covariances, want as many of each",
			k, len(means), len(covs))
	}
	g := gmmLayout{k: k, dim: dim}
	p := make(Params, g.size())
	sum := 0.0
	for c, w := range weights {
		switch {
		case math.IsNaN(w) || math.IsInf(w, 0):
			return nil, fmt.Errorf("flows: GMM: weight %d is %g, want a finite number", c, w)
		case w < 0:
			return nil, fmt.Errorf("flows: GMM: weight %d is negative (%g)", c, w)
		case w == 0:
			// Its logit would be −∞, which no optimiser can move.
			return nil, fmt.Errorf("flows: GMM: weight %d is 0: drop the component instead", c)
		}
		sum += w
		p[c] = math.Log(w)
	}
	if math.Abs(sum-1) > gmmSumTol {
		return nil, fmt.Errorf("flows: GMM: weights sum to %.12g, want 1 (within %g)", sum, gmmSumTol)
	}
	for c, m := range means {
		if len(m) != dim {
			return nil, fmt.Errorf("flows: GMM: mean %d has length %d, want dimension %d", c, len(m), dim)
		}
		for _, v := range m {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("flows: GMM: mean %d has a non-finite entry (%g)", c, v)
			}
		}
		copy(g.mean(p, c), m)
	}
	var ch mat.Cholesky
	var L mat.TriDense
	for c, cov := range covs {
		if cov == nil {
			return nil, fmt.Errorf("flows: GMM: covariance %d is nil or empty", c)
		}
		if n := cov.SymmetricDim(); n != dim {
			return nil, fmt.Errorf("flows: GMM: covariance %d is %d×%d, want %d×%d", c, n, n, dim, dim)
		}
		for i := range dim {
			for j := range i + 1 {
				if v := cov.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, fmt.Errorf("flows: GMM: covariance %d has a non-finite entry (%g)", c, v)
				}
			}
		}
		if !ch.Factorize(cov) {
			return nil, fmt.Errorf("flows: GMM: covariance %d is not positive definite", c)
		}
		L.Reset()
		ch.LTo(&L)
		off := g.cholOff(c)
		for i := range dim {
			p[off+i] = math.Log(L.At(i, i))
			for j := range i {
				p[off+dim+i*(i-1)/2+j] = L.At(i, j)
			}
		}
	}
	return p, nil
}

// gmmSoftmax writes the softmax of a into dst and returns dst.
func gmmSoftmax(dst, a []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range a {
		m = math.Max(m, v)
	}
	s := 0.0
	for i, v := range a {
		dst[i] = math.Exp(v - m)
		s += dst[i]
	}
	for i := range dst {
		dst[i] /= s
	}
	return dst
}

// gmmDistribution is the Distribution of a k-component GMM over rows of
// width dim.
func gmmDistribution(k, dim int) Distribution {
	g := gmmLayout{k: k, dim: dim}
	return Distribution{
		LogPDF: func(p Params, x, _ *mat.Dense) []float64 {
			lp, _ := g.logPDFVJP(p, x, nil)
			return lp
		},
		Sample:    g.sample,
		LogPDFVJP: g.logPDFVJP,
	}
}

// solveRows overwrites the rows of b (n×d) with u_i = L⁻¹ b_i (trans =
// true: b ← b L⁻ᵀ) or v_i = L⁻ᵀ b_i (trans = false: b ← b L⁻¹), L being
// the lower-triangular d×d factor in Lraw.
func (g gmmLayout) solveRows(Lraw []float64, b []float64, n int, trans bool) {
	t := blas.NoTrans
	if trans {
		t = blas.Trans
	}
	d := g.dim
	blas64.Trsm(blas.Right, t, 1,
		blas64.Triangular{Uplo: blas.Lower, Diag: blas.NonUnit, N: d, Data: Lraw, Stride: d},
		blas64.General{Rows: n, Cols: d, Data: b, Stride: d})
}

// centred writes u_i = L_c⁻¹ (x_i − μ_c) for every row into u.
func (g gmmLayout) centred(p Params, x *mat.Dense, c int, Lraw, u []float64) {
	n, _ := x.Dims()
	d := g.dim
	mu := g.mean(p, c)
	for i := range n {
		row, dst := x.RawRowView(i), u[i*d:(i+1)*d]
		for j, v := range row {
			dst[j] = v - mu[j]
		}
	}
	g.solveRows(Lraw, u, n, true)
}

// logPDFVJP is LogPDFVJP: it computes log p and, with the
// responsibilities r (n×k), what the pullback needs.
//
// With a_ic = log w_c + log N(x_i; μ_c, L_c L_cᵀ), where
//
//	log N = −½‖u‖² − Σ_j log L_jj − (d/2) log 2π,  u = L⁻¹(x − μ)
//
// (a triangular solve), log p(x_i) = logsumexp_c a_ic, computed by
// subtracting the largest a_ic so that a point far from every component
// (‖u‖² ≈ 1e6) still gives a finite log density.
func (g gmmLayout) logPDFVJP(p Params, x, _ *mat.Dense) ([]float64, DistPullback) {
	checkParams("GMM", p, g.size())
	checkWidth("GMM", x, g.dim)
	n, _ := x.Dims()
	k, d := g.k, g.dim
	logw := gmmSoftmax(make([]float64, k), g.logits(p))
	for c := range logw {
		logw[c] = math.Log(logw[c])
	}
	a := make([]float64, n*k)
	L := make([]float64, d*d)
	u := make([]float64, n*d)
	for c := range k {
		base := logw[c] - g.lower(p, c, L) - float64(d)*logSqrt2Pi
		g.centred(p, x, c, L, u)
		for i := range n {
			s := 0.0
			for _, v := range u[i*d : (i+1)*d] {
				s += v * v
			}
			a[i*k+c] = base - 0.5*s
		}
	}
	lp := make([]float64, n)
	for i := range n {
		ai := a[i*k : (i+1)*k]
		m := slices.Max(ai)
		s := 0.0
		for _, v := range ai {
			s += math.Exp(v - m)
		}
		lp[i] = m + math.Log(s)
		// a becomes the responsibilities r_ic = exp(a_ic − log p_i), the
		// posterior probability of component c given x_i.
		for c, v := range ai {
			ai[c] = math.Exp(v - lp[i])
		}
	}
	r := a
	back := func(dLogp []float64, dp Params, _ *mat.Dense) *mat.Dense {
		checkDistPullback("GMM", dLogp, dp, n, g.size())
		g.logitsBack(p, r, dLogp, dp)
		return g.componentsBack(p, x, r, dLogp, dp)
	}
	return lp, back
}

// logitsBack adds the logits' gradient into dp. Since log p = logsumexp_c
// a_c, ∂ log p/∂θ = Σ_c r_c ∂a_c/∂θ; ∂ log w_c/∂ℓ_j = δ_cj − w_j, so
// ∂ log p/∂ℓ_j = r_j − w_j (Σ_c r_c = 1).
func (g gmmLayout) logitsBack(p Params, r, dLogp []float64, dp Params) {
	k := g.k
	dlog := g.logits(dp)
	w := gmmSoftmax(make([]float64, k), g.logits(p))
	for i, gi := range dLogp {
		for j := range k {
			dlog[j] += gi * (r[i*k+j] - w[j])
		}
	}
}

// componentsBack adds the means' and Cholesky factors' gradients into dp
// and returns the rows' gradient.
//
// Per component, with u = L⁻¹(x − μ) and v = L⁻ᵀu:
//
//	∂ log N/∂x = −v,   ∂ log N/∂μ = v;
//	d(−½uᵀu) = −uᵀ du = uᵀ L⁻¹ dL u = vᵀ dL u (du = −L⁻¹ dL u),
//
// so ∂ log N/∂L_ab = v_a u_b − δ_ab / L_aa on the lower triangle (a ≥ b;
// the upper one is not a parameter). The diagonal is L_aa = exp(s_a):
// ∂/∂s_a = L_aa v_a u_a − 1. Every term is weighted by c_i = dLogp_i·r_ic
// and summed over the rows: G = Σ_i c_i v_i u_iᵀ = (diag(c) V)ᵀ U.
func (g gmmLayout) componentsBack(p Params, x *mat.Dense, r, dLogp []float64, dp Params) *mat.Dense {
	n, _ := x.Dims()
	k, d := g.k, g.dim
	dx := mat.NewDense(n, d, nil)
	L := make([]float64, d*d)
	u := make([]float64, n*d)
	cv := make([]float64, n*d)
	G := make([]float64, d*d)
	for c := range k {
		g.lower(p, c, L)
		g.centred(p, x, c, L, u)
		copy(cv, u)
		g.solveRows(L, cv, n, false) // rows v_i = L⁻ᵀ u_i
		sumC := 0.0
		dmu := g.mean(dp, c)
		for i := range n {
			ci := dLogp[i] * r[i*k+c]
			sumC += ci
			row, dst := cv[i*d:(i+1)*d], dx.RawRowView(i)
			for j := range row {
				row[j] *= ci // now c_i v_i
				dst[j] -= row[j]
				dmu[j] += row[j]
			}
		}
		blas64.Gemm(blas.Trans, blas.NoTrans, 1,
			blas64.General{Rows: n, Cols: d, Data: cv, Stride: d},
			blas64.General{Rows: n, Cols: d, Data: u, Stride: d},
			0, blas64.General{Rows: d, Cols: d, Data: G, Stride: d})
		off := g.cholOff(c)
		for a := range d {
			dp[off+a] += L[a*d+a]*G[a*d+a] - sumC
			row := off + d + a*(a-1)/2
			for b := range a {
				dp[row+b] += G[a*d+b]
			}
		}
	}
	return dx
}

// sample is Sample: for each row, the component by the inverse CDF of the
// weights softmax(logits) at a uniform from the key, then x = μ_c + L_c ε
// with ε ~ N(0, I).
func (g gmmLayout) sample(key Key, p Params, n int, _ *mat.Dense) *mat.Dense {
	checkParams("GMM", p, g.size())
	if n < 0 {
		panic("flows: GMM: negative sample count")
	}
	if n == 0 {
		return &mat.Dense{}
	}
	k, d := g.k, g.dim
	w := gmmSoftmax(make([]float64, k), g.logits(p))
	cdf := make([]float64, k)
	acc := 0.0
	for c, v := range w {
		acc += v
		cdf[c] = acc
	}
	Ls := make([]float64, k*d*d)
	for c := range k {
		g.lower(p, c, Ls[c*d*d:(c+1)*d*d])
	}
	rng := key.Rand()
	x := mat.NewDense(n, d, nil)
	eps := make([]float64, d)
	for i := range n {
		// Scaled by acc (1 up to rounding) so that the draw is exactly
		// proportional to the cumulative weights.
		t := rng.Float64() * acc
		c := 0
		for c < k-1 && t >= cdf[c] {
			c++
		}
		for j := range eps {
			eps[j] = rng.NormFloat64()
		}
		mu, L := g.mean(p, c), Ls[c*d*d:(c+1)*d*d]
		dst := x.RawRowView(i)
		for a := range d {
			s := mu[a]
			for b, e := range eps[:a+1] {
				s += L[a*d+b] * e
			}
			dst[a] = s
		}
	}
	return x
}
