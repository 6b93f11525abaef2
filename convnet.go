package flows

// The convolutional conditioner of image couplings.
//
// With h₀ = conv_in(x), each residual block maps
//
//	h ← h + conv_b2(ReLU(conv_b1(ReLU(h))))
//
// and the output is y = conv_out(ReLU(h)). Every conv is 3×3 (padding 1);
// conv_out starts at zero (weights and bias), so the net's output, and the
// coupling it drives, start at zero: the identity. The other convs start
// He-initialised (N(0, 2/fan-in)), the second conv of each block scaled by
// 0.1 so a deep stack starts near its input path.
//
// Weight normalisation (Salimans and Kingma, 2016), when on, writes each
// hidden conv's filter of output channel o as W_o = g_o·V_o/‖V_o‖, with V
// and g the parameters (g starting at ‖V_o‖, so W starts as V); its
// gradients are dg_o = dW_o·u_o and dV_o = (g_o/‖V_o‖)·(dW_o − dg_o·u_o)
// with u_o = V_o/‖V_o‖. conv_out is never normalised (it starts at zero).
//
// Parameter layout, conv by conv in the order conv_in, conv_b1, conv_b2 of
// each block, conv_out: [W or V (cout·cin·9) | g (cout, weight norm only) |
// b (cout)].

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// ConvNetConfig configures ConvNet.
type ConvNetConfig struct {
	// Hidden is the number of channels of the hidden layers (default 32).
	Hidden int
	// Blocks is the number of residual blocks of two 3×3 convolutions
	// (default 0: conv_in, then conv_out).
	Blocks int
	// WeightNorm normalises the weights of every conv but the last.
	WeightNorm bool
	// Precision is the arithmetic of the convolutions' products (default
	// Float64; see Precision).
	Precision Precision
}

// ConvNet returns a convolutional conditioner for images of height h and
// width w: 3×3 convolutions with ReLU, Blocks residual blocks of two
// convolutions, and a last convolution that starts at zero, so a coupling
// over it starts as the identity (the structure, initialisation and
// parameter layout are in convnet.go's file comment). Rows in and out are
// channel-major images (see Shape): the net is made for in = cin·h·w and
// out = cout·h·w columns, and its init returns an error naming the widths
// when h·w does not divide them or a setting is negative.
func ConvNet(h, w int, cfg ConvNetConfig) NetInitFunc {
	return func(key Key, in, out int) (Params, Net, error) {
		hidden := cfg.Hidden
		if hidden == 0 {
			hidden = 32
		}
		if h < 1 || w < 1 || hidden < 1 || cfg.Blocks < 0 {
			return nil, Net{}, fmt.Errorf("flows: ConvNet: height %d, width %d, hidden %d, blocks %d: need positive sizes", h, w, hidden, cfg.Blocks)
		}
		return convNetInit(key, h, w, in, out, hidden, cfg.Blocks, cfg.WeightNorm, cfg.Precision)
	}
}

// convLayer is one conv of a ConvNet with its parameter offset.
type convLayer struct {
	conv2d
	off  int  // its parameters start at p[off]
	norm bool // weight-normalised
}

// np returns the layer's parameter count.
func (l convLayer) np() int {
	n := l.weights() + l.cout
	if l.norm {
		n += l.cout
	}
	return n
}

// weight returns the filter W of the layer at p (for weight norm, g·V/‖V‖,
// and the norms ‖V_o‖).
func (l convLayer) weight(p Params) (wt, norms []float64) {
	v := p[l.off : l.off+l.weights()]
	if !l.norm {
		return v, nil
	}
	g := p[l.off+l.weights() : l.off+l.weights()+l.cout]
	per := l.weights() / l.cout
	wt, norms = make([]float64, len(v)), make([]float64, l.cout)
	for o := range norms {
		vo := v[o*per : (o+1)*per]
		var s float64
		for _, x := range vo {
			s += x * x
		}
		norms[o] = math.Sqrt(s)
		f := g[o] / norms[o]
		for j, x := range vo {
			wt[o*per+j] = f * x
		}
	}
	return wt, norms
}

// bias returns the layer's bias at p.
func (l convLayer) bias(p Params) []float64 { return p[l.off+l.np()-l.cout : l.off+l.np()] }

// addWeightGrad adds the gradient dW of the filter to dp, through the
// weight normalisation when there is one.
func (l convLayer) addWeightGrad(p, dp Params, dw, norms []float64) {
	dv := dp[l.off : l.off+l.weights()]
	if !l.norm {
		for j, v := range dw {
			dv[j] += v
		}
		return
	}
	v := p[l.off : l.off+l.weights()]
	g := p[l.off+l.weights() : l.off+l.weights()+l.cout]
	dg := dp[l.off+l.weights() : l.off+l.weights()+l.cout]
	per := l.weights() / l.cout
	for o, nv := range norms {
		vo, dwo := v[o*per:(o+1)*per], dw[o*per:(o+1)*per]
		var s float64
		for j := range vo {
			s += dwo[j] * vo[j] / nv
		}
		dg[o] += s
		f := g[o] / nv
		for j := range vo {
			dv[o*per+j] += f * (dwo[j] - s*vo[j]/nv)
		}
	}
}

// convNetInit makes the net of ConvNet with resolved settings; hidden 0
// (never passed by ConvNet) makes the one-conv net of a split prior.
func convNetInit(key Key, h, w, in, out, hidden, blocks int, norm bool, prec Precision) (Params, Net, error) {
	hw := h * w
	if in < hw || in%hw != 0 || out < hw || out%hw != 0 {
		return nil, Net{}, fmt.Errorf("flows: ConvNet: widths %d in, %d out are not whole %d×%d images", in, out, h, w)
	}
	cin, cout := in/hw, out/hw
	var layers []convLayer
	add := func(ci, co int, nrm bool) {
		off := 0
		if len(layers) > 0 {
			last := layers[len(layers)-1]
			off = last.off + last.np()
		}
		layers = append(layers, convLayer{conv2d{ci, co, 3, h, w, prec}, off, nrm})
	}
	if hidden == 0 {
		// One zero conv from in to out (the split prior's net).
		add(cin, cout, false)
	} else {
		add(cin, hidden, norm)
		for range blocks {
			add(hidden, hidden, norm)
			add(hidden, hidden, norm)
		}
		add(hidden, cout, false)
	}
	last := layers[len(layers)-1]
	p := make(Params, last.off+last.np())
	keys := key.Split(len(layers))
	for i, l := range layers[:len(layers)-1] {
		std := math.Sqrt(2 / float64(l.cin*9))
		if i > 0 && i%2 == 0 {
			std *= 0.1 // the second conv of a residual block
		}
		r := keys[i].Rand()
		v := p[l.off : l.off+l.weights()]
		for j := range v {
			v[j] = std * r.NormFloat64()
		}
		if l.norm {
			per := l.weights() / l.cout
			for o := 0; o < l.cout; o++ {
				var s float64
				for _, x := range v[o*per : (o+1)*per] {
					s += x * x
				}
				p[l.off+l.weights()+o] = math.Sqrt(s)
			}
		}
	}
	cn := &convNet{layers: layers, in: in, out: out, np: len(p)}
	return p, Net{Apply: cn.apply, ApplyVJP: cn.applyVJP}, nil
}

// convNet is a ConvNet's immutable shape.
type convNet struct {
	layers      []convLayer
	in, out, np int
}

// apply is the net's forward pass.
func (cn *convNet) apply(p Params, x *mat.Dense) *mat.Dense {
	y, n, _ := cn.run(p, x, false)
	return mat.NewDense(n, cn.out, y)
}

// convNetTape holds what the backward pass needs: the input of every
// conv and whether the conv applies the ReLU to it itself (Float32: then
// the input is before the ReLU; else after), and the filters.
type convNetTape struct {
	ins   [][]float64
	acts  []bool
	wts   [][]float64
	norms [][]float64
}

// run computes the forward pass, keeping the tape when asked.
func (cn *convNet) run(p Params, x *mat.Dense, keep bool) ([]float64, int, *convNetTape) {
	checkWidth("ConvNet", x, cn.in)
	checkParams("ConvNet", p, cn.np)
	xs, n, _ := rawRows(x)
	tape := &convNetTape{}
	// conv applies layer l to in, after a ReLU when act: the Float32
	// passes apply it while they copy their input (no ReLU'd copy kept),
	// the float64 ones take a copy.
	conv := func(l convLayer, in []float64, act bool) []float64 {
		if act && l.prec != Float32 {
			in, act = relu(in), false
		}
		wt, norms := l.weight(p)
		if keep {
			tape.ins = append(tape.ins, in)
			tape.acts = append(tape.acts, act)
			tape.wts = append(tape.wts, wt)
			tape.norms = append(tape.norms, norms)
		}
		return l.forwardAct(wt, l.bias(p), in, n, act)
	}
	ls := cn.layers
	if len(ls) == 1 {
		return conv(ls[0], xs, false), n, tape
	}
	h := conv(ls[0], xs, false)
	for b := 0; b < (len(ls)-2)/2; b++ {
		r := conv(ls[2+2*b], conv(ls[1+2*b], h, true), true)
		addToPar(r, h)
		h = r
	}
	return conv(ls[len(ls)-1], h, true), n, tape
}

// forSpans calls fn on spans [j0, j1) that cover [0, n), in parallel when
// n is large: for elementwise work of about one operation an element.
func forSpans(n int, fn func(j0, j1 int)) {
	const span = 1024
	forRows((n+span-1)/span, span, func(r0, r1 int) { fn(r0*span, min(r1*span, n)) })
}

// relu returns max(x, 0) elementwise, in a new slice.
func relu(x []float64) []float64 {
	y := make([]float64, len(x))
	forSpans(len(x), func(j0, j1 int) {
		for j := j0; j < j1; j++ {
			y[j] = max(x[j], 0)
		}
	})
	return y
}

// addToPar is addTo (a += b elementwise) split across the cores.
func addToPar(a, b []float64) {
	b = b[:len(a)]
	forSpans(len(a), func(j0, j1 int) {
		for j := j0; j < j1; j++ {
			a[j] += b[j]
		}
	})
}

// reluBack zeroes g where the ReLU's output post is not positive, in place.
func reluBack(g, post []float64) {
	forSpans(len(post), func(j0, j1 int) { reluMask(g[j0:j1], post[j0:j1]) })
}

// reluMask is reluBack on the calling goroutine.
func reluMask(g, post []float64) {
	// A mask rather than a branch: the signs of a layer's outputs are
	// about as likely either way, and the mispredicted branches cost more
	// than the loop's other work.
	g = g[:len(post)]
	for j, v := range post {
		m := ^uint64(0)
		if v <= 0 {
			m = 0
		}
		g[j] = math.Float64frombits(math.Float64bits(g[j]) & m)
	}
}

// applyVJP is the net's forward pass with its pullback.
func (cn *convNet) applyVJP(p Params, x *mat.Dense) (*mat.Dense, NetPullback) {
	y, n, tape := cn.run(p, x, true)
	back := func(dy *mat.Dense, dp Params) *mat.Dense {
		checkWidth("ConvNet", dy, cn.out)
		if r, _ := dy.Dims(); r != n {
			panic(fmt.Sprintf("flows: ConvNet: pullback gradient has %d rows, want %d", r, n))
		}
		checkParams("ConvNet", dp, cn.np)
		g, _, _ := rawRows(dy)
		ls := cn.layers
		// convBack returns conv i's input gradient, through the ReLU on its
		// input but for conv_in's: every conv but conv_in reads a ReLU's
		// output, recorded on the tape (or its input: the same sign), and
		// the ReLU's derivative is 0 where that output is 0.
		convBack := func(i int, g []float64) []float64 {
			l := ls[i]
			dw := make([]float64, l.weights())
			dx := l.backwardAct(tape.wts[i], tape.ins[i], g, n, dw, dp[l.off+l.np()-l.cout:l.off+l.np()], true, tape.acts[i], i > 0)
			l.addWeightGrad(p, dp, dw, tape.norms[i])
			return dx
		}
		last := len(ls) - 1
		if last == 0 {
			return mat.NewDense(n, cn.in, convBack(0, g))
		}
		dh := convBack(last, g)
		for b := (len(ls)-2)/2 - 1; b >= 0; b-- {
			addToPar(dh, convBack(1+2*b, convBack(2+2*b, dh)))
		}
		return mat.NewDense(n, cn.in, convBack(0, dh))
	}
	return mat.NewDense(n, cn.out, y), back
}
