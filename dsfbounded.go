package flows

// The bounded deep sigmoidal transformer (DeepSigmoidalBounded): the deep
// sigmoidal flow's layers, each acting on [−B, B] with a floor on its
// slope and continuing with slope 1 outside, like a spline (issue 26).
//
// Layer j of the deep sigmoidal flow, S(x) = σ⁻¹(Σ_k w_k·σ(a_k·x + b_k))
// (sigmoidal.go), is mixed with the identity inside the bulk and continued
// with slope 1 beyond it:
//
//	T(x) = (1 − η)·S(x) + η·x                    |x| < B,   T′ = (1 − η)·S′ + η ≥ η,
//	T(x) = T(±B) + (x ∓ B)                        |x| ≥ B,   T′ = 1,
//
// η = 1e-3, so T is continuous and strictly increasing, its slope jumping
// at ±B. The units' centres μ_k = −b_k/a_k are kept inside the bulk,
// μ_k = −B·tanh(s_k·m_k/B) (b_k = a_k·B·tanh(s_k·m_k/B) from the raw m_k),
// the slopes within e^{±3}, log a_k = 3·tanh(â_k/3) (handed to the
// one-layer DeepSigmoidal as â′ = 7·atanh((3/7)·tanh(â/3))), and w =
// softmax(ŵ) as in DeepSigmoidal. So |a_k·x + b_k| ≤ 2e³·B inside for
// every θ, and S's values stay within that plus log terms: the map never
// goes flat in float64 however large the conditioner's outputs grow at far
// inputs and contexts, and a row outside the bulk keeps its distance to it
// (the Normal prior prices it as it prices the spline flows' rows).
//
// θ = 0 is the identity (S(x) = x), where the units are identical; the
// fixed factors s_k = 2(k+1)/(H+1) (mean 1) make their centres move apart
// from the first step, since a gradient is the same for identical units
// (without them the units would stay identical, and S affine, for ever).
//
// Gradients, per layer, from the one-layer DeepSigmoidal pullback: inside,
// with r = (1 − η)·S′(x)/T′(x), ∂L/∂S(x) = gy·(1 − η), ∂L/∂log S′(x) =
// gl·r and ∂L/∂x gains gy·η; beyond ±B, ∂L/∂S(±B) = gy·(1 − η) and
// ∂L/∂x = gy. Then to the raw parameters: ∂b/∂m = a·s·(1 − tanh²(s·m/B)),
// ∂â′/∂â = (1 − tanh²(â/3))/(1 − (3/7)²·tanh²(â/3)) and, b depending on a,
// ∂L/∂â gains ∂L/∂b·b·(1 − tanh²(â/3)). The inverse solves each layer from
// the last on [−B, B] (solveIncreasing, bracket known) and is exact
// outside; its pullback is the one the layers derive from ForwardVJP.

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
// layer) with each layer acting on [−bound, bound] and continuing with
// slope 1 outside, as a spline does:
//
//	T_j(x) = (1 − η)·S_j(x) + η·x   (|x| < B),   T_j(±B) + (x ∓ B)   (|x| ≥ B),
//
// S_j the layer's σ⁻¹(Σ_k w_k·σ(a_k·x + b_k)) with its units' centres kept
// inside [−B, B], slopes a_k within e^{±3}, and η = 1e-3 a floor on the
// slope (the formulas are in dsfbounded.go). θ = 0 is the identity. Unlike
// DeepSigmoidal's, the map cannot become flat in float64 however large θ
// grows (a conditioner's outputs grow with far inputs and contexts), and a
// value outside the bulk keeps its distance to it. Inverse solves each
// layer numerically inside [−B, B] (to 1e-13·max(1, |x|) in the layer's
// input) and is exact outside; with the rounding of the map, the round
// trip holds to 1e-12·max(1, |x|)·(1 + 1/f′(x)) for every θ, where
// f′ ≥ η^layers (TestDeepSigmoidalBoundedRoundTrip,
// FuzzDeepSigmoidalBounded). A count below 1 or a bound outside
// [1e-100, 1e100] gives a transformer whose layers fail to initialise.
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
// (centres in the bulk) and T(±B).
type dsfbLayer struct {
	one      dsf
	tb       []float64
	tlo, thi float64
}

// spread is s_k, unit k's factor on its raw centre.
func (d dsfb) spread(k int) float64 { return 2 * float64(k+1) / float64(d.h+1) }

// layer sets up layer j of th, its block transformed into tb (3h).
func (d dsfb) layer(th []float64, j int, tb []float64) dsfbLayer {
	H := d.h
	p := th[3*H*j : 3*H*(j+1)]
	copy(tb, p)
	for k := range H {
		u := math.Tanh(p[k] / dsfbLogScaleBound)
		tb[k] = dsfLogScaleBound * math.Atanh(dsfbLogScaleBound/dsfLogScaleBound*u)
		a := math.Exp(dsfbLogScaleBound * u)
		tb[H+k] = a * d.b * math.Tanh(d.spread(k)*p[H+k]/d.b)
	}
	one := dsf{h: H, l: 1}
	sp, _ := one.forward(tb, d.b)
	sm, _ := one.forward(tb, -d.b)
	return dsfbLayer{one: one, tb: tb, tlo: (1-dsfbMinSlope)*sm - dsfbMinSlope*d.b, thi: (1-dsfbMinSlope)*sp + dsfbMinSlope*d.b}
}

// at returns T(x), log T′(x) and r = (1 − η)·S′(x)/T′(x) (0 beyond ±B).
func (d dsfb) at(m dsfbLayer, x float64) (t, lt, r float64) {
	switch {
	case x >= d.b:
		return m.thi + (x - d.b), 0, 0
	case x <= -d.b:
		return m.tlo + (x + d.b), 0, 0
	}
	s, ls := m.one.forward(m.tb, x)
	lk := math.Log1p(-dsfbMinSlope) + ls
	lt = dsfbLogAddExp(lk, math.Log(dsfbMinSlope))
	return (1-dsfbMinSlope)*s + dsfbMinSlope*x, lt, math.Exp(lk - lt)
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
		var lt float64
		x, lt, _ = d.at(d.layer(th, j, tb), x)
		logDeriv += lt
	}
	return x, logDeriv
}

// inverse is Transformer.Inverse: the layers inverted from the last, each
// in closed form beyond T(±B) and numerically inside; the log-derivative
// is −log f′ at the solution, as Forward gives it.
func (d dsfb) inverse(th []float64, y float64) (x, logDeriv float64) {
	var arr [3 * dsfbStack]float64
	tb := d.scratch(&arr)
	x = y
	for j := d.l - 1; j >= 0; j-- {
		m := d.layer(th, j, tb)
		target := x
		switch {
		case target >= m.thi:
			x = d.b + (target - m.thi)
		case target <= m.tlo:
			x = -d.b + (target - m.tlo)
		case target == target:
			x, _ = solveIncreasing(func(v float64) (float64, float64) {
				t, lt, _ := d.at(m, v)
				return t - target, math.Exp(lt)
			}, min(max(target, -d.b), d.b), -d.b, d.b)
		}
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
		h[j+1], _, _ = d.at(d.layer(th, j, tb), h[j])
	}
	H := d.h
	g := gy
	for j := d.l - 1; j >= 0; j-- {
		xj := h[j]
		m := d.layer(th, j, tb)
		clear(dtb)
		var dx float64
		switch {
		case xj >= d.b || xj <= -d.b:
			m.one.forwardVJP(m.tb, math.Copysign(d.b, xj), 0, g*(1-dsfbMinSlope), 0, dtb)
			dx = g
		default:
			_, _, r := d.at(m, xj)
			dx = m.one.forwardVJP(m.tb, xj, 0, g*(1-dsfbMinSlope), gl*r, dtb) + g*dsfbMinSlope
		}
		p, dp := th[3*H*j:3*H*(j+1)], dth[3*H*j:3*H*(j+1)]
		for k := range H {
			sk := d.spread(k)
			ta, tm := math.Tanh(p[k]/dsfbLogScaleBound), math.Tanh(sk*p[H+k]/d.b)
			a := math.Exp(dsfbLogScaleBound * ta)
			ua := dsfbLogScaleBound / dsfLogScaleBound * ta
			db := dtb[H+k]
			dp[k] += (lmixMul0(dtb[k], 1/(1-ua*ua)) + lmixMul0(db, m.tb[H+k])) * (1 - ta*ta)
			dp[H+k] += lmixMul0(db, a*sk) * (1 - tm*tm)
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
