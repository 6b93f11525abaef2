package flows

// Dequantisation: models of integer-valued rows through a density over
// their dequantised values, with lower bounds on the rows' log-probability
// mass (Theis, van den Oord and Bethge, 2016; Ho, Chen, Srinivas, Duan and
// Abbeel, "Flow++", 2019, section 3.1).
//
// For an integer row x, the cell of x is x + [0, 1)^dim and a density p
// over ℝ^dim gives x the probability mass P(x) = ∫_[0,1)^dim p(x + u) du.
// For any density q(u | x) on [0, 1)^dim, by Jensen's inequality,
//
//	log P(x) = log E_q[p(x + u)/q(u | x)] ≥ E_q[log p(x + u) − log q(u | x)],
//
// with equality when q(u | x) = p(x + u)/P(x). Uniform dequantisation takes
// q = 1 (the bound is E_u log p(x + u)); variational dequantisation learns
// q, a conditional flow, jointly with p, which tightens the bound. The
// importance-weighted form log (1/m)·Σ_k p(x + u_k)/q(u_k | x), u_k ~ q,
// is also a lower bound in expectation, tighter with m, and tends to
// log P(x) (Burda, Grosse and Salakhutdinov, 2016).
//
// Every estimate is a Monte-Carlo average over noise drawn from an explicit
// key, so the same key gives the same estimate, bit for bit, and with the
// key fixed the bound is a differentiable function of the parameters (the
// reparameterisation trick, as in optim.ReverseKL).

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Dequantized is a model of integer-valued rows x (n×dim, whole numbers as
// float64), optionally given contexts c, made of a density over the
// dequantised rows v = x + u, u ∈ [0, 1)^dim, and a dequantisation
// distribution q(u | x, c). Its functions are pure and safe for concurrent
// use; the estimates draw their noise from key (replicate k from
// key.Fold(k)), so the same key gives the same numbers.
type Dequantized struct {
	// Bound returns, per row, the Monte-Carlo estimate
	//
	//	(1/m)·Σ_k [log p(x + u_k | c) − log q(u_k | x, c)],   u_k ~ q,
	//
	// with m = samples ≥ 1, an unbiased estimate of a lower bound on
	// log P(x | c), the row's log-probability mass: its expectation over
	// the noise is at most log P(x | c) (Jensen). It is the training
	// objective (maximise its mean).
	Bound func(key Key, p Params, x, c *mat.Dense, samples int) []float64

	// BoundVJP computes Bound and returns its pullback.
	BoundVJP func(key Key, p Params, x, c *mat.Dense, samples int) ([]float64, DequantizedPullback)

	// LogMass returns, per row, the importance-weighted estimate
	// log (1/m)·Σ_k p(x + u_k | c)/q(u_k | x, c), u_k ~ q: a lower bound on
	// log P(x | c) in expectation, at least Bound's expectation, and
	// tending to log P(x | c) as samples grows.
	LogMass func(key Key, p Params, x, c *mat.Dense, samples int) []float64

	// Sample draws n integer rows: ⌊v⌋ for rows v of the density.
	Sample func(key Key, p Params, n int, c *mat.Dense) *mat.Dense

	// Density is the density over dequantised rows.
	Density Distribution

	// DensityParams is the length of the density's parameters, the first
	// entries of the model's.
	DensityParams int
}

// DequantizedPullback is the pullback of Dequantized.Bound: given
// dL/dBound per row, it adds dL/dparams into dp and, when dc is not nil,
// dL/dc into dc.
type DequantizedPullback func(dBound []float64, dp Params, dc *mat.Dense)

// DequantizedInitFunc makes a Dequantized model for rows of width dim and
// contexts of width contextDim, with its initial parameters.
type DequantizedInitFunc func(key Key, dim, contextDim int) (Params, Dequantized, error)

// dequantNoise draws replicate k of the noise for the rows of x: u
// (n×dim, in [0, 1)), log q(u | x, c) per row and, when vjp, the pullback
// that takes dL/du and dL/dlog q and adds the noise model's parameter
// gradient into dq and the context's into dc.
type dequantNoise func(key Key, q Params, x, c *mat.Dense, vjp bool) (u *mat.Dense, logq []float64, back func(du *mat.Dense, dlogq []float64, dq Params, dc *mat.Dense))

// UniformDequantization returns the model of integer rows whose
// dequantised rows x + u, u ~ U[0, 1)^dim, have the density made by
// density: q = 1, so Bound estimates E_u[log p(x + u | c)] ≤ log P(x | c),
// the bound whose negative, divided by dim·ln 2, is the usual "bits per
// dimension" of dequantised image models (an upper bound, in expectation,
// on the code length of the integer rows). Parameters: the density's.
// Init passes on the density's errors.
func UniformDequantization(density DistInitFunc) DequantizedInitFunc {
	return func(key Key, dim, contextDim int) (Params, Dequantized, error) {
		if density == nil {
			return nil, Dequantized{}, fmt.Errorf("flows: UniformDequantization: nil density")
		}
		p, d, err := density(key, dim, contextDim)
		if err != nil {
			return nil, Dequantized{}, fmt.Errorf("flows: UniformDequantization: density: %w", err)
		}
		noise := func(key Key, _ Params, x, _ *mat.Dense, _ bool) (*mat.Dense, []float64, func(*mat.Dense, []float64, Params, *mat.Dense)) {
			n, dd := x.Dims()
			rng := key.Rand()
			u := mat.NewDense(n, dd, nil)
			raw := u.RawMatrix().Data
			for i := range raw {
				raw[i] = rng.Float64()
			}
			return u, make([]float64, n), func(*mat.Dense, []float64, Params, *mat.Dense) {}
		}
		return p, newDequantized("UniformDequantization", d, len(p), len(p), dim, contextDim, noise), nil
	}
}

// VariationalDequantization returns the model of integer rows with
// variational dequantisation (Ho et al., "Flow++", 2019): the noise u has
// its own density q(u | x, c), a conditional flow trained jointly with the
// density made by density,
//
//	ε ~ Logistic(0, 1)^dim,   u = σ(noise⁻¹(ε; e)),   e = [(x + ½)/levels − ½ | c],
//
// where noise is a layer (a stack, typically) made with context width
// dim + contextDim that reads the integer row scaled by levels (so that
// x ∈ {0, …, levels−1} gives e ∈ (−½, ½)) and the context, and σ the
// logistic sigmoid (Sigmoid, clipped to [2⁻⁴⁰, 1 − 2⁻⁴⁰]); log q(u | x, c)
// = log Logistic(ε) − log|det ∂u/∂ε|. Flow++ draws ε from N(0, I); the
// logistic base makes σ(ε) uniform, so a noise flow that starts as the
// identity (every layer of this package does) starts as uniform
// dequantisation, and training can only tighten the bound from there. Its
// Bound is the variational lower bound E_q[log p(x + u | c) −
// log q(u | x, c)], and its pullback reaches both models through the
// reparameterised noise.
//
// Parameters: [density's | noise's (in Serial(Logit(), noise)'s layout,
// Logit having none)]; the density is made from key.Split2()'s first key
// and the noise flow from its second. Init returns an error for levels
// not positive and finite, a nil density or noise, a noise flow without
// InverseVJP, and passes on their errors.
func VariationalDequantization(density DistInitFunc, noise InitFunc, levels float64) DequantizedInitFunc {
	return func(key Key, dim, contextDim int) (Params, Dequantized, error) {
		const who = "VariationalDequantization"
		if density == nil || noise == nil {
			return nil, Dequantized{}, fmt.Errorf("flows: %s: nil density or noise flow", who)
		}
		if !(levels > 0) || math.IsInf(levels, 1) {
			return nil, Dequantized{}, fmt.Errorf("flows: %s: levels %v, want positive and finite", who, levels)
		}
		kd, kq := key.Split2()
		pd, d, err := density(kd, dim, contextDim)
		if err != nil {
			return nil, Dequantized{}, fmt.Errorf("flows: %s: density: %w", who, err)
		}
		pq, b, err := Serial(Logit(), noise)(kq, dim, dim+contextDim)
		if err != nil {
			return nil, Dequantized{}, fmt.Errorf("flows: %s: noise flow: %w", who, err)
		}
		if b.InverseVJP == nil {
			return nil, Dequantized{}, fmt.Errorf("flows: %s: the noise flow has no InverseVJP", who)
		}
		nd, nq := len(pd), len(pq)
		ctx := func(x, c *mat.Dense) *mat.Dense {
			n, _ := x.Dims()
			e := mat.NewDense(n, dim+contextDim, nil)
			for i := range n {
				row := e.RawRowView(i)
				for j := range dim {
					row[j] = (x.At(i, j)+0.5)/levels - 0.5
				}
				for j := range contextDim {
					row[dim+j] = c.At(i, j)
				}
			}
			return e
		}
		nz := func(key Key, q Params, x, c *mat.Dense, vjp bool) (*mat.Dense, []float64, func(*mat.Dense, []float64, Params, *mat.Dense)) {
			n, _ := x.Dims()
			// ε from the standard logistic distribution: the logit of a
			// uniform in (0, 1) (never 0: a multiple of 2⁻⁵³ plus half a
			// step), with log density log σ(ε) + log σ(−ε).
			rng := key.Rand()
			eps := mat.NewDense(n, dim, nil)
			logq := make([]float64, n)
			for i := range n {
				row := eps.RawRowView(i)
				var s float64
				for j := range row {
					v := (float64(rng.Uint64()>>11) + 0.5) * 0x1p-53
					e := math.Log(v) - math.Log1p(-v)
					row[j] = e
					s -= elemSoftplus(-e) + elemSoftplus(e)
				}
				logq[i] = s
			}
			e := ctx(x, c)
			if !vjp {
				u, ild := b.Inverse(q, eps, e)
				for i := range logq {
					logq[i] -= ild[i]
				}
				return u, logq, nil
			}
			u, ild, back := b.InverseVJP(q, eps, e)
			for i := range logq {
				logq[i] -= ild[i]
			}
			return u, logq, func(du *mat.Dense, dlogq []float64, dq Params, dc *mat.Dense) {
				// log q = log Logistic(ε) − ild: dL/dild = −dL/dlog q.
				dild := make([]float64, n)
				for i, v := range dlogq {
					dild[i] = -v
				}
				var de *mat.Dense
				if dc != nil && contextDim > 0 {
					de = mat.NewDense(n, dim+contextDim, nil)
				}
				back(du, dild, dq, de)
				if de != nil {
					dc.Add(dc, de.Slice(0, n, dim, dim+contextDim))
				}
			}
		}
		p := make(Params, 0, nd+nq)
		p = append(append(p, pd...), pq...)
		return p, newDequantized(who, d, nd, nd+nq, dim, contextDim, nz), nil
	}
}

// newDequantized builds the model from the density d (parameters p[:nd]),
// the noise model (parameters p[nd:np]) and the widths.
func newDequantized(who string, d Distribution, nd, np, dim, cdim int, noise dequantNoise) Dequantized {
	check := func(p Params, x, c *mat.Dense, samples int) int {
		checkParams(who, p, np)
		checkWidth(who, x, dim)
		n, _ := x.Dims()
		checkContext(who, c, n, cdim)
		if samples < 1 {
			panic(fmt.Sprintf("flows: %s: %d samples, want at least 1", who, samples))
		}
		return n
	}
	// terms returns log p(x + u_k) − log q(u_k) for every replicate k
	// (samples slices of n).
	terms := func(key Key, p Params, x, c *mat.Dense, samples int) [][]float64 {
		out := make([][]float64, samples)
		for k := range samples {
			u, logq, _ := noise(key.Fold(uint64(k)), p[nd:np], x, c, false)
			u.Add(u, x)
			lp := d.LogPDF(p[:nd:nd], u, c)
			for i := range lp {
				lp[i] -= logq[i]
			}
			out[k] = lp
		}
		return out
	}
	return Dequantized{
		Bound: func(key Key, p Params, x, c *mat.Dense, samples int) []float64 {
			n := check(p, x, c, samples)
			b := make([]float64, n)
			for _, t := range terms(key, p, x, c, samples) {
				for i, v := range t {
					b[i] += v / float64(samples)
				}
			}
			return b
		},
		LogMass: func(key Key, p Params, x, c *mat.Dense, samples int) []float64 {
			n := check(p, x, c, samples)
			ts := terms(key, p, x, c, samples)
			out := make([]float64, n)
			col := make([]float64, samples)
			for i := range n {
				for k := range samples {
					col[k] = ts[k][i]
				}
				m, l := lmixLSE(col)
				out[i] = m + l - math.Log(float64(samples))
			}
			return out
		},
		BoundVJP: func(key Key, p Params, x, c *mat.Dense, samples int) ([]float64, DequantizedPullback) {
			n := check(p, x, c, samples)
			b := make([]float64, n)
			type rep struct {
				pback DistPullback
				qback func(*mat.Dense, []float64, Params, *mat.Dense)
			}
			reps := make([]rep, samples)
			for k := range samples {
				u, logq, qb := noise(key.Fold(uint64(k)), p[nd:np], x, c, true)
				u.Add(u, x)
				lp, pb := d.LogPDFVJP(p[:nd:nd], u, c)
				for i := range lp {
					b[i] += (lp[i] - logq[i]) / float64(samples)
				}
				reps[k] = rep{pb, qb}
			}
			return b, func(dBound []float64, dp Params, dc *mat.Dense) {
				checkParams(who+" pullback", dp, np)
				if len(dBound) != n {
					panic(fmt.Sprintf("flows: %s: pullback gradient has length %d, want %d", who, len(dBound), n))
				}
				w := make([]float64, n)
				nw := make([]float64, n)
				for i, v := range dBound {
					w[i] = v / float64(samples)
					nw[i] = -w[i]
				}
				for _, r := range reps {
					dv := r.pback(w, dp[:nd:nd], dc)
					r.qback(dv, nw, dp[nd:np], dc)
				}
			}
		},
		Sample: func(key Key, p Params, n int, c *mat.Dense) *mat.Dense {
			checkParams(who, p, np)
			v := d.Sample(key, p[:nd:nd], n, c)
			v.Apply(func(_, _ int, a float64) float64 { return math.Floor(a) }, v)
			return v
		},
		Density:       d,
		DensityParams: nd,
	}
}
