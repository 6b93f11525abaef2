package flows

// The dynamics net of the continuous normalizing flow (cnf.go): an MLP of
// (z, t), with an optional context c, in which time enters every layer
// through FFJORD's concat-squash layers (Grathwohl et al., 2019):
//
//	a_l = (h_l·W_lᵀ + b_l) ⊙ σ(t·gw_l + gb_l) + t·bw_l,
//	h_{l+1} = φ(a_l) for the hidden layers, f = a_{L−1},
//
// with h_0 = [z | c]. Parameters of layer l, in order: W_l (out×in, row
// major), b_l, gw_l, gb_l, bw_l (each of length out). The last layer's W,
// b and bw start at zero, so that f ≡ 0 and the flow starts as the
// identity.
//
// Besides f and its vector–Jacobian product, the trace term of the
// log-determinant needs forward tangents: for directions ε_k (rows of
// width dim), ḟ_k = (∂f/∂z)·ε_k and T = Σ_k ε_kᵀ·ḟ_k per row, which is
// tr(∂f/∂z) when the ε_k are the unit vectors (the exact trace) and
// Hutchinson's estimate with one random ε. The gradient of Σ_i w_i·T_i
// with respect to z, c and the parameters (the second-order product the
// Hutchinson and exact-trace gradients need) is the reverse pass through
// the forward and tangent computations together, so one backward pass
// gives Aᵀ·∂f/∂(z, c, θ) + w·∂T/∂(z, c, θ). The tangent ḣ_0 = [ε | 0]
// is a constant: it has no cotangent.
//
// More generally the per-row scalar is an integrand (odeIntegrand)
//
//	s = α·Σ_k ε_kᵀ·ḟ_k + β_K·‖f‖² + β_J·Σ_k ‖ḟ_k‖²,
//
// T alone by default (α = 1); RNODE's regularisers (Finlay et al., 2020)
// are the kinetic energy ‖f‖² and the Jacobian's squared Frobenius norm
// Σ_k ‖ḟ_k‖², exact with the unit directions and Hutchinson's estimate
// with one Rademacher ε (E‖(∂f/∂z)ε‖² = ‖∂f/∂z‖²_F). Its reverse pass adds
// 2·w·β_K·f to f's cotangent and 2·w·β_J·ḟ_k to ḟ_k's.

import (
	"fmt"
	"math"

	"github.com/gonormflows/flows/internal/linalg"
	"github.com/gonormflows/flows/internal/vmath"
)

// odeNet is the layout of a dynamics net.
type odeNet struct {
	dim, cdim int
	widths    []int // widths[0] = dim+cdim, …, widths[L] = dim
	off       []int // parameter offset of each layer
	np        int
	act       Activation
}

func newODENet(dim, cdim int, hidden []int, act Activation) *odeNet {
	nt := &odeNet{dim: dim, cdim: cdim, act: act}
	nt.widths = append(append([]int{dim + cdim}, hidden...), dim)
	for l := 0; l+1 < len(nt.widths); l++ {
		nt.off = append(nt.off, nt.np)
		nt.np += nt.widths[l+1] * (nt.widths[l] + 4)
	}
	return nt
}

// smoothActivation reports whether the dynamics net accepts act: it needs
// a second derivative everywhere.
func smoothActivation(act Activation) bool { return act == Tanh || act == SiLU }

// layers returns the number of layers.
func (nt *odeNet) layers() int { return len(nt.off) }

// layer returns layer l's parameters as views of p.
func (nt *odeNet) layer(p []float64, l int) (w, b, gw, gb, bw []float64) {
	in, out := nt.widths[l], nt.widths[l+1]
	o := nt.off[l]
	w = p[o : o+out*in]
	o += out * in
	return w, p[o : o+out], p[o+out : o+2*out], p[o+2*out : o+3*out], p[o+3*out : o+4*out]
}

// init returns initial parameters: W uniform in ±1/√in, the gate weights
// uniform in ±1, other entries zero, and the last layer's W, b and bw
// zero (f ≡ 0). With randomBias the hidden layers' b are uniform in
// ±1/√in too, drawn after their layer's W.
func (nt *odeNet) init(key Key, randomBias bool) Params {
	p := make(Params, nt.np)
	rng := key.Rand()
	for l := 0; l < nt.layers(); l++ {
		w, b, gw, _, _ := nt.layer(p, l)
		if l+1 < nt.layers() {
			s := 1 / math.Sqrt(float64(nt.widths[l]))
			for i := range w {
				w[i] = s * (2*rng.Float64() - 1)
			}
			if randomBias {
				for i := range b {
					b[i] = s * (2*rng.Float64() - 1)
				}
			}
		}
		for i := range gw {
			gw[i] = 2*rng.Float64() - 1
		}
	}
	return p
}

// actDerivs returns φ(x), φ′(x) and φ″(x), given v = tanh(x) (Tanh) or
// v = exp(−x) (SiLU), each with math's bits.
func actDerivs(act Activation, x, v float64) (f, d1, d2 float64) {
	if act == Tanh {
		f = v
		d1 = 1 - f*f
		return f, d1, -2 * f * d1
	}
	// SiLU: x·σ(x).
	s := 1 / (1 + v)
	return x * s, s * (1 + x*(1-s)), s * (1 - s) * (2 + x*(1-2*s))
}

// odeNetWork holds one evaluation's intermediate values for n rows and K
// tangent directions, and the reverse pass's temporaries.
type odeNetWork struct {
	n, k       int
	h, p, a    [][]float64 // h[l] is layer l's input (n×in); p, a its outputs before/after the gate
	hd, pd, ad [][]float64 // the tangents of h, p, a (K·n rows)
	g          [][]float64 // gates σ(t·gw + gb)
	d1, d2     [][]float64 // φ′ and φ″ at a_l, for the hidden layers
	t          float64
	in         odeIntegrand // the per-row scalar (traceIntegrand unless set)
	// reverse pass
	ab, hb, adb, hdb, pb, pdb, gbar []float64
}

func (nt *odeNet) newWork(n, k int) *odeNetWork {
	L := nt.layers()
	ws := &odeNetWork{n: n, k: k, in: traceIntegrand}
	maxw := 0
	for l := 0; l <= L; l++ {
		maxw = max(maxw, nt.widths[l])
	}
	for l := 0; l < L; l++ {
		in, out := nt.widths[l], nt.widths[l+1]
		ws.h = append(ws.h, make([]float64, n*in))
		ws.p = append(ws.p, make([]float64, n*out))
		ws.a = append(ws.a, make([]float64, n*out))
		ws.g = append(ws.g, make([]float64, out))
		ws.hd = append(ws.hd, make([]float64, k*n*in))
		ws.pd = append(ws.pd, make([]float64, k*n*out))
		ws.ad = append(ws.ad, make([]float64, k*n*out))
		ws.d1 = append(ws.d1, make([]float64, n*out))
		ws.d2 = append(ws.d2, make([]float64, n*out))
	}
	ws.ab, ws.hb, ws.pb = make([]float64, n*maxw), make([]float64, n*maxw), make([]float64, n*maxw)
	ws.adb, ws.hdb, ws.pdb = make([]float64, k*n*maxw), make([]float64, k*n*maxw), make([]float64, k*n*maxw)
	ws.gbar = make([]float64, maxw)
	return ws
}

// forward evaluates the net at time t on the rows of z (n×dim, flat) and
// c (n×cdim, flat; nil when cdim is 0), with the K = ws.k tangent
// directions eps (K blocks of n×dim, flat) when K > 0. It returns f (n×dim,
// a view into ws) and writes each row's integrand ws.in (T by default)
// into tr (length n) when K > 0 or the integrand has a kinetic term.
func (nt *odeNet) forward(p []float64, t float64, z, c, eps []float64, ws *odeNetWork, tr []float64) []float64 {
	n, k, d, in0 := ws.n, ws.k, nt.dim, nt.widths[0]
	ws.t = t
	h0 := ws.h[0]
	for i := 0; i < n; i++ {
		copy(h0[i*in0:i*in0+d], z[i*d:(i+1)*d])
		if nt.cdim > 0 {
			copy(h0[i*in0+d:(i+1)*in0], c[i*nt.cdim:(i+1)*nt.cdim])
		}
	}
	if k > 0 {
		hd0 := ws.hd[0]
		clear(hd0)
		for r := 0; r < k*n; r++ {
			copy(hd0[r*in0:r*in0+d], eps[r*d:(r+1)*d])
		}
	}
	L := nt.layers()
	for l := 0; l < L; l++ {
		in, out := nt.widths[l], nt.widths[l+1]
		w, b, gw, gb, bw := nt.layer(p, l)
		g, pl, al := ws.g[l], ws.p[l], ws.a[l]
		for j := range g {
			g[j] = -(t*gw[j] + gb[j])
		}
		vmath.Exp(g, g)
		for j, e := range g {
			g[j] = 1 / (1 + e)
		}
		linalg.Gemm(false, true, n, out, in, 1, ws.h[l], w, 0, pl)
		for i := 0; i < n; i++ {
			row, arow := pl[i*out:(i+1)*out], al[i*out:(i+1)*out]
			for j := range row {
				row[j] += b[j]
				arow[j] = row[j]*g[j] + t*bw[j]
			}
		}
		if k > 0 {
			linalg.Gemm(false, true, k*n, out, in, 1, ws.hd[l], w, 0, ws.pd[l])
			pd, ad := ws.pd[l], ws.ad[l]
			for r := 0; r < k*n; r++ {
				for j := 0; j < out; j++ {
					ad[r*out+j] = pd[r*out+j] * g[j]
				}
			}
		}
		if l+1 < L {
			nt.activate(ws, l, n, k, out)
		}
	}
	f := ws.a[L-1]
	if k > 0 || ws.in.kinetic != 0 {
		nt.integrand(ws, eps, tr)
	}
	return f
}

// odeIntegrand is the per-row scalar of the forward pass (see the file
// comment): s = trace·Σ_k ε_kᵀ·ḟ_k + kinetic·‖f‖² + frob·Σ_k ‖ḟ_k‖².
type odeIntegrand struct{ trace, kinetic, frob float64 }

// traceIntegrand is T, the log-determinant's integrand.
var traceIntegrand = odeIntegrand{trace: 1}

// integrand writes each row's scalar ws.in into s, from the last forward
// pass's f and tangents.
func (nt *odeNet) integrand(ws *odeNetWork, eps, s []float64) {
	n, k, d, L := ws.n, ws.k, nt.dim, nt.layers()
	f, fd, in := ws.a[L-1], ws.ad[L-1], ws.in
	for i := 0; i < n; i++ {
		var tr, fr float64
		for kk := 0; kk < k; kk++ {
			r := kk*n + i
			for j := 0; j < d; j++ {
				v := fd[r*d+j]
				tr += eps[r*d+j] * v
				if in.frob != 0 {
					fr += v * v
				}
			}
		}
		v := in.trace * tr // T itself when trace is 1, bit for bit
		if in.kinetic != 0 {
			var ke float64
			for _, fj := range f[i*d : (i+1)*d] {
				ke += fj * fj
			}
			v += in.kinetic * ke
		}
		if in.frob != 0 {
			v += in.frob * fr
		}
		s[i] = v
	}
}

// activate computes layer l+1's input and its tangents from layer l's
// output a_l (n×out).
func (nt *odeNet) activate(ws *odeNetWork, l, n, k, out int) {
	al, hn, adl, hdn := ws.a[l], ws.h[l+1], ws.ad[l], ws.hd[l+1]
	// tanh or exp(−x) of the whole layer first, by internal/vmath's vector
	// kernels (math's bits), into hn (overwritten below) for actDerivs.
	m := n * out
	if nt.act == Tanh {
		vmath.Tanh(hn[:m], al[:m])
	} else {
		for q, x := range al[:m] {
			hn[q] = -x
		}
		vmath.Exp(hn[:m], hn[:m])
	}
	for i := 0; i < n; i++ {
		for j := 0; j < out; j++ {
			fv, d1, d2 := actDerivs(nt.act, al[i*out+j], hn[i*out+j])
			hn[i*out+j] = fv
			ws.d1[l][i*out+j], ws.d2[l][i*out+j] = d1, d2
			for kk := 0; kk < k; kk++ {
				r := (kk*n + i) * out
				hdn[r+j] = d1 * adl[r+j]
			}
		}
	}
}

// backward runs the reverse pass of the last forward (whose values ws
// holds) for the scalar Σ A∘f + Σ_i w_i·s_i, s_i the rows' integrand
// ws.in (w nil when there are no tangents or their term is not wanted): it adds the parameter gradient
// into dp, writes the z cotangent into zb (n×dim) and, when cdim > 0 and
// cb is not nil, adds the context's into cb (n×cdim).
func (nt *odeNet) backward(p []float64, A, w, eps []float64, ws *odeNetWork, dp, zb, cb []float64) {
	n, d, t, L := ws.n, nt.dim, ws.t, nt.layers()
	k := ws.k
	if w == nil {
		k = 0
	}
	copy(ws.ab[:n*d], A)
	nt.integrandCotangents(ws, w, eps, k)
	for l := L - 1; l >= 0; l-- {
		nt.backLayer(p, ws, l, n, k, t, dp)
		if l == 0 {
			break
		}
		nt.backActivate(ws, l, n, k)
	}
	in0 := nt.widths[0]
	for i := 0; i < n; i++ {
		copy(zb[i*d:(i+1)*d], ws.hb[i*in0:i*in0+d])
		if nt.cdim > 0 && cb != nil {
			cr := cb[i*nt.cdim : (i+1)*nt.cdim]
			for j := range cr {
				cr[j] += ws.hb[i*in0+d+j]
			}
		}
	}
}

// integrandCotangents adds the cotangents of f and writes those of the
// tangents ḟ_k (K = k of them) that the per-row scalars' weights w give
// (see the file comment); nothing when w is nil.
func (nt *odeNet) integrandCotangents(ws *odeNetWork, w, eps []float64, k int) {
	if w == nil {
		return
	}
	n, d, in := ws.n, nt.dim, ws.in
	if in.kinetic != 0 {
		f := ws.a[nt.layers()-1]
		for i := 0; i < n; i++ {
			c := 2 * in.kinetic * w[i]
			for j := 0; j < d; j++ {
				ws.ab[i*d+j] += c * f[i*d+j]
			}
		}
	}
	fd := ws.ad[nt.layers()-1]
	for kk := 0; kk < k; kk++ {
		for i := 0; i < n; i++ {
			r := (kk*n + i) * d
			wi := w[i] * in.trace // w[i] itself when trace is 1, bit for bit
			for j := 0; j < d; j++ {
				ws.adb[r+j] = wi * eps[r+j]
			}
			if in.frob != 0 {
				c := 2 * in.frob * w[i]
				for j := 0; j < d; j++ {
					ws.adb[r+j] += c * fd[r+j]
				}
			}
		}
	}
}

// backLayer takes the cotangents of layer l's output (ws.ab, and ws.adb
// for the tangents) to its input (ws.hb, ws.hdb), adding the layer's
// parameter gradient into dp.
func (nt *odeNet) backLayer(p []float64, ws *odeNetWork, l, n, k int, t float64, dp []float64) {
	in, out := nt.widths[l], nt.widths[l+1]
	w, _, _, _, _ := nt.layer(p, l)
	dw, db, dgw, dgb, dbw := nt.layer(dp, l)
	g, pl := ws.g[l], ws.p[l]
	gbar := ws.gbar[:out]
	clear(gbar)
	pb, ab := ws.pb[:n*out], ws.ab[:n*out]
	for i := 0; i < n; i++ {
		for j := 0; j < out; j++ {
			v := ab[i*out+j]
			pb[i*out+j] = v * g[j]
			gbar[j] += v * pl[i*out+j]
			dbw[j] += v * t
			db[j] += v * g[j]
		}
	}
	if k > 0 {
		pdb, adb, pd := ws.pdb[:k*n*out], ws.adb[:k*n*out], ws.pd[l]
		for r := 0; r < k*n; r++ {
			for j := 0; j < out; j++ {
				v := adb[r*out+j]
				pdb[r*out+j] = v * g[j]
				gbar[j] += v * pd[r*out+j]
			}
		}
	}
	for j, gj := range g {
		s := gbar[j] * gj * (1 - gj)
		dgw[j] += s * t
		dgb[j] += s
	}
	linalg.Gemm(true, false, out, in, n, 1, pb, ws.h[l], 1, dw)
	linalg.Gemm(false, false, n, in, out, 1, pb, w, 0, ws.hb[:n*in])
	if k > 0 {
		linalg.Gemm(true, false, out, in, k*n, 1, ws.pdb[:k*n*out], ws.hd[l], 1, dw)
		if l > 0 {
			linalg.Gemm(false, false, k*n, in, out, 1, ws.pdb[:k*n*out], w, 0, ws.hdb[:k*n*in])
		}
	}
}

// backActivate takes the cotangents of layer l's input h_l = φ(a_{l−1})
// and its tangents ḣ_l = φ′(a_{l−1})⊙ȧ_{l−1} (ws.hb, ws.hdb) to those of
// a_{l−1} and ȧ_{l−1} (ws.ab, ws.adb).
func (nt *odeNet) backActivate(ws *odeNetWork, l, n, k int) {
	w := nt.widths[l]
	ad, d1s, d2s := ws.ad[l-1], ws.d1[l-1], ws.d2[l-1]
	for i := 0; i < n; i++ {
		for j := 0; j < w; j++ {
			d1, d2 := d1s[i*w+j], d2s[i*w+j]
			v := ws.hb[i*w+j] * d1
			for kk := 0; kk < k; kk++ {
				r := (kk*n+i)*w + j
				hdb := ws.hdb[r]
				v += hdb * d2 * ad[r]
				ws.adb[r] = hdb * d1
			}
			ws.ab[i*w+j] = v
		}
	}
}

// checkODENet returns an init error for a dynamics net the CNF cannot use.
func checkODENet(who string, hidden []int, act Activation) error {
	if len(hidden) == 0 {
		return fmt.Errorf("flows: %s: the dynamics net needs at least one hidden layer", who)
	}
	for i, h := range hidden {
		if h < 1 {
			return fmt.Errorf("flows: %s: hidden layer %d has width %d, need at least 1", who, i, h)
		}
	}
	if !smoothActivation(act) {
		return fmt.Errorf("flows: %s: activation %v has no second derivative everywhere; use Tanh or SiLU", who, act)
	}
	return nil
}
