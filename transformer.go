package flows

// Transformers: the elementwise maps inside coupling and autoregressive
// layers.
//
// A coupling layer (Coupling) and a masked autoregressive layer
// (MaskedAutoregressive) each differ from their kin only in the monotone
// map they apply to one number given parameters from a conditioner: that
// map is a Transformer, and the layers are written once over it. The
// layers gather each element's parameters from the conditioner's output
// into a contiguous θ, replace non-finite values (which only an
// overflowing conditioner produces: +Inf → MaxFloat64, −Inf → −MaxFloat64,
// NaN → 0) so that a transformer only ever sees finite θ, and give those
// entries zero gradient. So no transformer has to guard against its
// conditioner.
//
// A generic adapter serves the presets: invertTransformer swaps the
// directions (MAF's density direction is the affine map's inverse); MAF's
// reordering of θ (its MADE emits [μ | raw] where the affine transformer
// reads [raw | t]) is done by the layer as it gathers θ (elementParams).
// When a transformer has no InverseVJP, the layers derive it from
// ForwardVJP by the implicit-function theorem (see derivedInverseVJP).

import (
	"fmt"
	"math"
)

// Transformer is a monotone increasing map of one number, y = f(x; θ), with
// its log-derivative and hand-written gradients, whose Params parameters θ
// come from a conditioner net (see Coupling and MaskedAutoregressive). Its
// functions are pure, safe for concurrent use, and never modify θ.
//
// θ = 0 (a conditioner's output at init) should be the identity, so that
// layers start as the identity; the transformers of this package are. θ
// holds finite values only: the layers replace non-finite conditioner
// outputs before calling (see the package's notes on transformers).
type Transformer struct {
	// Name names the transformer in errors and panics.
	Name string

	// Params is the number of parameters per element, P ≥ 1.
	Params int

	// Forward returns y = f(x; θ) and log f′(x; θ).
	Forward func(theta []float64, x float64) (y, logDeriv float64)

	// Inverse returns x = f⁻¹(y; θ) and log|dx/dy| = −log f′(x; θ).
	Inverse func(theta []float64, y float64) (x, logDeriv float64)

	// ForwardVJP is the pullback of Forward at x, where y = f(x; θ): given
	// gy = dL/dy and gl = dL/dlog f′(x; θ), it adds dL/dθ into dtheta
	// (length P) and returns dL/dx.
	ForwardVJP func(theta []float64, x, y, gy, gl float64, dtheta []float64) (dx float64)

	// InverseVJP is the pullback of Inverse at y, where x = f⁻¹(y; θ):
	// given gx = dL/dx and gl = dL/d(−log f′(x; θ)), it adds dL/dθ into
	// dtheta and returns dL/dy. When nil, the layers derive it from
	// ForwardVJP and Forward.
	InverseVJP func(theta []float64, y, x, gx, gl float64, dtheta []float64) (dy float64)

	// err is set by this package's constructors for a setting that cannot
	// work; the layers return it from init.
	err error

	// blocks says that a coupling layer over this transformer alone lays
	// its conditioner's output out in Params blocks of one parameter of
	// every column (Affine's [raw | t]), not element-major (see
	// coupling.go's file comment).
	blocks bool

	// affineBound is Affine's log-scale bound S (0 for other
	// transformers): a prepared coupling runs Affine's arithmetic in a
	// loop of its own (couplingprep.go).
	affineBound float64
}

// validate returns an init error when t cannot be used by a layer.
func (t Transformer) validate(who string) error {
	if t.err != nil {
		return fmt.Errorf("flows: %s: %w", who, t.err)
	}
	if t.Params < 1 {
		return fmt.Errorf("flows: %s: transformer %q has %d parameters, want at least 1", who, t.Name, t.Params)
	}
	if t.Forward == nil || t.Inverse == nil || t.ForwardVJP == nil {
		return fmt.Errorf("flows: %s: transformer %q lacks Forward, Inverse or ForwardVJP", who, t.Name)
	}
	return nil
}

// withInverseVJP returns t with its InverseVJP, derived when t has none.
func (t Transformer) withInverseVJP() Transformer {
	if t.InverseVJP == nil {
		t.InverseVJP = derivedInverseVJP(t)
	}
	return t
}

// derivedInverseVJP is the pullback of t's Inverse by the implicit-function
// theorem. With x = f⁻¹(y; θ), ℓ = log f′ and its partial derivatives ℓ_x,
// ℓ_θ, f_θ, the loss reads x and the inverse log-det −ℓ(x; θ), so
//
//	u     = dL/dy = (gx − gl·ℓ_x)/f′(x),
//	dL/dθ = −u·f_θ − gl·ℓ_θ,
//
// the second being exactly what ForwardVJP adds for gy = −u, gl' = −gl.
// ℓ_x is ForwardVJP's dx for gy = 0, gl = 1 (its θ part is discarded).
func derivedInverseVJP(t Transformer) func(theta []float64, y, x, gx, gl float64, dtheta []float64) float64 {
	return func(theta []float64, y, x, gx, gl float64, dtheta []float64) float64 {
		var arr [smallParams]float64
		scratch := scratchParams(arr[:], len(theta))
		lx := t.ForwardVJP(theta, x, y, 0, 1, scratch)
		_, l := t.Forward(theta, x)
		u := (gx - gl*lx) * math.Exp(-l)
		t.ForwardVJP(theta, x, y, -u, -gl, dtheta)
		return u
	}
}

// smallParams is the most parameters per element that the adapters below
// keep on the stack; more are allocated per call.
const smallParams = 16

// scratchParams returns arr[:p] when arr is long enough, else a new slice.
func scratchParams(arr []float64, p int) []float64 {
	if p > len(arr) {
		return make([]float64, p)
	}
	return arr[:p:p]
}

// invertTransformer returns the transformer whose Forward is t's Inverse:
// y = f⁻¹(x; θ).
func invertTransformer(t Transformer) Transformer {
	t = t.withInverseVJP()
	return Transformer{
		Name:    "inverse " + t.Name,
		Params:  t.Params,
		Forward: t.Inverse,
		Inverse: t.Forward,
		ForwardVJP: func(theta []float64, x, y, gy, gl float64, dtheta []float64) float64 {
			return t.InverseVJP(theta, x, y, gy, gl, dtheta)
		},
		InverseVJP: func(theta []float64, y, x, gx, gl float64, dtheta []float64) float64 {
			return t.ForwardVJP(theta, y, x, gx, gl, dtheta)
		},
	}
}

// elementParams is how a layer finds an element's parameters in a row of
// its conditioner's output: parameter k of element j is at j·elem + k·param,
// or, with order, at j·elem + order[k]·param (MAF's MADE emits [μ | raw]
// where the affine transformer reads [raw | t]). Reordering here, rather
// than in an adapter transformer, keeps θ in the layer's scratch: an
// adapter's reordered copy, handed to a function value, would escape to
// the heap once per element.
type elementParams struct {
	elem, param int
	order       []int // nil: the identity
}

// src returns where parameter k sits among an element's parameters.
func (l elementParams) src(k int) int {
	if l.order != nil {
		return l.order[k]
	}
	return k
}

// paramMajor lays out P parameters of d elements as P blocks of d
// (parameter k of element j at column k·d + j), as MADE's outputs are.
// Coupling layers use an offset per element and a stride instead (see
// coupling.go).
func paramMajor(d int) elementParams { return elementParams{elem: 1, param: d} }

// gather copies element j's parameters from row into theta (length P),
// replacing non-finite values; it reports whether any was replaced.
func (l elementParams) gather(theta, row []float64, j int) (fixed bool) {
	return l.gatherAt(theta, row, j*l.elem)
}

// gatherAt is gather for the element whose parameters start at base.
func (l elementParams) gatherAt(theta, row []float64, base int) (fixed bool) {
	for k := range theta {
		v := row[base+l.src(k)*l.param]
		if v-v != 0 { // NaN or ±Inf
			fixed = true
			switch {
			case math.IsNaN(v):
				v = 0
			case v > 0:
				v = math.MaxFloat64
			default:
				v = -math.MaxFloat64
			}
		}
		theta[k] = v
	}
	return fixed
}

// scatter writes element j's parameter gradient dtheta into drow (a row of
// the conditioner's output gradient), zeroing the entries whose conditioner
// output in row is not finite when fixed: such an output has no meaningful
// derivative, and passing one on would only spread the overflow.
func (l elementParams) scatter(drow, dtheta, row []float64, j int, fixed bool) {
	l.scatterAt(drow, dtheta, row, j*l.elem, fixed)
}

// scatterAt is scatter for the element whose parameters start at base.
func (l elementParams) scatterAt(drow, dtheta, row []float64, base int, fixed bool) {
	for k, v := range dtheta {
		at := base + l.src(k)*l.param
		if fixed {
			if r := row[at]; r-r != 0 {
				v = 0
			}
		}
		drow[at] = v
	}
}
