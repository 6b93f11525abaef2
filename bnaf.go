package flows

// The block neural autoregressive flow (BNAF) layer of De Cao, Titov and
// Aziz, "Block Neural Autoregressive Flow" (2019).
//
// # The network
//
// With d = dim, units a_0 = 1, a_1 … a_{L−1} = cfg.Hidden, a_L = 1 and widths
// w_l = d·a_l, weight layer l (l = 0 … L−1) maps w_l to w_{l+1} columns; its
// rows (outputs) and columns (inputs) are grouped in d blocks, block i
// holding the a_{l+1} (a_l) units of dimension i. Entry (r, c) is used when
// c's block is at most r's: the matrix is block lower triangular, so
// output i depends only on inputs 0 … i. From the raw weights W̃ (one full
// w_{l+1}×w_l matrix, the upper blocks unused), row r:
//
//	V_rc = exp(W̃_rc) (diagonal block),  W̃_rc (lower block),  0 (upper)
//	W_rc = e^{s_r}·V_rc/‖V_r‖,           (weight normalisation)
//	G_rc = log W_rc = s_r + W̃_rc − log‖V_r‖   (diagonal block)
//
// so the diagonal blocks are positive and their logs are exact without a
// logarithm. ‖V_r‖ is computed with V scaled by e^{−m_r}, m_r the largest
// log|V_rc| of the row (the diagonal's W̃, a lower entry's log|W̃|), which
// changes neither W nor G and keeps exp and the squares from overflowing.
//
// The pass is pre_l = h_l·W_lᵀ + b_l (plus c·Wc for l = 0), h_{l+1} =
// φ(pre_l) for the hidden layers and z = pre_{L−1}, with
// φ(u) = tanh(u) + α·u (α = cfg.Leak).
//
// # The log-determinant
//
// The Jacobian is lower triangular, and its diagonal entry for dimension i
// is the product of the diagonal blocks (1×a, a×a, …, a×1) with the
// activation slopes between them, all positive. In log space, with
// A_l = log φ′(pre_l) = log(α + sech²(pre_l)):
//
//	v_0[r] = G_0[r, i],   v_l[r] = LSE_{c ∈ block i}(G_l[r, c] + v_{l−1}[c] + A_{l−1}[c]),
//	log J_ii = v_{L−1}[i],
//
// (v_l has the shape of pre_l, so one matrix per layer holds it for every
// row). The pullback of the log-det runs this backwards with the softmax
// weights π_rc = exp(G_l[r,c] + u_c − v_l[r]) (u = v_{l−1} + A_{l−1}),
// giving dL/dG and dL/dA; dL/dA joins the output's backward pass at pre_l
// through (log φ′)′(u) = −2·tanh(u)·sech²(u)/(α + sech²(u)).
//
// The gradients of W and G go to the raw parameters row by row: with
// σ_r = e^{s_r}/‖V_r‖, S_r = Σ_c W̄_rc·V_rc and Γ_r = Σ_c Ḡ_rc,
//
//	s̄_r  = Σ_c W̄_rc·W_rc + Γ_r,
//	V̄_rk = σ_r·(W̄_rk − S_r·V_rk/‖V_r‖²) − Γ_r·V_rk/‖V_r‖²,
//	W̃̄_rk = V̄_rk·V_rk + Ḡ_rk (diagonal),   V̄_rk (lower),
//
// all in the scaled V (the map is invariant to the scale).
//
// # Inverse
//
// Dimension i's output is a strictly increasing function of x_i given
// x_0 … x_{i−1}, from −∞ to ∞ (the leak makes φ onto ℝ): Inverse solves
// for x_0, x_1, … in turn (solveIncreasing, to 1e-13·max(1, |x_i|)), each
// evaluation running only dimension i's blocks with the contributions of
// the dimensions already solved summed once. Its log-det is the negative
// of Direct's at the solution. InverseVJP is the implicit-function
// pullback: with J = ∂z/∂x at the solution (formed per row in forward
// mode) and ḡ = gx − gl·∇ₓ log det J, λ = J⁻ᵀ·ḡ is dL/dz (back
// substitution), and the Direct pullback with dz = −λ, dl = −gl gives the
// parameters' and the context's gradients.

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/linalg"
)

// BNAFConfig configures a BNAF layer. The zero value takes the defaults.
type BNAFConfig struct {
	// Hidden holds the units per dimension of each hidden layer (each at
	// least 1; default [8 8]): hidden layer l is dim·Hidden[l] wide.
	Hidden []int
	// Leak is α in the activation φ(u) = tanh(u) + α·u, in (0, 1]
	// (default 0.01).
	Leak float64
}

// bnafDefaultLeak is BNAFConfig.Leak's default.
const bnafDefaultLeak = 0.01

// bnafInitLogScale is the initial s of the first layer's rows: weights of
// norm e⁻² ≈ 0.14 keep standardised inputs (|x| ≲ 7) in tanh's linear
// range at init, so the layer starts near a linear map (a random one).
const bnafInitLogScale = -2

// bnafDefaultHidden is BNAFConfig.Hidden's default.
var bnafDefaultHidden = []int{8, 8}

// BNAF returns a block neural autoregressive flow layer (De Cao, Titov and
// Aziz, 2019): a monotone neural network R^dim → R^dim whose weight
// matrices are block lower triangular with positive diagonal blocks, so
// that output i is a strictly increasing function of x_i given x_0 …
// x_{i−1} (the natural order; stack BNAF layers with Reverse or Shuffle
// between them).
//
// With d = dim and units a_l (1, cfg.Hidden…, 1), each weight layer l maps
// d·a_l to d·a_{l+1} columns (see the file's notes): weight-normalised rows
// W_rc = e^{s_r}·V_rc/‖V_r‖ with V = exp(W̃) on the diagonal blocks and W̃
// below, tanh(u) + α·u between layers, and the log-det from the diagonal
// blocks' logs, s_r + W̃_rc − log‖V_r‖, combined in log space. BNAF's
// activation is tanh; the leak α·u (cfg.Leak, default 0.01, as FlowJAX's
// leaky tanh) makes each dimension's map onto ℝ, so that the layer is a
// bijection of ℝ^dim, its density normalised and Inverse defined for every
// z.
//
// Parameters: for each weight layer l in order, [W̃_l (d·a_{l+1} × d·a_l,
// row-major, rows the outputs; entries above the diagonal blocks unused,
// with zero gradient) | s_l (d·a_{l+1}) | b_l (d·a_{l+1})], then, when
// contextDim > 0, the context weights Wc (contextDim × d·a_1, row-major),
// added to the first layer's pre-activation as c·Wc. Init draws each used
// W̃ entry uniformly on ±√(6/(a_l + a_{l+1})) from key.Split(L)[l]; b and
// Wc start at zero, so the map at init does not depend on the context, and
// s at zero except the first layer's, −2, so that standardised inputs stay
// in tanh's linear range: the layer starts near a linear map, not at the
// identity (follow it with ActNorm to standardise its output).
//
// Direct is one pass of the network. There is no closed-form inverse:
// Inverse solves the dimensions in turn with a bracketed, safeguarded
// Newton iteration to 1e-13·max(1, |x_i|) (at most 1 + 280 + 2·100 + 1
// evaluations per dimension) of a sign change of the computed map (so z is
// matched to the rounding of Direct's terms, not of z; FuzzBNAF); where a dimension's map is so flat that its
// root lies beyond float64 (diagonal weights below e^{−700} of the row's
// largest), it returns ±MaxFloat64 for that dimension. DirectVJP and InverseVJP are hand-written;
// the inverse's pullback forms each row's d×d Jacobian (cost d·Σ_l w_l·w_{l+1}
// per row), so it suits small dim.
//
// Init returns an error for dim < 1, a negative contextDim, a hidden entry
// below 1 or a leak outside (0, 1]. The functions panic for a batch without
// dim columns, a context that is not n×contextDim, or parameters of the
// wrong length.
func BNAF(cfg BNAFConfig) InitFunc {
	cfg.Hidden = slices.Clone(cfg.Hidden)
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		const who = "BNAF"
		if err := checkDim(who, dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		if err := checkContextDim(who, contextDim); err != nil {
			return nil, Bijection{}, err
		}
		b, err := newBNAF(cfg, dim, contextDim)
		if err != nil {
			return nil, Bijection{}, err
		}
		p := make(Params, b.np)
		keys := key.Split(b.L)
		for r := range b.w[1] {
			p[b.off[0]+b.w[1]*b.w[0]+r] = bnafInitLogScale
		}
		for l := range b.L {
			rng := keys[l].Rand()
			r0 := math.Sqrt(6 / float64(b.a[l]+b.a[l+1]))
			W := p[b.off[l] : b.off[l]+b.w[l+1]*b.w[l]]
			for r := range b.w[l+1] {
				for c := range b.w[l] {
					if b.used(l, r, c) {
						W[r*b.w[l]+c] = r0 * (2*rng.Float64() - 1)
					}
				}
			}
		}
		return p, b.bijection(), nil
	}
}

// newBNAF returns the shape of a BNAF layer of cfg for dim columns and
// contextDim context columns, or an init error.
func newBNAF(cfg BNAFConfig, dim, contextDim int) (*bnaf, error) {
	const who = "BNAF"
	hidden := cfg.Hidden
	if len(hidden) == 0 {
		hidden = bnafDefaultHidden
	}
	for i, h := range hidden {
		if h < 1 {
			return nil, fmt.Errorf("flows: %s: hidden layer %d has %d units per dimension, want at least 1", who, i, h)
		}
	}
	alpha := cfg.Leak
	if alpha == 0 {
		alpha = bnafDefaultLeak
	}
	if !(alpha > 0 && alpha <= 1) {
		return nil, fmt.Errorf("flows: %s: leak %v, want in (0, 1]", who, cfg.Leak)
	}
	b := &bnaf{dim: dim, cdim: contextDim, alpha: alpha}
	b.a = append(append([]int{1}, hidden...), 1)
	b.L = len(b.a) - 1
	for _, u := range b.a {
		if dim > 0 && u > maxLayerFloats/dim {
			return nil, fmt.Errorf("flows: %s: %d units per dimension for %d columns: a layer %.3g wide, more than one layer may allocate (2 GiB)", who, u, dim, float64(u)*float64(dim))
		}
		b.w = append(b.w, dim*u)
	}
	if err := checkWidths(who, b.w...); err != nil {
		return nil, err
	}
	np := 0
	for l := range b.L {
		b.off = append(b.off, np)
		np += b.w[l+1]*b.w[l] + 2*b.w[l+1]
	}
	b.ctx = np
	b.np = np + contextDim*b.w[1]
	return b, nil
}

// bnaf holds a BNAF layer's immutable shape.
type bnaf struct {
	dim, cdim int
	alpha     float64
	L         int   // weight layers
	a         []int // units per dimension at each level, a[0] = a[L] = 1
	w         []int // widths, w[l] = dim·a[l]
	off       []int // offset of layer l's [W̃ | s | b] in the parameters
	ctx       int   // offset of the context weights
	np        int
}

// used reports whether entry (r, c) of weight layer l is used; diag whether
// it is in a diagonal block.
func (b *bnaf) used(l, r, c int) bool { return c/b.a[l] <= r/b.a[l+1] }

// rowRange returns the columns [lo, hi) that row r of layer l uses, and
// where its diagonal block starts (dlo; the block ends at hi).
func (b *bnaf) rowRange(l, r int) (dlo, hi int) {
	i := r / b.a[l+1]
	return i * b.a[l], (i + 1) * b.a[l]
}

// bnafWeights are one layer's effective weights and what their pullback
// needs.
type bnafWeights struct {
	W     []float64 // w_{l+1}×w_l, zero above the diagonal blocks
	G     []float64 // log W on the diagonal blocks (same layout; other entries unset)
	V     []float64 // V scaled by e^{−m_r}, row by row (same layout)
	sigma []float64 // e^{s_r}/‖V_r‖ (scaled), per row
	n2    []float64 // ‖V_r‖² (scaled), per row
	em    []float64 // e^{−m_r}, the scaling, per row
}

// weights computes layer l's effective weights from p.
func (b *bnaf) weights(p Params, l int) bnafWeights {
	in, out := b.w[l], b.w[l+1]
	raw := p[b.off[l] : b.off[l]+out*in]
	s := p[b.off[l]+out*in : b.off[l]+out*in+out]
	lw := bnafWeights{W: make([]float64, out*in), G: make([]float64, out*in), V: make([]float64, out*in),
		sigma: make([]float64, out), n2: make([]float64, out), em: make([]float64, out)}
	for r := range out {
		dlo, hi := b.rowRange(l, r)
		row := raw[r*in : r*in+hi]
		m := math.Inf(-1)
		for c, v := range row {
			if c >= dlo {
				m = max(m, v)
			} else if v != 0 {
				m = max(m, math.Log(math.Abs(v)))
			}
		}
		V := lw.V[r*in : r*in+hi]
		var n2 float64
		for c, v := range row {
			switch {
			case c >= dlo:
				V[c] = math.Exp(v - m)
			case v != 0:
				V[c] = math.Copysign(math.Exp(math.Log(math.Abs(v))-m), v)
			}
			n2 += V[c] * V[c]
		}
		// The largest |V_c| is 1, so 1 ≤ n2 ≤ hi.
		sig := math.Exp(s[r]) / math.Sqrt(n2)
		lw.sigma[r], lw.n2[r], lw.em[r] = sig, n2, math.Exp(-m)
		W := lw.W[r*in : r*in+hi]
		for c, v := range V {
			W[c] = sig * v
		}
		half := 0.5 * math.Log(n2)
		for c := dlo; c < hi; c++ {
			lw.G[r*in+c] = s[r] + (row[c] - m) - half
		}
	}
	return lw
}

// bnafAct returns φ(u), φ′(u), log φ′(u) and (log φ′)′(u) for leak alpha.
func bnafAct(u, alpha float64) (phi, d, ld, dld float64) {
	th := math.Tanh(u)
	e := math.Exp(-2 * math.Abs(u))
	sech2 := 4 * e / ((1 + e) * (1 + e))
	d = sech2 + alpha
	return th + alpha*u, d, math.Log(d), -2 * th * sech2 / d
}

// bnafTape is what a Direct pass keeps for its pullback.
type bnafTape struct {
	n   int
	ws  []bnafWeights
	h   [][]float64 // h[l], n×w[l]: h[0] a private copy of x
	pre [][]float64 // pre[l], n×w[l+1]
	v   [][]float64 // v[l], n×w[l+1]: the log-det chain
	// For the hidden layers (l < L−1), at pre[l]: u[l] = v[l] + log φ′,
	// the input of the next link of the chain; dphi[l] = φ′ and
	// dla[l] = (log φ′)′.
	u, dphi, dla [][]float64
	c            []float64 // a private copy of the context (n×cdim), or nil
}

// direct runs the network on the rows xs (n×dim) with contexts cs and
// returns z, the log-det and, when keep, the tape (else nil; the tape's
// h[0] and c are then the caller's slices).
func (b *bnaf) direct(p Params, xs, cs []float64, n int, keep bool) ([]float64, []float64, *bnafTape) {
	t := &bnafTape{n: n, ws: make([]bnafWeights, b.L), h: make([][]float64, b.L), pre: make([][]float64, b.L), v: make([][]float64, b.L),
		u: make([][]float64, b.L), dphi: make([][]float64, b.L), dla: make([][]float64, b.L)}
	if keep {
		xs = slices.Clone(xs)
		cs = slices.Clone(cs)
	}
	t.h[0], t.c = xs, cs
	for l := range b.L {
		in, out := b.w[l], b.w[l+1]
		lw := b.weights(p, l)
		t.ws[l] = lw
		bias := p[b.off[l]+out*in+out : b.off[l]+out*in+2*out]
		pre := make([]float64, n*out)
		for i := range n {
			copy(pre[i*out:(i+1)*out], bias)
		}
		linalg.Gemm(false, true, n, out, in, 1, t.h[l], lw.W, 1, pre)
		if l == 0 && b.cdim > 0 {
			linalg.Gemm(false, false, n, out, b.cdim, 1, cs, p[b.ctx:b.ctx+b.cdim*out], 1, pre)
		}
		t.pre[l] = pre
		if l < b.L-1 {
			h := make([]float64, n*out)
			la := make([]float64, n*out) // log φ′, made into u below
			dphi := make([]float64, n*out)
			dla := make([]float64, n*out)
			for k, u := range pre {
				h[k], dphi[k], la[k], dla[k] = bnafAct(u, b.alpha)
			}
			t.h[l+1], t.u[l], t.dphi[l], t.dla[l] = h, la, dphi, dla
		}
	}
	// The log-det chain (see the file's notes).
	for l := range b.L {
		in, out := b.w[l], b.w[l+1]
		G := t.ws[l].G
		v := make([]float64, n*out)
		for i := range n {
			vr := v[i*out : (i+1)*out]
			for r := range vr {
				dlo, hi := b.rowRange(l, r)
				if l == 0 {
					vr[r] = G[r*in+dlo]
					continue
				}
				u := t.u[l-1][i*in+dlo : i*in+hi]
				g := G[r*in+dlo : r*in+hi]
				mx := math.Inf(-1)
				for c, uc := range u {
					mx = max(mx, g[c]+uc)
				}
				var sum float64
				for c, uc := range u {
					sum += math.Exp(g[c] + uc - mx)
				}
				vr[r] = mx + math.Log(sum)
			}
		}
		t.v[l] = v
		if l < b.L-1 {
			for k, vk := range v {
				t.u[l][k] += vk
			}
		}
	}
	ld := make([]float64, n)
	last := t.v[b.L-1]
	for i := range n {
		var sum float64
		for _, v := range last[i*b.dim : (i+1)*b.dim] {
			sum += v
		}
		ld[i] = sum
	}
	return t.pre[b.L-1], ld, t
}

// check checks a pass's shapes and returns the rows, their count and the
// context's rows (nil without a context).
func (b *bnaf) check(p Params, u, c *mat.Dense) (us []float64, n int, cs []float64) {
	checkParams("BNAF", p, b.np)
	checkWidth("BNAF", u, b.dim)
	us, n, _ = rawRows(u)
	checkContext("BNAF", c, n, b.cdim)
	if b.cdim > 0 {
		cs, _, _ = rawRows(c)
	}
	return us, n, cs
}

// inverse solves Direct(x) = z row by row, dimension by dimension (see the
// file's notes), and returns x, the inverse log-det and the most
// evaluations one dimension's solution took.
func (b *bnaf) inverse(p Params, zs, cs []float64, n int) ([]float64, []float64, int) {
	d := b.dim
	ws := make([]bnafWeights, b.L)
	for l := range b.L {
		ws[l] = b.weights(p, l)
	}
	x := make([]float64, n*d)
	maxA := slices.Max(b.a)
	// Per row: h[l] (w[l]) as the dimensions are solved; per dimension
	// the offsets of its rows in each layer and two work vectors.
	h := make([][]float64, b.L)
	offs := make([][]float64, b.L)
	for l := range b.L {
		h[l] = make([]float64, b.w[l])
		offs[l] = make([]float64, b.a[l+1])
	}
	hv, hn, dv, dn := make([]float64, maxA), make([]float64, maxA), make([]float64, maxA), make([]float64, maxA)
	maxEvals := 0
	for i := range n {
		for j := range d {
			// The offsets: bias, the dimensions solved and the context.
			for l := range b.L {
				in, out := b.w[l], b.w[l+1]
				bias := p[b.off[l]+out*in+out : b.off[l]+out*in+2*out]
				for k := range b.a[l+1] {
					r := j*b.a[l+1] + k
					s := bias[r]
					dlo, _ := b.rowRange(l, r)
					for c, wv := range ws[l].W[r*in : r*in+dlo] {
						s += wv * h[l][c]
					}
					if l == 0 && b.cdim > 0 {
						wc := p[b.ctx : b.ctx+b.cdim*out]
						for q, cv := range cs[i*b.cdim : (i+1)*b.cdim] {
							s += cv * wc[q*out+r]
						}
					}
					offs[l][k] = s
				}
			}
			// eval runs dimension j's blocks at x_j = v, leaving each
			// layer's input block in h (when store) and returning
			// z_j − target and ∂z_j/∂x_j.
			eval := func(v, target float64, store bool) (float64, float64) {
				hv[0], dv[0] = v, 1
				for l := range b.L {
					in := b.w[l]
					ai, ao := b.a[l], b.a[l+1]
					if store {
						copy(h[l][j*ai:(j+1)*ai], hv[:ai])
					}
					for k := range ao {
						r := j*ao + k
						wrow := ws[l].W[r*in+j*ai : r*in+(j+1)*ai]
						pre, dpre := offs[l][k], 0.0
						for c, wv := range wrow {
							pre += wv * hv[c]
							dpre += wv * dv[c]
						}
						if l < b.L-1 {
							phi, dphi, _, _ := bnafAct(pre, b.alpha)
							hn[k], dn[k] = phi, dphi*dpre
						} else {
							hn[k], dn[k] = pre, dpre
						}
					}
					hv, hn = hn, hv
					dv, dn = dn, dv
				}
				return hv[0] - target, dv[0]
			}
			target := zs[i*d+j]
			xj, evals := solveIncreasing(func(v float64) (float64, float64) { return eval(v, target, false) }, 0, math.Inf(-1), math.Inf(1))
			maxEvals = max(maxEvals, evals)
			eval(xj, target, true)
			x[i*d+j] = xj
		}
	}
	_, ld, _ := b.direct(p, x, cs, n, false)
	for i := range ld {
		ld[i] = -ld[i]
	}
	return x, ld, maxEvals
}

// jacobian returns row i's d×d Jacobian ∂z/∂x (row-major, lower
// triangular) from the tape, in forward mode.
func (b *bnaf) jacobian(t *bnafTape, i int) []float64 {
	d := b.dim
	T := slices.Clone(t.ws[0].W) // w_1×d
	for l := 1; l < b.L; l++ {
		in, out := b.w[l], b.w[l+1]
		for c := range in {
			dphi := t.dphi[l-1][i*in+c]
			for k := range d {
				T[c*d+k] *= dphi
			}
		}
		next := make([]float64, out*d)
		linalg.GemmSerial(false, false, out, d, in, 1, t.ws[l].W, T, 0, next)
		T = next
	}
	return T
}

// bijection returns the layer's functions.
func (b *bnaf) bijection() Bijection {
	d := b.dim
	return Bijection{
		Direct: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) {
			xs, n, cs := b.check(p, x, c)
			z, ld, _ := b.direct(p, xs, cs, n, false)
			return mat.NewDense(n, d, z), ld
		},
		DirectVJP: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			xs, n, cs := b.check(p, x, c)
			z, ld, t := b.direct(p, xs, cs, n, true)
			zc := slices.Clone(z)
			back := func(dz *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
				checkPullback("BNAF", dz, dLogDet, dp, dc, n, d, b.np, b.cdim)
				g, _, _ := rawRows(dz)
				dx, dcs := b.back(p, t, g, dLogDet, dp)
				addContextGrad(dc, dcs, b.cdim)
				return mat.NewDense(n, d, dx)
			}
			return mat.NewDense(n, d, zc), ld, back
		},
		Inverse: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64) {
			zs, n, cs := b.check(p, z, c)
			x, ld, _ := b.inverse(p, zs, cs, n)
			return mat.NewDense(n, d, x), ld
		},
		InverseVJP: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			zs, n, cs := b.check(p, z, c)
			x, ld, _ := b.inverse(p, zs, cs, n)
			_, _, t := b.direct(p, x, cs, n, true)
			pc := slices.Clone(p)
			back := func(dx *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
				checkPullback("BNAF", dx, dLogDet, dp, dc, n, d, b.np, b.cdim)
				g, _, _ := rawRows(dx)
				// ∇ₓ log det J per row: the Direct pullback with dz = 0,
				// dl = 1 (its parameter gradient discarded).
				ones := make([]float64, n)
				for i := range ones {
					ones[i] = 1
				}
				gradLD, _ := b.back(pc, t, make([]float64, n*d), ones, make(Params, b.np))
				lambda := make([]float64, n*d)
				negGl := make([]float64, n)
				for i := range n {
					J := b.jacobian(t, i)
					lam := lambda[i*d : (i+1)*d]
					for k := d - 1; k >= 0; k-- {
						s := g[i*d+k] - dLogDet[i]*gradLD[i*d+k]
						for q := k + 1; q < d; q++ {
							s -= J[q*d+k] * lam[q]
						}
						lam[k] = s / math.Exp(t.v[b.L-1][i*d+k])
					}
					negGl[i] = -dLogDet[i]
				}
				negLam := make([]float64, n*d)
				for k, v := range lambda {
					negLam[k] = -v
				}
				_, dcs := b.back(pc, t, negLam, negGl, dp)
				addContextGrad(dc, dcs, b.cdim)
				return mat.NewDense(n, d, lambda)
			}
			return mat.NewDense(n, d, x), ld, back
		},
	}
}
