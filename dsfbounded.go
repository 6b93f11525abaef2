package flows

// The bounded deep sigmoidal transformer (DeepSigmoidalBounded): the deep
// sigmoidal flow's layers, each confined to [−B, B] like a spline and the
// identity outside, with a floor on its slope (issue 26).
//
// Layer j of the deep sigmoidal flow, S(x) = σ⁻¹(Σ_k w_k·σ(a_k·x + b_k))
// (sigmoidal.go), is used on [−B, B] only, rescaled to map it onto itself
// and mixed with the identity:
//
//	T(x) = −B + κ·(S(x) − S(−B)) + η·(x + B),   κ = (1 − η)·2B/Δ,  Δ = S(B) − S(−B),
//	T′(x) = κ·S′(x) + η ≥ η,   η = 1e-3,
//
// and T(x) = x for |x| ≥ B (T(±B) = ±B, so T is continuous; its slope
// jumps at ±B). The units' centres μ_k = −b_k/a_k are kept inside the
// bulk, μ_k = −B·tanh(m_k/B) (b_k = a_k·B·tanh(m_k/B) from the raw m_k),
// with log a_k = 7·tanh(â_k/7) and w = softmax(ŵ) as in DeepSigmoidal.
// Every unit k then rises by at least σ(2·a_k·B) − 1/2 over [−B, B], so
// Δ ≥ 4·(σ(2e⁻⁷B) − 1/2) > 0 for every θ: the map never collapses, however
// large the conditioner's outputs, and so neither do its inverse's
// accuracy nor the latent values of rows outside the training bulk (the
// identity tails send them where the Normal prior prices them as the
// spline flows do).
//
// Gradients, per layer, from the one-layer DeepSigmoidal pullback at x,
// B and −B (dsf.forwardVJP with the layer's transformed block): with
// r = κ·S′(x)/T′(x), the share of the slope from the mixture,
//
//	∂L/∂S(x) = gy·κ,   ∂L/∂log S′(x) = gl·r,   ∂L/∂x += gy·η,
//	∂L/∂Δ = −(gy·κ·(S(x) − S(−B)) + gl·r)/Δ,
//	∂L/∂S(B) = ∂L/∂Δ,   ∂L/∂S(−B) = −∂L/∂Δ − gy·κ,
//
// then to the raw parameters: ∂b/∂m = a·(1 − tanh²(m/B)) and, b depending
// on a, ∂L/∂â gains ∂L/∂b·b·(1 − tanh²(â/7)). The inverse solves each
// layer from the last on [−B, B] (solveIncreasing, bracket known) and is
// the identity outside; its pullback is the one the layers derive from
// ForwardVJP.

import (
	"fmt"
	"math"
)

// Constants of the bounded deep sigmoidal transformer.
const (
	// dsfbMinSlope is η, the floor on each layer's slope inside [−B, B].
	dsfbMinSlope = 1e-3
	// dsfbLogScaleBound bounds the units' log-slopes: log a = 3·tanh(â/3),
	// so a unit is at least e⁻³ (about a twentieth) of the bulk's unit
	// wide, and S's values on [−B, B] stay within 2·e³·B + log terms, which
	// bounds the rounding of T (see the file's notes).
	dsfbLogScaleBound = 3.0
	// dsfbStack is the most units whose transformed block the transformer
	// keeps on the stack.
	dsfbStack = 32
)

// DeepSigmoidalBounded returns the deep sigmoidal transformer of
// DeepSigmoidal (same parameters, 3·units·layers, block [â | m | ŵ] per
// layer) with each layer confined to [−bound, bound] and the identity
// outside, as a spline is:
//
//	T_j(x) = −B + (1 − η)·2B·(S_j(x) − S_j(−B))/(S_j(B) − S_j(−B)) + η·(x + B),   |x| < B,
//
// S_j the layer's σ⁻¹(Σ_k w_k·σ(a_k·x + b_k)) with its units' centres kept
// inside [−B, B] (b_k = a_k·B·tanh(m_k/B)) and η = 1e-3 a floor on the
// slope. θ = 0 is the identity (up to rounding). Unlike DeepSigmoidal's,
// the map cannot become flat in float64 however large θ grows (a
// conditioner's outputs grow with far inputs and contexts), and a value
// outside the bulk keeps its distance to it. Inverse solves each layer
// numerically inside [−B, B] (to 1e-13·B in the layer's input) and is
// exact outside; with the rounding of the map, the round trip holds to
// 1e-12·max(1, |x|)·(1 + 1/f′(x)) for every θ, where f′ ≥ η^layers
// (TestDeepSigmoidalBoundedRoundTrip, FuzzDeepSigmoidalBounded). A count below
// 1 or a bound outside [1e-100, 1e100] gives a transformer whose layers
// fail to initialise.
func DeepSigmoidalBounded(units, layers int, bound float64) Transformer {
	const who = "DeepSigmoidalBounded"
	if units < 1 || layers < 1 {
		return Transformer{Name: who, err: fmt.Errorf("transformer %s: %d units and %d layers, want at least 1 of each", who, units, layers)}
	}
	if err := checkPolyBound(who, bound); err != nil {
		return Transformer{Name: who, err: err}
	}
	d := dsfb{h: units, l: layers, b: bound}
	return Transformer{
		Name:       who,
		Params:     3 * units * layers,
		Forward:    d.forward,
		Inverse:    d.inverse,
		ForwardVJP: d.forwardVJP,
	}
}

// NeuralAutoregressiveBounded is NeuralAutoregressive with
// DeepSigmoidalBounded(units, layers, bound) as the transformer: each
// column's map is confined to [−bound, bound] and the identity outside,
// with a floor on its slope, so that it stays invertible to its stated
// tolerance however far the inputs and the context are from the training
// rows. Init returns an error as NeuralAutoregressive does, and for a
// bound outside [1e-100, 1e100].
func NeuralAutoregressiveBounded(made MADEConfig, units, layers int, bound float64) InitFunc {
	made.Hidden = append([]int(nil), made.Hidden...)
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		return newAutoregressive("NeuralAutoregressiveBounded", made, key, dim, contextDim, DeepSigmoidalBounded(units, layers, bound), nil)
	}
}

// dsfb is the shape of a bounded deep sigmoidal transformer: h units per
// layer, l layers, bound b.
type dsfb struct {
	h, l int
	b    float64
}

// dsfbLayer is one layer set up at θ: the one-layer DeepSigmoidal block tb
// (centres in the bulk), S(±B), Δ and κ.
type dsfbLayer struct {
	one          dsf
	tb           []float64
	sm, delta, k float64
}

// layer sets up layer j of th, its block transformed into tb (3h).
func (d dsfb) layer(th []float64, j int, tb []float64) dsfbLayer {
	H := d.h
	p := th[3*H*j : 3*H*(j+1)]
	copy(tb, p)
	for k := range H {
		u := math.Tanh(p[k] / dsfbLogScaleBound)
		tb[k] = dsfLogScaleBound * math.Atanh(dsfbLogScaleBound/dsfLogScaleBound*u)
		a := math.Exp(dsfbLogScaleBound * u)
		tb[H+k] = a * d.b * math.Tanh(p[H+k]/d.b)
	}
	one := dsf{h: H, l: 1}
	sp, _ := one.forward(tb, d.b)
	sm, _ := one.forward(tb, -d.b)
	delta := sp - sm
	return dsfbLayer{one: one, tb: tb, sm: sm, delta: delta, k: (1 - dsfbMinSlope) * 2 * d.b / delta}
}

// at returns T(x), log T′(x), S(x) and r = κ·S′(x)/T′(x) inside (−B, B).
func (d dsfb) at(m dsfbLayer, x float64) (t, lt, s, r float64) {
	s, ls := m.one.forward(m.tb, x)
	lk := math.Log(m.k) + ls
	lt = dsfbLogAddExp(lk, math.Log(dsfbMinSlope))
	t = -d.b + m.k*(s-m.sm) + dsfbMinSlope*(x+d.b)
	return t, lt, s, math.Exp(lk - lt)
}

// scratch returns a slice of 3h for a layer's transformed block.
func (d dsfb) scratch(arr *[3 * dsfbStack]float64) []float64 {
	if d.h > dsfbStack {
		return make([]float64, 3*d.h)
	}
	return arr[:3*d.h]
}

// forward is Transformer.Forward.
func (d dsfb) forward(th []float64, x float64) (y, logDeriv float64) {
	var arr [3 * dsfbStack]float64
	tb := d.scratch(&arr)
	for j := range d.l {
		if !(math.Abs(x) < d.b) {
			return x, logDeriv
		}
		var lt float64
		x, lt, _, _ = d.at(d.layer(th, j, tb), x)
		logDeriv += lt
	}
	return x, logDeriv
}

// inverse is Transformer.Inverse: the layers inverted from the last; the
// log-derivative is −log f′ at the solution, as Forward gives it (so the
// two agree exactly, also where y rounds onto ±B and the slope jumps).
func (d dsfb) inverse(th []float64, y float64) (x, logDeriv float64) {
	var arr [3 * dsfbStack]float64
	tb := d.scratch(&arr)
	x = y
	for j := d.l - 1; j >= 0 && math.Abs(x) < d.b; j-- {
		m := d.layer(th, j, tb)
		target := x
		x, _ = solveIncreasing(func(v float64) (float64, float64) {
			t, lt, _, _ := d.at(m, v)
			return t - target, math.Exp(lt)
		}, target, -d.b, d.b)
	}
	if !(math.Abs(y) < d.b) {
		return y, 0
	}
	_, ld := d.forward(th, x)
	return x, -ld
}

// forwardVJP is Transformer.ForwardVJP; see the file's notes.
func (d dsfb) forwardVJP(th []float64, x, _, gy, gl float64, dth []float64) float64 {
	var arr, darr [3 * dsfbStack]float64
	var hs [dsfStackLayers + 1]float64
	tb, dtb := d.scratch(&arr), d.scratch(&darr)
	h := hs[:]
	if d.l > dsfStackLayers {
		h = make([]float64, d.l+1)
	}
	h[0] = x
	for j := range d.l {
		h[j+1] = h[j]
		if math.Abs(h[j]) < d.b {
			h[j+1], _, _, _ = d.at(d.layer(th, j, tb), h[j])
		}
	}
	H := d.h
	g := gy
	for j := d.l - 1; j >= 0; j-- {
		xj := h[j]
		if !(math.Abs(xj) < d.b) {
			continue // the identity: g passes through, no parameter gradient
		}
		m := d.layer(th, j, tb)
		_, _, s, r := d.at(m, xj)
		clear(dtb)
		gd := lmixFinite(-(g*m.k*(s-m.sm) + gl*r) / m.delta)
		dx := m.one.forwardVJP(m.tb, xj, 0, g*m.k, gl*r, dtb) + g*dsfbMinSlope
		m.one.forwardVJP(m.tb, d.b, 0, gd, 0, dtb)
		m.one.forwardVJP(m.tb, -d.b, 0, -gd-g*m.k, 0, dtb)
		p, dp := th[3*H*j:3*H*(j+1)], dth[3*H*j:3*H*(j+1)]
		for k := range H {
			ta, tm := math.Tanh(p[k]/dsfbLogScaleBound), math.Tanh(p[H+k]/d.b)
			a := math.Exp(dsfbLogScaleBound * ta)
			ua := dsfbLogScaleBound / dsfLogScaleBound * ta
			db := dtb[H+k]
			dp[k] += (lmixMul0(dtb[k], 1/(1-ua*ua)) + lmixMul0(db, m.tb[H+k])) * (1 - ta*ta)
			dp[H+k] += lmixMul0(db, a) * (1 - tm*tm)
			dp[2*H+k] += dtb[2*H+k]
		}
		g = lmixFinite(dx)
	}
	return g
}

// dsfbLogAddExp is log(eᵃ + eᵇ) for b finite.
func dsfbLogAddExp(a, b float64) float64 {
	m := max(a, b)
	if math.IsInf(m, 1) {
		return m
	}
	return m + math.Log1p(math.Exp(min(a, b)-m))
}
