package flows

// The deep sigmoidal flow (DSF) of neural autoregressive flows, as a
// Transformer, and NeuralAutoregressive, its masked autoregressive preset.
//
// One sigmoidal layer with H units maps
//
//	S(x) = σ⁻¹(Σ_k w_k·σ(a_k·x + b_k)),   w = softmax(ŵ),  log a_k = 7·tanh(â_k/7),
//
// which is the logit of a mixture of logistic CDFs: component k has mean
// μ_k = −b_k/a_k and scale 1/a_k. That is exactly the map whose numerics
// mixture.go already gets right (log F and log(1 − F) in log space, the
// log-derivative as a sum of non-negative terms, a bracketed, safeguarded
// Newton inverse to 1e-13·max(1, |x|)), so each layer is an lmix set up
// from θ' = [π = ŵ | μ = −b/a | ŝ = −â | 0 | 0] (the last two, the affine
// part of Flow++'s map, zero): lmixSetup then gives w = softmax(ŵ),
// log s_k = 7·tanh(−â_k/7) = −log a_k, ρ_k = a_k, no affine map. A μ that
// overflows (|b| near MaxFloat64 with a < 1) is read as ±MaxFloat64, as
// LogisticMixture reads its means.
//
// The gradients are our own (dsfBack), in the (â, b, ŵ) parameters: with
// t_k = a_k·x + b_k and t̄_k = gℓ·c_k + gλ·d_k (c, d from lmix.coeffs),
//
//	∂L/∂x = Σ_k t̄_k a_k,   ∂L/∂b_k = t̄_k,
//	∂L/∂log a_k = t̄_k·a_k·x + gλ·γ_k          (∂t/∂log a = a·x; f carries a factor a_k),
//	∂L/∂ŵ_j = gℓ·(β_j − α_j) + gλ·(γ_j − β_j − α_j + w_j),
//
// which avoids the cancellation of going through μ (∂t/∂log a = t + a·μ).
// The deep transformer composes L layers, h_{j+1} = S_j(h_j); its
// log-derivative is the sum of the layers', its inverse inverts them one at
// a time from the last, and its pullbacks chain the layers' (the inverse's
// by the implicit-function theorem per layer, as lmix.inverseBack does,
// with 1/S′ capped at e^600).

import (
	"fmt"
	"math"
	"slices"
)

// Limits of the deep sigmoidal transformer.
const (
	// dsfLogScaleBound bounds the slopes of the sigmoid units:
	// log a = 7·tanh(â/7), as LogisticMixture bounds its scales.
	dsfLogScaleBound = lmixLogScaleBound
	// dsfStackLayers is the most layers whose intermediate values the
	// transformer keeps on the stack.
	dsfStackLayers = 8
)

// DeepSigmoidal returns the deep sigmoidal flow transformer of Huang,
// Krueger, Lacoste and Courville, "Neural Autoregressive Flows" (2018):
// layers sigmoidal layers of units units each, composed,
//
//	h_0 = x,   h_{j+1} = σ⁻¹(Σ_k w_jk·σ(a_jk·h_j + b_jk)),   y = h_L,
//
// with w_j = softmax(ŵ_j) and a_jk = exp(7·tanh(â_jk/7)) ∈ (e⁻⁷, e⁷). Each
// layer is the logit of a mixture of logistic CDFs, computed in log space
// (see LogisticMixtureCoupling for the accuracy), strictly increasing and
// onto ℝ, asymptotically linear with slope min_k a_k far out.
//
// Params = 3·units·layers, layer j's block [â (units) | b (units) | ŵ
// (units)] at offset 3·units·j. θ = 0 (a = 1, b = 0, equal weights) makes
// every layer σ⁻¹(σ(x)) = x: the identity, up to rounding. NAF's slopes are
// a = softplus(â); ours are bounded, as LogisticMixture's scales are, so
// that no unit becomes a step or a plateau beyond float64.
//
// There is no closed-form inverse: Inverse inverts the layers from the last
// by the bracketed, safeguarded Newton iteration of LogisticMixture, to
// 1e-13·max(1, |h|) per layer, at most 2·(1+64+1) + 2·100 + 1 evaluations
// each. That tolerance is in each layer's input: where the map is flat in
// float64 (parameters that grow without bound, as a ReLU conditioner's do
// at inputs or contexts far from the training rows), many x share one y,
// Inverse returns one of them, and the round trip in x fails by up to
// 1e10 relative (issue 26); DeepSigmoidalBounded does not have that limit.
// ForwardVJP and InverseVJP are hand-written. Fewer than one unit or
// layer gives a transformer whose layers fail to initialise.
func DeepSigmoidal(units, layers int) Transformer {
	if units < 1 || layers < 1 {
		return Transformer{Name: "DeepSigmoidal", err: fmt.Errorf("transformer DeepSigmoidal: %d units and %d layers, want at least 1 of each", units, layers)}
	}
	d := dsf{h: units, l: layers}
	return Transformer{
		Name:       "DeepSigmoidal",
		Params:     3 * units * layers,
		Forward:    d.forward,
		Inverse:    d.inverse,
		ForwardVJP: d.forwardVJP,
		InverseVJP: d.inverseVJP,
	}
}

// NeuralAutoregressive returns a neural autoregressive flow layer, NAF-DSF
// of Huang et al. (2018): MaskedAutoregressive(made, DeepSigmoidal(units,
// layers)). Each input goes through its own deep sigmoidal flow whose
// 3·units·layers pseudo-parameters a MADE computes from the inputs before
// it in the ordering (and the context):
//
//	θ_i[k] = MADE(x; c)[k·dim + i],   z_i = DSF(x_i; θ_i),   logDet = Σ_i log DSF′(x_i; θ_i)
//
// with θ_i laid out as DeepSigmoidal documents. Parameters: those of
// MaskedAutoregressive (the MADE's, then its context weights); the MADE's
// last layer is zero at init, so the layer starts as the identity. Direct
// is one MADE pass; Inverse takes dim sequential steps, each solving the
// DSF numerically (see DeepSigmoidal, and NeuralAutoregressiveBounded for
// a version whose inverse holds far from the training rows). Both
// pullbacks are provided.
//
// Init returns an error for units or layers below 1, and otherwise as
// MaskedAutoregressive does.
func NeuralAutoregressive(made MADEConfig, units, layers int) InitFunc {
	made.Hidden = slices.Clone(made.Hidden)
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		return newAutoregressive("NeuralAutoregressive", made, key, dim, contextDim, DeepSigmoidal(units, layers), nil)
	}
}

// dsf is the shape of a deep sigmoidal transformer: h units per layer, l
// layers.
type dsf struct{ h, l int }

// dsfScratch is one call's scratch: θ' of one layer, the lmix buffer and
// the intermediate values h_0 … h_L.
type dsfScratch struct {
	th2, buf, hs []float64
}

// scratch returns the call's scratch in the stack arrays when they are
// large enough, else in new slices.
func (d dsf) scratch(th2 *[3*lmixStackK + 2]float64, buf *[lmixBufPer * lmixStackK]float64, hs *[dsfStackLayers + 1]float64) dsfScratch {
	s := dsfScratch{th2: th2[:], buf: buf[:], hs: hs[:]}
	if d.h > lmixStackK {
		s.th2 = make([]float64, 3*d.h+2)
		s.buf = make([]float64, lmixBufPer*d.h)
	}
	if d.l > dsfStackLayers {
		s.hs = make([]float64, d.l+1)
	}
	s.th2 = s.th2[:3*d.h+2]
	s.hs = s.hs[:d.l+1]
	return s
}

// block returns layer j's parameters [â | b | ŵ] in th.
func (d dsf) block(th []float64, j int) []float64 {
	return th[3*d.h*j : 3*d.h*(j+1)]
}

// layer sets up layer j of th as a logistic-mixture map (see the file's
// notes), its θ' in s.th2.
func (d dsf) layer(th []float64, j int, s dsfScratch) lmix {
	H := d.h
	p := d.block(th, j)
	th2 := s.th2
	copy(th2[:H], p[2*H:3*H])
	for k := range H {
		ah := p[k]
		a := math.Exp(dsfLogScaleBound * math.Tanh(ah/dsfLogScaleBound))
		th2[H+k] = -p[H+k] / a
		th2[2*H+k] = -ah
	}
	th2[3*H], th2[3*H+1] = 0, 0
	return lmixSetup(th2, s.buf)
}

// forward is Transformer.Forward.
func (d dsf) forward(th []float64, x float64) (y, logDeriv float64) {
	var a [3*lmixStackK + 2]float64
	var b [lmixBufPer * lmixStackK]float64
	var c [dsfStackLayers + 1]float64
	y, logDeriv, _ = d.run(th, x, d.scratch(&a, &b, &c))
	return y, logDeriv
}

// run evaluates the layers from x, keeping h_0 … h_L in s.hs, and reports
// whether every h_j is finite.
func (d dsf) run(th []float64, x float64, s dsfScratch) (y, logDeriv float64, finite bool) {
	s.hs[0] = x
	for j := range d.l {
		m := d.layer(th, j, s)
		m.point(x)
		v, l := m.output()
		x = v
		logDeriv += l
		s.hs[j+1] = x
	}
	finite = true
	for _, v := range s.hs {
		finite = finite && v-v == 0
	}
	return x, logDeriv, finite
}

// inverse is Transformer.Inverse: the layers inverted from the last.
func (d dsf) inverse(th []float64, y float64) (x, logDeriv float64) {
	var a [3*lmixStackK + 2]float64
	var b [lmixBufPer * lmixStackK]float64
	var c [dsfStackLayers + 1]float64
	s := d.scratch(&a, &b, &c)
	x = y
	for j := d.l - 1; j >= 0; j-- {
		m := d.layer(th, j, s)
		x, _, _ = m.invert(x)
		logDeriv += m.inverseLogDeriv()
	}
	return x, logDeriv
}

// forwardVJP is Transformer.ForwardVJP: the layers' pullbacks from the
// last. An element with a non-finite intermediate or output value gets zero
// gradient.
func (d dsf) forwardVJP(th []float64, x, _, gy, gl float64, dth []float64) float64 {
	var a [3*lmixStackK + 2]float64
	var b [lmixBufPer * lmixStackK]float64
	var c [dsfStackLayers + 1]float64
	s := d.scratch(&a, &b, &c)
	if _, _, ok := d.run(th, x, s); !ok {
		return 0
	}
	g := gy
	for j := d.l - 1; j >= 0; j-- {
		m := d.layer(th, j, s)
		h := s.hs[j]
		m.point(h)
		m.coeffs()
		g = lmixFinite(dsfBack(&m, d.block(th, j), h, g, gl, d.block(dth, j)))
	}
	return g
}

// inverseVJP is Transformer.InverseVJP, at x = f⁻¹(y): the layers'
// implicit-function pullbacks from the first (the last the inverse ran).
// With h_j = S_j⁻¹(h_{j+1}) and the inverse log-det −Σ_j λ_j(h_j), the
// adjoint of h_{j+1} is r̄_j = (ḡ_j − gl·∂λ_j/∂h_j)/S_j′(h_j), ḡ_0 = gx and
// ḡ_{j+1} = r̄_j, and dL/dθ_j is the layer's pullback with gℓ = −r̄_j,
// gλ = −gl. The intermediate h_j are recomputed forward from x. Each
// adjoint is clamped to ±MaxFloat64 (1/S′ in a plateau, capped at e^600,
// compounds over the layers), so that a gradient may overflow to ±Inf but
// never becomes NaN.
func (d dsf) inverseVJP(th []float64, _, x, gx, gl float64, dth []float64) float64 {
	var a [3*lmixStackK + 2]float64
	var b [lmixBufPer * lmixStackK]float64
	var c [dsfStackLayers + 1]float64
	s := d.scratch(&a, &b, &c)
	if _, _, ok := d.run(th, x, s); !ok {
		return 0
	}
	g := gx
	for j := range d.l {
		m := d.layer(th, j, s)
		h := s.hs[j]
		m.point(h)
		dLdx := m.coeffs()
		rbar := lmixFinite((g - gl*dLdx) * math.Exp(min(-m.ldMix, lmixMaxLogInvSlope)))
		dsfBack(&m, d.block(th, j), h, -rbar, -gl, d.block(dth, j))
		g = rbar
	}
	return g
}

// dsfBack is the pullback of one layer at x (after m.point(x) and
// m.coeffs()): given gEll = ∂L/∂S and gL = ∂L/∂log S′ it adds ∂L/∂θ into dth
// (the layer's block, [â | b | ŵ]) and returns ∂L/∂x; see the file's notes.
func dsfBack(m *lmix, p []float64, x, gEll, gL float64, dth []float64) (dx float64) {
	H := m.k
	for k := range H {
		tb := gEll*m.c[k] + gL*m.d[k]
		dx += tb * m.rho[k]
		dth[2*H+k] += gEll*m.bma[k] + gL*(m.gam[k]-m.bpa[k]+m.w[k])
		dth[H+k] += tb
		h := math.Tanh(p[k] / dsfLogScaleBound)
		dla := lmixMul0(tb, m.rho[k]*x) + gL*m.gam[k]
		dth[k] += lmixMul0(dla, 1-h*h)
	}
	return dx
}
