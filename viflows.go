package flows

// The classic variational-inference flows: planar and radial flows
// (Rezende and Mohamed, "Variational Inference with Normalizing Flows",
// 2015) and orthogonal Sylvester flows (van den Berg, Hasenclever, Tomczak
// and Welling, "Sylvester Normalizing Flows for Variational Inference",
// 2018).
//
// # Direction
//
// Each is defined in the sampling direction, x = g(z) = z + (a residual),
// the map of the papers, with a closed form, a cheap log-determinant and
// a closed-form pullback: that is this package's Inverse (latent to data),
// and InverseVJP is the one optim.FitVI trains through. Direct, the
// density direction, is g⁻¹: planar and Sylvester flows have no closed
// form and are inverted numerically (solveIncreasing on a scalar equation
// per unit, with a known bracket), the radial flow's is the positive root
// of a quadratic. Direct's log-det is −log|det ∂g/∂z| at the solution.
//
// # Gradients of the numerical direction
//
// DirectVJP is the implicit-function pullback of g(z; θ) = x: with J =
// ∂g/∂z at the solution, ld_g = log|det J|, and upstream gz, gl,
//
//	ḡ = gz − gl·∇_z ld_g,   λ = J⁻ᵀ·ḡ = ∂L/∂x,
//	∂L/∂θ = (g's pullback at z with gx = −λ, gl' = −gl), its θ part,
//
// where ∇_z ld_g is g's pullback with gx = 0, gl' = 1 (its z part), and
// J⁻ᵀ has a closed form in each family: J is the identity plus a rank-one
// term (planar, radial: Sherman–Morrison) or plus Q·R·D·R̃·Qᵀ (Sylvester:
// Woodbury, with a triangular M×M solve).
//
// The layers have no conditioner and ignore the context. The rows are
// independent; each call prepares the parameters once (planar's û,
// radial's α and β, Sylvester's Q) and runs the rows one by one.

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// viFlow is a sampling-direction map g prepared from its parameters, for
// one call. Its methods work on one row and may keep per-call
// accumulators (the gradients of prepared quantities); they are not safe
// for concurrent use, each call making its own.
type viFlow interface {
	// forward sets x = g(z) and returns log|det ∂g/∂z|.
	forward(z, x []float64) float64
	// back is g's pullback at z: given gx = ∂L/∂x and gl = ∂L/∂ld it
	// writes ∂L/∂z into gz and accumulates the parameters' gradients.
	back(z, gx []float64, gl float64, gz []float64)
	// finish adds the accumulated parameter gradients into dp.
	finish(dp Params)
	// inverse sets z = g⁻¹(x) and returns the most evaluations a root
	// took (0 for a closed form).
	inverse(x, z []float64) int
	// solveJT sets out = J(z)⁻ᵀ·g.
	solveJT(z, g, out []float64)
}

// viLayer builds the Bijection of a sampling-direction map.
type viLayer struct {
	who     string
	dim, np int
	prepare func(p Params) viFlow
}

// check checks a pass's shapes and returns the rows and their count.
func (v *viLayer) check(p Params, u, c *mat.Dense) ([]float64, int) {
	checkParams(v.who, p, v.np)
	checkWidth(v.who, u, v.dim)
	us, n, _ := rawRows(u)
	if c != nil && !c.IsEmpty() {
		if r, _ := c.Dims(); r != n {
			panic(fmt.Sprintf("flows: %s: context has %d rows, want %d", v.who, r, n))
		}
	}
	return us, n
}

// sampling runs g on every row of zs: x and log|det ∂g/∂z|.
func (v *viLayer) sampling(f viFlow, zs []float64, n int) ([]float64, []float64) {
	d := v.dim
	x := make([]float64, n*d)
	ld := make([]float64, n)
	for i := range n {
		ld[i] = f.forward(zs[i*d:(i+1)*d], x[i*d:(i+1)*d])
	}
	return x, ld
}

// density runs g⁻¹ on every row of xs: z and −log|det ∂g/∂z| at z.
func (v *viLayer) density(f viFlow, xs []float64, n int) ([]float64, []float64) {
	d := v.dim
	z := make([]float64, n*d)
	ld := make([]float64, n)
	tmp := make([]float64, d)
	for i := range n {
		zr := z[i*d : (i+1)*d]
		f.inverse(xs[i*d:(i+1)*d], zr)
		ld[i] = -f.forward(zr, tmp)
	}
	return z, ld
}

func (v *viLayer) bijection() Bijection {
	d := v.dim
	return Bijection{
		Inverse: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64) {
			zs, n := v.check(p, z, c)
			x, ld := v.sampling(v.prepare(p), zs, n)
			return mat.NewDense(n, d, x), ld
		},
		InverseVJP: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			zs, n := v.check(p, z, c)
			x, ld := v.sampling(v.prepare(p), zs, n)
			zc := slices.Clone(zs)
			pc := slices.Clone(p)
			back := func(dx *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
				checkPullback(v.who, dx, dLogDet, dp, nil, n, d, v.np, 0)
				g, _, _ := rawRows(dx)
				f := v.prepare(pc)
				dz := make([]float64, n*d)
				for i := range n {
					f.back(zc[i*d:(i+1)*d], g[i*d:(i+1)*d], dLogDet[i], dz[i*d:(i+1)*d])
				}
				f.finish(dp)
				return mat.NewDense(n, d, dz)
			}
			return mat.NewDense(n, d, x), ld, back
		},
		Direct: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) {
			xs, n := v.check(p, x, c)
			z, ld := v.density(v.prepare(p), xs, n)
			return mat.NewDense(n, d, z), ld
		},
		DirectVJP: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			xs, n := v.check(p, x, c)
			z, ld := v.density(v.prepare(p), xs, n)
			zc := slices.Clone(z)
			pc := slices.Clone(p)
			back := func(dz *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
				checkPullback(v.who, dz, dLogDet, dp, nil, n, d, v.np, 0)
				g, _, _ := rawRows(dz)
				// ∇_z ld_g from a pullback whose parameter gradients are
				// dropped, then the implicit-function pullback (see the
				// file's notes).
				grad := v.prepare(pc)
				f := v.prepare(pc)
				dx := make([]float64, n*d)
				zero := make([]float64, d)
				gld := make([]float64, d)
				gbar := make([]float64, d)
				neg := make([]float64, d)
				tmp := make([]float64, d)
				for i := range n {
					zr := zc[i*d : (i+1)*d]
					grad.back(zr, zero, 1, gld)
					for k := range d {
						gbar[k] = g[i*d+k] - dLogDet[i]*gld[k]
					}
					lam := dx[i*d : (i+1)*d]
					f.solveJT(zr, gbar, lam)
					for k, v := range lam {
						neg[k] = -v
					}
					f.back(zr, neg, -dLogDet[i], tmp)
				}
				f.finish(dp)
				return mat.NewDense(n, d, dx)
			}
			return mat.NewDense(n, d, z), ld, back
		},
	}
}

// newVILayer checks the widths and returns the layer's functions.
func newVILayer(who string, dim, contextDim, np int, prepare func(p Params) viFlow) (Bijection, error) {
	if err := checkDim(who, dim, 1); err != nil {
		return Bijection{}, err
	}
	if err := checkContextDim(who, contextDim); err != nil {
		return Bijection{}, err
	}
	v := &viLayer{who: who, dim: dim, np: np, prepare: prepare}
	return v.bijection(), nil
}

// softplus returns log(1 + e^a) and its derivative σ(a), without overflow.
func softplus(a float64) (float64, float64) { return rqsSoftplus(a) }

// ---------------------------------------------------------------- planar

// planarMinSlope floors 1 + wᵀû = softplus(wᵀu) (so m(s) = −1 +
// max(softplus(s), e⁻³⁰)): the map's slope along w stays at least e⁻³⁰
// and its log-det above −30, so that the map and its gradients stay
// finite where the paper's m would make it singular in float64.
var planarMinSlope = math.Exp(-30)

// planarUHatShift is log(e − 1), the wᵀu at which m(wᵀu) = wᵀu·… gives
// wᵀû = 0: init sets u = planarUHatShift·w/‖w‖² so that û = 0.
var planarUHatShift = math.Log(math.E - 1)

// Planar returns the planar flow of Rezende and Mohamed (2015), in the
// sampling direction (Inverse)
//
//	x = z + û·tanh(wᵀz + b),   log|det ∂x/∂z| = log(1 + wᵀû·tanh′(wᵀz + b)),
//
// with u reparameterised as in the paper's appendix so that wᵀû > −1,
// which makes the map invertible:
//
//	û = u + (m(wᵀu) − wᵀu)·w/‖w‖²,   m(a) = −1 + softplus(a)
//
// (û = u when w = 0; m is floored, m(a) = −1 + max(softplus(a), e⁻³⁰), so
// that the map's slope stays above e⁻³⁰ in float64). Parameters: [w (dim)
// | u (dim) | b]. Init draws w
// from N(0, 1/dim) with key and sets u = log(e − 1)·w/‖w‖², so that
// wᵀu = log(e − 1), m(wᵀu) = 0 and û = 0: the layer starts as the
// identity, and û moves first.
//
// Direct, the density direction, has no closed form: with a = wᵀz, wᵀx =
// a + wᵀû·tanh(a + b) is solved for a (solveIncreasing, in the bracket
// wᵀx ± |wᵀû|, to 1e-13·max(1, |a|)) and z = x − û·tanh(a + b). Both
// pullbacks are provided (Direct's by the implicit-function theorem); the
// context is ignored. Init returns an error for dim < 1 or a negative
// contextDim.
func Planar() InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		np := 2*dim + 1
		bj, err := newVILayer("Planar", dim, contextDim, np, func(p Params) viFlow { return newPlanar(p, dim) })
		if err != nil {
			return nil, Bijection{}, err
		}
		p := make(Params, np)
		rng := key.Rand()
		var n2 float64
		for k := range dim {
			p[k] = rng.NormFloat64() / math.Sqrt(float64(dim))
			n2 += p[k] * p[k]
		}
		if n2 > 0 {
			for k := range dim {
				p[dim+k] = planarUHatShift * p[k] / n2
			}
		}
		return p, bj, nil
	}
}

// planar is a planar flow prepared from its parameters.
type planar struct {
	d        int
	w, u, uh []float64 // w, u and û
	b        float64
	wu       float64 // wᵀû
	opw      float64 // 1 + wᵀû, computed without cancellation
	s, mu    float64 // wᵀu and μ = m(s) − s
	sig      float64 // m′(s): σ(s), or 0 where m is floored
	n2       float64 // ‖w‖²
	// Accumulated gradients of w (direct), û and b.
	dw, duh []float64
	db      float64
}

func newPlanar(p Params, d int) *planar {
	f := &planar{d: d, w: p[:d:d], u: p[d : 2*d : 2*d], b: p[2*d], uh: make([]float64, d), dw: make([]float64, d), duh: make([]float64, d)}
	for k := range d {
		f.s += f.w[k] * f.u[k]
		f.n2 += f.w[k] * f.w[k]
	}
	copy(f.uh, f.u)
	f.opw = 1
	if f.n2 > 0 {
		// wᵀû = m(s) = −1 + softplus(s), so 1 + wᵀû = softplus(s), kept
		// as such (rounding would lose it in 1 + wᵀû for s below about
		// −37) and floored at planarMinSlope, below which m is constant.
		sp, sig := softplus(f.s)
		if sp < planarMinSlope {
			sp, sig = planarMinSlope, 0
		}
		f.opw, f.sig = sp, sig
		f.mu = -1 + sp - f.s
		for k := range d {
			f.uh[k] += f.mu * f.w[k] / f.n2
		}
	}
	f.wu = f.opw - 1
	return f
}

// den returns 1 + wᵀû·tanh′(a) for t = tanh(a), as t² + tanh′·(1 + wᵀû): a
// sum of non-negative terms, positive.
func (f *planar) den(t float64) float64 {
	return t*t + (1-t*t)*f.opw
}

func (f *planar) pre(z []float64) float64 {
	a := f.b
	for k, v := range z {
		a += f.w[k] * v
	}
	return a
}

func (f *planar) forward(z, x []float64) float64 {
	t := math.Tanh(f.pre(z))
	for k := range z {
		x[k] = z[k] + f.uh[k]*t
	}
	return math.Log(f.den(t))
}

// back: with a = wᵀz + b, t = tanh a, h′ = 1 − t², h″ = −2t·h′ and
// ψ = wᵀû·h′:
//
//	∂L/∂û += t·gx + gl·h′/(1+ψ)·w,   ∂L/∂w += gl·h′/(1+ψ)·û + ā·z,
//	ā = h′·ûᵀgx + gl·wᵀû·h″/(1+ψ),   ∂L/∂b += ā,   ∂L/∂z = gx + ā·w.
func (f *planar) back(z, gx []float64, gl float64, gz []float64) {
	t := math.Tanh(f.pre(z))
	h1 := 1 - t*t
	h2 := -2 * t * h1
	den := f.den(t)
	var ug float64
	for k, v := range gx {
		ug += f.uh[k] * v
	}
	abar := h1*ug + gl*f.wu*h2/den
	c := gl * h1 / den
	for k := range z {
		f.duh[k] += t*gx[k] + c*f.w[k]
		f.dw[k] += c*f.uh[k] + abar*z[k]
		gz[k] = gx[k] + abar*f.w[k]
	}
	f.db += abar
}

// finish carries ∂L/∂û to u and w: û = u + μ·w/‖w‖² with μ = m(s) − s,
// s = wᵀu, μ′(s) = σ(s) − 1, so with q = ûᵀ… :
//
//	∂L/∂u = ∂L/∂û + s̄·w,   ∂L/∂w += s̄·u + μ·(∂L/∂û/‖w‖² − 2w·(wᵀ∂L/∂û)/‖w‖⁴),
//	s̄ = (wᵀ∂L/∂û/‖w‖²)·(σ(s) − 1).
func (f *planar) finish(dp Params) {
	d := f.d
	dw, du := dp[:d], dp[d:2*d]
	for k := range d {
		du[k] += f.duh[k]
		dw[k] += f.dw[k]
	}
	dp[2*d] += f.db
	if f.n2 > 0 {
		var wd float64
		for k := range d {
			wd += f.w[k] * f.duh[k]
		}
		sbar := wd / f.n2 * (f.sig - 1)
		for k := range d {
			du[k] += sbar * f.w[k]
			dw[k] += sbar*f.u[k] + f.mu*(f.duh[k]/f.n2-2*f.w[k]*wd/(f.n2*f.n2))
		}
	}
}

func (f *planar) inverse(x, z []float64) int {
	var wx float64
	for k, v := range x {
		wx += f.w[k] * v
	}
	// wᵀx = a + wᵀû·tanh(a + b), a = wᵀz: the root lies within
	// wᵀx ± |wᵀû|; the slope 1 + wᵀû·tanh′ is positive.
	r := math.Abs(f.wu)
	a, evals := solveIncreasing(func(a float64) (float64, float64) {
		t := math.Tanh(a + f.b)
		return a + f.wu*t - wx, f.den(t)
	}, wx, wx-r-1, wx+r+1)
	t := math.Tanh(a + f.b)
	for k, v := range x {
		z[k] = v - f.uh[k]*t
	}
	return evals
}

// solveJT: J = I + h′·û·wᵀ, so Jᵀ = I + w·(h′û)ᵀ and, by Sherman–Morrison,
// J⁻ᵀg = g − w·h′·(ûᵀg)/(1 + h′·wᵀû).
func (f *planar) solveJT(z, g, out []float64) {
	t := math.Tanh(f.pre(z))
	h1 := 1 - t*t
	var ug float64
	for k, v := range g {
		ug += f.uh[k] * v
	}
	c := h1 * ug / f.den(t)
	for k, v := range g {
		out[k] = v - c*f.w[k]
	}
}

// ---------------------------------------------------------------- radial

// Radial returns the radial flow of Rezende and Mohamed (2015), in the
// sampling direction (Inverse)
//
//	x = z + β·h(r)·(z − z₀),   r = ‖z − z₀‖,   h(r) = 1/(α + r),
//	log|det ∂x/∂z| = (dim−1)·log(1 + β·h) + log(1 + β·h + β·h′(r)·r),
//
// with α = softplus(α̂) > 0 and β = −α + softplus(β̂) > −α, the condition
// for invertibility. Parameters: [z₀ (dim) | α̂ | β̂]. Init draws z₀ from
// N(0, 1) with key and sets α̂ = β̂ = 0 (α = log 2, β = 0): the layer starts
// as the identity.
//
// Direct, the density direction, is in closed form: r solves
// r² + (α + β − ρ)·r − α·ρ = 0 for ρ = ‖x − z₀‖ (its positive root, taken
// without cancellation), and z − z₀ = (x − z₀)/(1 + β·h(r)). Both
// pullbacks are provided; the context is ignored. Init returns an error
// for dim < 1 or a negative contextDim.
func Radial() InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		np := dim + 2
		bj, err := newVILayer("Radial", dim, contextDim, np, func(p Params) viFlow { return newRadial(p, dim) })
		if err != nil {
			return nil, Bijection{}, err
		}
		p := make(Params, np)
		rng := key.Rand()
		for k := range dim {
			p[k] = rng.NormFloat64()
		}
		return p, bj, nil
	}
}

// radial is a radial flow prepared from its parameters.
type radial struct {
	d          int
	z0         []float64
	al, be     float64 // α and β
	sigA, sigB float64 // σ(α̂), σ(β̂)
	dz0        []float64
	dal, dbe   float64
}

func newRadial(p Params, d int) *radial {
	f := &radial{d: d, z0: p[:d:d], dz0: make([]float64, d)}
	var spA, spB float64
	spA, f.sigA = softplus(p[d])
	spB, f.sigB = softplus(p[d+1])
	f.al = spA
	f.be = -spA + spB
	return f
}

// dist returns r = ‖z − z₀‖.
func (f *radial) dist(z []float64) float64 {
	var s float64
	for k, v := range z {
		e := v - f.z0[k]
		s += e * e
	}
	return math.Sqrt(s)
}

func (f *radial) forward(z, x []float64) float64 {
	r := f.dist(z)
	h := 1 / (f.al + r)
	bh := f.be * h
	for k, v := range z {
		x[k] = v + bh*(v-f.z0[k])
	}
	// 1 + βh + βh′r = 1 + βα/(α + r)²: positive since β > −α.
	return float64(f.d-1)*math.Log1p(bh) + math.Log1p(f.be*f.al*h*h)
}

// back: with Δ = z − z₀, h = 1/(α + r), h′ = −h², h″ = 2h³, A = 1 + βh,
// C = A + βh′r = 1 + βαh², and ld = (d−1)·log A + log C:
//
//	∂x/∂β = hΔ,  ∂x/∂α = βh′Δ,  ∂x/∂r-path: βh′·Δ·(ΔᵀḡΔ… via r),
//	∂ld/∂β = (d−1)h/A + αh²/C,  ∂ld/∂α = (d−1)βh′/A + β(h² − 2αh³)/C,
//	∂ld/∂r = (d−1)βh′/A − 2βαh³/C,
//
// and r̄ reaches z and z₀ as r̄·Δ/r (nothing at r = 0, where r has no
// gradient and every term multiplying it vanishes or is taken as 0).
func (f *radial) back(z, gx []float64, gl float64, gz []float64) {
	d := f.d
	r := f.dist(z)
	h := 1 / (f.al + r)
	h1 := -h * h
	A := 1 + f.be*h
	C := 1 + f.be*f.al*h*h
	var gd float64 // ḡxᵀΔ
	for k, v := range z {
		gd += gx[k] * (v - f.z0[k])
	}
	f.dbe += h*gd + gl*(float64(d-1)*h/A+f.al*h*h/C)
	f.dal += f.be*h1*gd + gl*(float64(d-1)*f.be*h1/A+f.be*(h*h-2*f.al*h*h*h)/C)
	rbar := f.be*h1*gd + gl*(float64(d-1)*f.be*h1/A-2*f.be*f.al*h*h*h/C)
	for k, v := range z {
		e := v - f.z0[k]
		dd := f.be * h * gx[k]
		if r > 0 {
			dd += rbar * e / r
		}
		gz[k] = gx[k] + dd
		f.dz0[k] -= dd
	}
}

// finish carries α and β to α̂ and β̂: α = softplus(α̂), β = −α +
// softplus(β̂).
func (f *radial) finish(dp Params) {
	d := f.d
	for k := range d {
		dp[k] += f.dz0[k]
	}
	dp[d] += (f.dal - f.dbe) * f.sigA
	dp[d+1] += f.dbe * f.sigB
}

// inverse: ρ = ‖x − z₀‖ = r·(1 + β/(α + r)) gives r² + (α + β − ρ)·r −
// αρ = 0, whose positive root is r = 2αρ/(q + √(q² + 4αρ)) for
// q = α + β − ρ ≥ 0 and (−q + √(q² + 4αρ))/2 otherwise.
func (f *radial) inverse(x, z []float64) int {
	rho := f.dist(x)
	q := f.al + f.be - rho
	disc := math.Sqrt(q*q + 4*f.al*rho)
	var r float64
	if q >= 0 {
		r = 2 * f.al * rho / (q + disc)
	} else {
		r = (-q + disc) / 2
	}
	s := 1 / (1 + f.be/(f.al+r))
	for k, v := range x {
		z[k] = f.z0[k] + s*(v-f.z0[k])
	}
	return 0
}

// solveJT: J = A·I + c·e·eᵀ (symmetric) with e = Δ/r, A = 1 + βh,
// c = βh′r, so J⁻¹g = (g − c/(A + c)·e·(eᵀg))/A.
func (f *radial) solveJT(z, g, out []float64) {
	r := f.dist(z)
	h := 1 / (f.al + r)
	A := 1 + f.be*h
	if r == 0 {
		for k, v := range g {
			out[k] = v / A
		}
		return
	}
	c := -f.be * h * h * r
	var eg float64
	for k, v := range g {
		eg += v * (z[k] - f.z0[k]) / r
	}
	k2 := c / (A + c) * eg
	for k, v := range g {
		out[k] = (v - k2*(z[k]-f.z0[k])/r) / A
	}
}
