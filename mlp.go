package flows

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/enum"
	"github.com/gonormflows/flows/internal/frozen"
	"github.com/gonormflows/flows/internal/linalg"
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
func (a Activation) apply(post, pre []float64) { applyAct(a, post, pre) }

// applyAct maps the pre-activations in pre to post, computed in float64
// and rounded to T (post may be pre when T is float64).
func applyAct[T linalg.Float](a Activation, post []T, pre []float64) {
	post = post[:len(pre)]
	switch a {
	case ReLU:
		for i, v := range pre {
			post[i] = T(max(v, 0))
		}
	case Tanh:
		for i, v := range pre {
			post[i] = T(math.Tanh(v))
		}
	case ELU:
		for i, v := range pre {
			if v > 0 {
				post[i] = T(v)
			} else {
				post[i] = T(math.Expm1(v))
			}
		}
	case LeakyReLU:
		for i, v := range pre {
			if v > 0 {
				post[i] = T(v)
			} else {
				post[i] = T(mlpLeakySlope * v)
			}
		}
	case SiLU:
		for i, v := range pre {
			post[i] = T(v * mlpSigmoid(v))
		}
	}
}

// backInPlace multiplies the gradient g with respect to the activation's
// output by its derivative, giving the gradient with respect to its input.
// post holds the outputs; pre the inputs (used only when needsPre).
func (a Activation) backInPlace(g, post, pre []float64) { backAct(a, g, g, post, pre) }

// backAct sets g to dh times the activation's derivative, computed in
// float64 and rounded to T (g may be dh when T is float64): dh is the
// gradient with respect to the activation's output, g becomes that with
// respect to its input. post holds the outputs; pre the inputs (used only
// when needsPre). The derivatives, written in terms of what is cached:
//
//	ReLU:      1 if h > 0 else 0       (h > 0 exactly when a > 0)
//	Tanh:      1 − h²
//	ELU:       1 if h > 0 else h + 1   (exp(a) = h + 1 for a ≤ 0)
//	LeakyReLU: 1 if h > 0 else 0.01
//	SiLU:      σ(a)·(1 + a·(1 − σ(a)))
//
// ReLU's mask is taken on the bits, without a branch: which units are
// active is as good as random, and a mispredicted branch per element cost
// more than the rest of the loop (issue 21's profile).
func backAct[T linalg.Float](a Activation, g []T, dh []float64, post, pre []T) {
	switch a {
	case ReLU:
		dh = dh[:len(post)]
		g = g[:len(post)]
		for i, h := range post {
			bits := math.Float64bits(dh[i])
			if h <= 0 {
				bits = 0
			}
			g[i] = T(math.Float64frombits(bits))
		}
	case Tanh:
		for i, h := range post {
			hh := float64(h)
			g[i] = T(dh[i] * (1 - hh*hh))
		}
	case ELU:
		for i, h := range post {
			d := dh[i]
			if h <= 0 {
				d *= float64(h) + 1
			}
			g[i] = T(d)
		}
	case LeakyReLU:
		for i, h := range post {
			d := dh[i]
			if h <= 0 {
				d *= mlpLeakySlope
			}
			g[i] = T(d)
		}
	case SiLU:
		for i, pv := range pre {
			v := float64(pv)
			s := mlpSigmoid(v)
			g[i] = T(dh[i] * (s * (1 + v*(1-s))))
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
		p, m, err := newMLP(hidden, act, init, prec, key, in, out)
		if err != nil {
			return nil, Net{}, err
		}
		return p, m.net(), nil
	}
}

// newMLP returns an MLP's initial parameters and its shape, or an error
// for the widths, activation, init or precision (MLPWith's).
func newMLP(hidden []int, act Activation, init Init, prec Precision, key Key, in, out int) (Params, *mlp, error) {
	if in < 1 {
		return nil, nil, fmt.Errorf("flows: MLP: input width %d, want at least 1", in)
	}
	if out < 1 {
		return nil, nil, fmt.Errorf("flows: MLP: output width %d, want at least 1", out)
	}
	for i, h := range hidden {
		if h < 1 {
			return nil, nil, fmt.Errorf("flows: MLP: hidden layer %d has width %d, want at least 1", i, h)
		}
	}
	if !act.valid() {
		return nil, nil, fmt.Errorf("flows: MLP: unknown activation %v", act)
	}
	if !init.valid() {
		return nil, nil, fmt.Errorf("flows: MLP: unknown init %v", init)
	}
	if !prec.valid() {
		return nil, nil, fmt.Errorf("flows: MLP: unknown precision %v", prec)
	}

	widths := make([]int, 0, len(hidden)+2)
	widths = append(append(append(widths, in), hidden...), out)
	if err := checkWidths("MLP", widths...); err != nil {
		return nil, nil, err
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

	return p, &mlp{layers: layers, act: act, in: in, out: out, np: np, maxHidden: maxHidden, prec: prec}, nil
}

// net returns the MLP as a Net.
func (m *mlp) net() Net {
	return Net{Apply: m.apply, ApplyVJP: m.applyVJP, prepare: func(p Params) preparedNet { return m.prepare(p, m.prec) }}
}

// mlp holds an MLP's immutable shape; its methods are the Net's closures.
type mlp struct {
	layers      []mlpLayer
	act         Activation
	in, out, np int
	maxHidden   int
	prec        Precision // the products' and the hidden layers' storage
	// frozen holds the layers' weights packed for the frozen step p was
	// last called in (frozenpacks.go).
	frozen frozen.Cache[[]packedW]
}

// affine sets c (n×li.out) to x·W + b, with x n×li.in, by pr's product,
// or by pw, W's packs, when it is not nil.
func (li mlpLayer) affine(pr Precision, p Params, x acts, n int, c []float64, pw *packedW) {
	fillRows(c, p[li.b:li.b+li.out], n)
	if pw != nil {
		pw.mul(false, false, n, x, 1, c)
		return
	}
	pr.mul(false, false, false, n, li.out, li.in, 1, x, f64(p[li.w:li.b]), 1, c)
}

// fillRows sets each of the n rows of c (len(b) wide) to b: the first row,
// then copies of the rows done so far, doubling, so that a batch of n
// rows costs about log₂ n calls of memmove rather than n short ones.
func fillRows(c, b []float64, n int) {
	w := len(b)
	if n == 0 || w == 0 {
		return
	}
	c = c[:n*w]
	copy(c, b)
	for done := w; done < len(c); done *= 2 {
		copy(c[done:], c[:done])
	}
}

// apply is Net.Apply: pooled buffers for the hidden layers and a fresh
// output.
func (m *mlp) apply(p Params, x *mat.Dense) *mat.Dense {
	checkParams("MLP", p, m.np)
	checkWidth("MLP", x, m.in)
	h, n, _ := rawRows(x)
	y := make([]float64, n*m.out)
	m.forward(p, h, n, y)
	return mat.NewDense(n, m.out, y)
}

// forward sets y (n×out) to the net's output on x (n×in), with its hidden
// layers in pooled buffers (hiddenBufs).
func (m *mlp) forward(p Params, x []float64, n int, y []float64) {
	last := len(m.layers) - 1
	h := f64(x)
	packs := m.packs(p)
	if last > 0 {
		hb := newHiddenBufs(m.prec, n*m.maxHidden)
		defer hb.put()
		for l, li := range m.layers[:last] {
			c, post := hb.layer(l, n*li.out)
			li.affine(m.prec, p, h, n, c, layerOf(packs, l))
			m.act.applyActs(post, c, n, li.out, false)
			h = post
		}
	}
	m.layers[last].affine(m.prec, p, h, n, y, layerOf(packs, last))
}

// hiddenVJP computes hidden layer li on its input h (n×li.in) for a
// pullback: the activations, on t, in the precision's storage, and, when
// the activation needs it, the pre-activations too (pre; else its zero
// value). In Float64 mode the pre-activations are computed on t and the
// activation applied in place unless they are kept; in Float32 mode they
// are computed in float64 in c (n×li.out, scratch) and kept, when they are,
// rounded to float32.
func hiddenVJP(pr Precision, act Activation, t *tape, n, out int, c []float64, product func(c []float64)) (post, pre acts) {
	if pr != Float32 {
		c = t.get(n * out)
	}
	product(c)
	if act.needsPre() {
		pre = f64(c)
		if pr == Float32 {
			pre = pr.view(t.get(pr.words(n*out)), n*out)
			for i, v := range c {
				pre.f32[i] = float32(v)
			}
		}
		post = pr.view(t.get(pr.words(n*out)), n*out)
	} else if pr == Float32 {
		post = pr.view(t.get(pr.words(n*out)), n*out)
	} else {
		post = f64(c)
	}
	act.applyActs(post, c, n, out, false)
	return post, pre
}

// applyVJP is Net.ApplyVJP. It keeps every hidden layer's output (and, for
// SiLU, its pre-activation): one n×out_l buffer per hidden layer, two for
// SiLU, in the precision's storage, on a tape from the pool that the
// pullback's first call gives back (a later call reruns the pass on x and
// p, which may not change until the pullback's last call). The gradients
// flowing down between layers are pooled too; only the dL/dx the pullback
// returns is new.
func (m *mlp) applyVJP(p Params, x *mat.Dense) (*mat.Dense, NetPullback) {
	checkParams("MLP", p, m.np)
	checkWidth("MLP", x, m.in)
	x0, n, _ := rawRows(x)
	last := len(m.layers) - 1
	// inputs[l] is layer l's input (n×in_l): x for l = 0, then the hidden
	// outputs. pres[l] is hidden layer l's pre-activation, kept only for SiLU.
	inputs := make([]acts, len(m.layers))
	pres := make([]acts, last)
	inputs[0] = f64(x0)
	packs := m.packs(p)
	t := new(tape)
	var cBuf *scratch // Float32's float64 pre-activations, one layer at a time
	if m.prec == Float32 && last > 0 {
		cBuf = getScratch(n * m.maxHidden)
	}
	for l, li := range m.layers[:last] {
		var c []float64
		if cBuf != nil {
			c = cBuf.f[:n*li.out]
		}
		inputs[l+1], pres[l] = hiddenVJP(m.prec, m.act, t, n, li.out, c, func(c []float64) {
			li.affine(m.prec, p, inputs[l], n, c, layerOf(packs, l))
		})
	}
	cBuf.put()
	y := make([]float64, n*m.out)
	m.layers[last].affine(m.prec, p, inputs[last], n, y, layerOf(packs, last))

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
		g, _, _ := rawRows(dy)
		return mat.NewDense(n, m.in, m.backward(p, inputs, pres, f64(g), n, dp, m.packs(p)))
	}
	return mat.NewDense(n, m.out, y), back
}

// backward is the MLP's pullback from g = dL/dy (n×out, read only): it
// adds dL/dparams into dp and returns dL/dx (n×in, new). Layer by layer,
// from the last, with g = dL/d(pre-activation of layer l):
//
//	y_l = h_l·W_l + b_l, so
//	dW_l += h_lᵀ·g   (in_l×out_l),
//	db_l += Σ_rows g,
//	dh_l  = g·W_lᵀ   (n×in_l), in float64, pooled,
//
// and, below a hidden layer, h_l = act(a_{l−1}): the next g is
// dh_l ⊙ act'(a_{l−1}), in the precision's storage (in place in Float64
// mode). The products by W_lᵀ use packs[l] when packs is not nil (p frozen,
// looked up when the pullback runs).
func (m *mlp) backward(p Params, inputs, pres []acts, g acts, n int, dp Params, packs []packedW) []float64 {
	var gBuf *scratch // g's pooled buffer; nil while g is dy
	for l := len(m.layers) - 1; ; l-- {
		li := m.layers[l]
		m.prec.mul(false, true, false, li.in, li.out, n, 1, inputs[l], g, 1, dp[li.w:li.b])
		addColSums(dp[li.b:li.b+li.out], g, n, li.out)
		if l == 0 {
			return backInputW(m.prec, g, gBuf, p[li.w:li.b], layerOf(packs, l), n, li.in, li.out)
		}
		g, gBuf = backHiddenW(m.prec, m.act, g, gBuf, p[li.w:li.b], layerOf(packs, l), inputs[l], pres[l-1], n, li.in, li.out)
	}
}
