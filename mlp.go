package flows

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/enum"
)

// Activation is the element-wise nonlinearity an MLP applies after each of
// its hidden layers.
type Activation int

const (
	// ReLU is max(a, 0). Its derivative at 0 is taken as 0.
	ReLU Activation = iota
	// Tanh is tanh(a).
	Tanh
	// ELU is a for a > 0 and exp(a) − 1 otherwise.
	ELU
	// LeakyReLU is a for a > 0 and 0.01·a otherwise.
	LeakyReLU
	// SiLU (swish) is a·σ(a), with σ the logistic sigmoid.
	SiLU
)

// mlpLeakySlope is LeakyReLU's slope for negative inputs.
const mlpLeakySlope = 0.01

// activationNames names the activations, as in their Go constants.
var activationNames = enum.Names[Activation]{Type: "Activation", What: "activation", List: []string{"ReLU", "Tanh", "ELU", "LeakyReLU", "SiLU"}, Fold: true}

// String returns the activation's name, as in the Go constant.
func (a Activation) String() string { return activationNames.String(a) }

// Activations lists the activations, in the order of their constants.
func Activations() []Activation { return []Activation{ReLU, Tanh, ELU, LeakyReLU, SiLU} }

// MarshalText returns the activation's name, as String gives it; model
// files and configurations store activations by name.
func (a Activation) MarshalText() ([]byte, error) { return activationNames.MarshalText(a) }

// UnmarshalText sets a to the activation named text, in any case ("relu",
// "ReLU"), or returns an error listing the names.
func (a *Activation) UnmarshalText(text []byte) error { return activationNames.UnmarshalText(a, text) }

// valid reports whether a is one of the declared activations.
func (a Activation) valid() bool { return activationNames.Valid(a) }

// needsPre reports whether the derivative of a cannot be recovered from the
// activation's output alone, so that ApplyVJP must keep the pre-activation.
func (a Activation) needsPre() bool { return a == SiLU }

// apply maps the pre-activations in pre to post (they may be the same slice).
func (a Activation) apply(post, pre []float64) {
	switch a {
	case ReLU:
		for i, v := range pre {
			post[i] = max(v, 0)
		}
	case Tanh:
		for i, v := range pre {
			post[i] = math.Tanh(v)
		}
	case ELU:
		for i, v := range pre {
			if v > 0 {
				post[i] = v
			} else {
				post[i] = math.Expm1(v)
			}
		}
	case LeakyReLU:
		for i, v := range pre {
			if v > 0 {
				post[i] = v
			} else {
				post[i] = mlpLeakySlope * v
			}
		}
	case SiLU:
		for i, v := range pre {
			post[i] = v * mlpSigmoid(v)
		}
	}
}

// backInPlace multiplies the gradient g with respect to the activation's
// output by its derivative, giving the gradient with respect to its input.
// post holds the outputs; pre the inputs (used only when needsPre).
// The derivatives, written in terms of what is cached:
//
//	ReLU:      1 if h > 0 else 0       (h > 0 exactly when a > 0)
//	Tanh:      1 − h²
//	ELU:       1 if h > 0 else h + 1   (exp(a) = h + 1 for a ≤ 0)
//	LeakyReLU: 1 if h > 0 else 0.01
//	SiLU:      σ(a)·(1 + a·(1 − σ(a)))
func (a Activation) backInPlace(g, post, pre []float64) {
	switch a {
	case ReLU:
		for i, h := range post {
			if h <= 0 {
				g[i] = 0
			}
		}
	case Tanh:
		for i, h := range post {
			g[i] *= 1 - h*h
		}
	case ELU:
		for i, h := range post {
			if h <= 0 {
				g[i] *= h + 1
			}
		}
	case LeakyReLU:
		for i, h := range post {
			if h <= 0 {
				g[i] *= mlpLeakySlope
			}
		}
	case SiLU:
		for i, v := range pre {
			s := mlpSigmoid(v)
			g[i] *= s * (1 + v*(1-s))
		}
	}
}

// mlpSigmoid is the logistic function 1/(1+exp(−a)); it saturates cleanly
// to 0 and 1 at the extremes (exp overflows to +Inf, giving 0).
func mlpSigmoid(a float64) float64 { return 1 / (1 + math.Exp(-a)) }

// mlpLayer is one dense layer's place in the flat parameter vector.
type mlpLayer struct {
	in, out int
	w, b    int // offsets of W (in×out, row-major) and b (out) in p
}

// MLP returns a fully connected network from in columns through the given
// hidden widths to out columns, with act after every hidden layer and no
// activation after the last (a linear read-out). With no hidden widths it
// is a single affine map.
//
// Each layer computes y = x·W + b with x holding one example per row.
// Parameter layout, for the layers l = 0, 1, …, len(hidden) in order:
//
//	[W_0 (in_0×out_0, row-major) | b_0 (out_0) | W_1 | b_1 | … ]
//
// where in_0 = in, out_l = hidden[l] (out for the last layer) and
// in_{l+1} = out_l. The layers read their weights through views of p,
// without copying.
//
// Initialisation: each hidden layer l draws its weights from its own
// sub-key key.Split(L)[l] (L the number of layers), uniformly on (−a, a):
// Glorot/Xavier, a = √(6/(in_l+out_l)), for Tanh, and He,
// a = √(6/in_l), for the ReLU family (ReLU, LeakyReLU, ELU, SiLU). All biases
// are zero, and the last layer's weights are exactly zero too, so the
// network's output is identically zero at init: conditioners start at zero
// and couplings at the identity.
//
// Init returns an error for in < 1, out < 1, a hidden width < 1 or an
// unknown activation. Apply and ApplyVJP panic for a batch without in
// columns or parameters of the wrong length. The pullback returned by
// ApplyVJP reads x and p, which must not change until its last call (take
// the optimiser step after the backward pass); it may be called any number
// of times, from any goroutine (a call after the first reruns the forward
// pass: see applyVJP).
func MLP(hidden []int, act Activation) NetInitFunc { return MLPFrom(hidden, act, InitDefault) }

// Init is how a conditioner net (MLP, MADE) draws the weights of its hidden
// layers; its last layer is zero whatever the Init, so that layers start
// as the identity.
type Init int

const (
	// InitDefault is the default of where it is used: InitHe for MLP,
	// MLPFrom and MADE, model.Config's default.
	InitDefault Init = iota
	// InitHe draws from the uniform distribution on (−a, a) with
	// a = √(6/fan_in) for the ReLU family (He et al.) and √(6/(fan_in +
	// fan_out)) for Tanh (Glorot and Bengio).
	InitHe
	// InitTorch draws from the uniform distribution on (−a, a) with
	// a = 1/√fan_in, PyTorch's default for nn.Linear, about 2.45 times
	// narrower than InitHe for ReLU: the conditioners start closer to
	// linear, which makes deep flows on real tables train more stably.
	InitTorch
)

// initNames names the inits, as in model files.
var initNames = enum.Names[Init]{Type: "Init", What: "init", List: []string{"default", "he", "torch"}}

// String returns the init's name, as in model files: "he" or "torch"
// ("default" for InitDefault).
func (i Init) String() string { return initNames.String(i) }

// MarshalText returns the init's name. A model file records a resolved
// init; "default" is a Config not yet resolved, which Load refuses.
func (i Init) MarshalText() ([]byte, error) { return initNames.MarshalText(i) }

// UnmarshalText sets i to the init named text.
func (i *Init) UnmarshalText(text []byte) error { return initNames.UnmarshalText(i, text) }

// valid reports whether i is one of the declared inits.
func (i Init) valid() bool { return initNames.Valid(i) }

// scale returns the half-width a of the uniform distribution of a hidden
// layer's weights from fanIn inputs to fanOut outputs under act.
func (i Init) scale(act Activation, fanIn, fanOut int) float64 {
	switch {
	case i == InitTorch:
		return 1 / math.Sqrt(float64(fanIn))
	case act == Tanh:
		return math.Sqrt(6 / float64(fanIn+fanOut))
	}
	return math.Sqrt(6 / float64(fanIn))
}

// MLPFrom is MLP with its hidden weights drawn as init says (MLP itself
// is MLPFrom(hidden, act, InitDefault), which is InitHe); the layout and
// the functions are MLP's.
func MLPFrom(hidden []int, act Activation, init Init) NetInitFunc {
	return MLPWith(MLPConfig{Hidden: hidden, Act: act, Init: init})
}

// MLPConfig describes an MLP: MLP's hidden widths and activation,
// MLPFrom's init, and the precision of its products.
type MLPConfig struct {
	Hidden []int
	Act    Activation
	Init   Init
	// Precision is the arithmetic of the products (default Float64; see
	// Precision).
	Precision Precision
}

// MLPWith is MLP as cfg describes it; the layout, the initialisation and
// the functions are MLP's (Float32 changes only the products' rounding).
func MLPWith(cfg MLPConfig) NetInitFunc {
	hidden := append([]int(nil), cfg.Hidden...) // the caller may reuse its slice
	act, init, prec := cfg.Act, cfg.Init, cfg.Precision
	return func(key Key, in, out int) (Params, Net, error) {
		if in < 1 {
			return nil, Net{}, fmt.Errorf("flows: MLP: input width %d, want at least 1", in)
		}
		if out < 1 {
			return nil, Net{}, fmt.Errorf("flows: MLP: output width %d, want at least 1", out)
		}
		for i, h := range hidden {
			if h < 1 {
				return nil, Net{}, fmt.Errorf("flows: MLP: hidden layer %d has width %d, want at least 1", i, h)
			}
		}
		if !act.valid() {
			return nil, Net{}, fmt.Errorf("flows: MLP: unknown activation %v", act)
		}
		if !init.valid() {
			return nil, Net{}, fmt.Errorf("flows: MLP: unknown init %v", init)
		}
		if !prec.valid() {
			return nil, Net{}, fmt.Errorf("flows: MLP: unknown precision %v", prec)
		}

		widths := make([]int, 0, len(hidden)+2)
		widths = append(append(append(widths, in), hidden...), out)
		if err := checkWidths("MLP", widths...); err != nil {
			return nil, Net{}, err
		}
		layers := make([]mlpLayer, len(widths)-1)
		np, maxHidden := 0, 0
		for l := range layers {
			li := mlpLayer{in: widths[l], out: widths[l+1], w: np}
			li.b = li.w + li.in*li.out
			np = li.b + li.out
			layers[l] = li
			if l < len(layers)-1 {
				maxHidden = max(maxHidden, li.out)
			}
		}

		p := make(Params, np) // zero biases and a zero last layer
		keys := key.Split(len(layers))
		for l, li := range layers[:len(layers)-1] {
			a := init.scale(act, li.in, li.out)
			rng := keys[l].Rand()
			for i := range p[li.w:li.b] {
				p[li.w+i] = a * (2*rng.Float64() - 1)
			}
		}

		m := &mlp{layers: layers, act: act, in: in, out: out, np: np, maxHidden: maxHidden, gemm: prec.gemm(false)}
		return p, Net{Apply: m.apply, ApplyVJP: m.applyVJP, prepare: func(p Params) preparedNet { return m.prepare(p, prec) }}, nil
	}
}

// mlp holds an MLP's immutable shape; its methods are the Net's closures.
type mlp struct {
	layers      []mlpLayer
	act         Activation
	in, out, np int
	maxHidden   int
	gemm        gemmFunc // the products, by Precision
}

// affine sets c (n×li.out) to x·W + b, with x n×li.in, by gemm.
func (li mlpLayer) affine(gemm gemmFunc, p Params, x []float64, n int, c []float64) {
	b := p[li.b : li.b+li.out]
	for i := 0; i < n; i++ {
		copy(c[i*li.out:(i+1)*li.out], b)
	}
	gemm(false, false, n, li.out, li.in, 1, x, p[li.w:li.b], 1, c)
}

// apply is Net.Apply: two pooled buffers for the hidden layers, used in
// turn, and a fresh output.
func (m *mlp) apply(p Params, x *mat.Dense) *mat.Dense {
	checkParams("MLP", p, m.np)
	checkWidth("MLP", x, m.in)
	h, n, _ := rawRows(x)
	y := make([]float64, n*m.out)
	m.forward(p, h, n, y)
	return mat.NewDense(n, m.out, y)
}

// forward sets y (n×out) to the net's output on x (n×in), with its hidden
// layers in pooled buffers.
func (m *mlp) forward(p Params, h []float64, n int, y []float64) {
	last := len(m.layers) - 1
	if last > 0 {
		buf := getScratch(2 * n * m.maxHidden)
		defer buf.put()
		scratch := [2][]float64{buf.f[:n*m.maxHidden], buf.f[n*m.maxHidden:]}
		for l, li := range m.layers[:last] {
			c := scratch[l%2][:n*li.out]
			li.affine(m.gemm, p, h, n, c)
			m.act.applyRows(c, c, n, li.out)
			h = c
		}
	}
	m.layers[last].affine(m.gemm, p, h, n, y)
}

// applyVJP is Net.ApplyVJP. It keeps every hidden layer's output (and, for
// SiLU, its pre-activation): one n×out_l buffer per hidden layer, two for
// SiLU, on a tape from the pool that the pullback's first call gives back
// (a later call reruns the pass on x and p, which may not change until
// the pullback's last call). The gradients flowing down between layers are
// pooled too; only the dL/dx the pullback returns is new.
func (m *mlp) applyVJP(p Params, x *mat.Dense) (*mat.Dense, NetPullback) {
	checkParams("MLP", p, m.np)
	checkWidth("MLP", x, m.in)
	x0, n, _ := rawRows(x)
	last := len(m.layers) - 1
	// inputs[l] is layer l's input (n×in_l): x for l = 0, then the hidden
	// outputs. pres[l] is hidden layer l's pre-activation, kept only for SiLU.
	inputs := make([][]float64, len(m.layers))
	var pres [][]float64
	if m.act.needsPre() {
		pres = make([][]float64, last)
	}
	inputs[0] = x0
	t := new(tape)
	for l, li := range m.layers[:last] {
		c := t.get(n * li.out)
		li.affine(m.gemm, p, inputs[l], n, c)
		post := c
		if pres != nil {
			pres[l] = c
			post = t.get(n * li.out)
		}
		m.act.applyRows(post, c, n, li.out)
		inputs[l+1] = post
	}
	y := make([]float64, n*m.out)
	m.layers[last].affine(m.gemm, p, inputs[last], n, y)

	back := func(dy *mat.Dense, dp Params) *mat.Dense {
		if dy == nil {
			panic("flows: MLP: nil gradient in pullback")
		}
		if r, c := dy.Dims(); r != n || c != m.out {
			panic(fmt.Sprintf("flows: MLP: pullback gradient is %d×%d, want %d×%d", r, c, n, m.out))
		}
		checkParams("MLP: pullback", dp, m.np)
		if !t.take() { // a later call: the first gave the tape back
			_, again := m.applyVJP(p, x)
			return again(dy, dp)
		}
		defer t.release()
		// g is dL/d(pre-activation of layer l), n×out_l; for the last
		// layer that is dy itself (no activation), read but never written.
		g, _, _ := rawRows(dy)
		var gBuf *scratch // g's pooled buffer; nil while g is dy
		for l := last; l >= 0; l-- {
			li := m.layers[l]
			// y_l = h_l·W_l + b_l, so
			//   dW_l += h_lᵀ·g   (in_l×out_l),
			//   db_l += Σ_rows g,
			//   dh_l  = g·W_lᵀ   (n×in_l), a new buffer.
			m.gemm(true, false, li.in, li.out, n, 1, inputs[l], g, 1, dp[li.w:li.b])
			db := dp[li.b : li.b+li.out]
			for i := 0; i < n; i++ {
				for j, v := range g[i*li.out : (i+1)*li.out] {
					db[j] += v
				}
			}
			var dh []float64
			var dhBuf *scratch
			if l > 0 {
				dhBuf = getScratch(n * li.in)
				dh = dhBuf.f
			} else {
				dh = make([]float64, n*li.in) // dL/dx, returned
			}
			m.gemm(false, true, n, li.in, li.out, 1, g, p[li.w:li.b], 0, dh)
			if l > 0 {
				// h_l = act(a_{l−1}): dL/da_{l−1} = dh_l ⊙ act'(a_{l−1}).
				var pre []float64
				if pres != nil {
					pre = pres[l-1]
				}
				m.act.backRows(dh, inputs[l], pre, n, li.in)
			}
			gBuf.put() // the layer above's gradient, read for the last time
			g, gBuf = dh, dhBuf
		}
		return mat.NewDense(n, m.in, g)
	}
	return mat.NewDense(n, m.out, y), back
}
