package flows

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// affineCouplingBound is the default bound S on the log-scale of
// AffineCoupling and AffineCouplingSplit: |s| < S per dimension per layer.
const affineCouplingBound = 3

// AffineCoupling returns a RealNVP affine coupling layer (Dinh et al., 2017)
// whose scale and shift come from a conditioner net made by net.
//
// For rows of width dim ≥ 2 it splits x = [x1 | x2], the first d1 = dim/2
// columns and the last d2 = dim − d1 (so an odd dim transforms one more
// column than it keeps). x1 passes through unchanged and conditions the
// transformation of x2:
//
//	[raw | t] = net(x1)            (net: d1 → 2·d2 columns)
//	s  = S·tanh(raw/S)             (S = 3)
//	z1 = x1
//	z2 = x2·exp(s) + t
//	logDet = Σ_j s_j
//
// and Inverse computes x2 = (z2 − t)·exp(−s) with logDet = −Σ_j s_j.
// The bound keeps every log-scale in (−3, 3) per dimension per layer (the
// scale within (e⁻³, e³)), so a training step cannot blow up the scale,
// while its slope 1 at 0 leaves small outputs as in the unbounded form. In
// floating point a saturated tanh gives |s| = 3 exactly, never more. Use
// AffineCouplingBound for another bound, AffineCouplingSplit for separate
// scale and shift nets, and AdditiveCoupling for the volume-preserving
// shift-only form.
//
// The parameters are exactly the net's, in the net's layout (for MLP,
// the layers' [W | b] in order). The net is made with in = d1 and out = 2·d2
// columns, its output read as [raw scale (d2) | shift t (d2)]. A net that
// starts with zero output, as MLP does, makes the layer the identity at init.
//
// Only x2 changes, so stack couplings with Reverse (or another permutation)
// between them, so that every column is transformed in turn:
//
//	Serial(AffineCoupling(net), Reverse(), AffineCoupling(net), Reverse(), …)
//
// Init returns an error for dim < 2 and passes on the net's init errors.
// DirectVJP and InverseVJP are both provided. The functions panic for a
// batch without dim columns or parameters of the wrong length.
func AffineCoupling(net NetInitFunc) InitFunc {
	return affineCoupling("AffineCoupling", net, affineCouplingBound)
}

// AffineCouplingBound is AffineCoupling with the log-scale bounded by
// bound instead of 3: s = bound·tanh(raw/bound), |s| < bound. Init returns
// an error unless bound is positive and finite.
func AffineCouplingBound(net NetInitFunc, bound float64) InitFunc {
	return affineCoupling("AffineCouplingBound", net, bound)
}

// AffineCouplingSplit is AffineCoupling with the raw log-scale and the
// shift made by two separate nets, as in jax-flows' AffineCouplingSplit:
//
//	raw = scale(x1),  t = shift(x1)   (each net: d1 → d2 columns)
//	s   = S·tanh(raw/S)               (S = 3)
//	z2  = x2·exp(s) + t,   logDet = Σ_j s_j
//
// with the same split, bound, Inverse and gradients as AffineCoupling.
//
// Parameter layout: [scale net's parameters | shift net's parameters], each
// in its net's own layout. The scale net is made from key.Split(2)[0] and
// the shift net from key.Split(2)[1]. Nets that start with zero output, as
// MLP does, make the layer the identity at init.
//
// Init returns an error for dim < 2 or a nil net, and passes on either
// net's init errors. DirectVJP and InverseVJP are both provided. The
// functions panic for a batch without dim columns or parameters of the
// wrong length.
func AffineCouplingSplit(scale, shift NetInitFunc) InitFunc {
	const who = "AffineCouplingSplit"
	return func(key Key, dim int) (Params, Bijection, error) {
		if scale == nil || shift == nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: nil scale or shift net", who)
		}
		d1, d2, err := couplingDims(who, dim)
		if err != nil {
			return nil, Bijection{}, err
		}
		keys := key.Split(2)
		ps, ns, err := initConditioner(who, "scale conditioner", scale, keys[0], d1, d2)
		if err != nil {
			return nil, Bijection{}, err
		}
		pt, nt, err := initConditioner(who, "shift conditioner", shift, keys[1], d1, d2)
		if err != nil {
			return nil, Bijection{}, err
		}
		p := make(Params, 0, len(ps)+len(pt))
		p = append(append(p, ps...), pt...)
		net := concatNets(who, "scale conditioner", "shift conditioner", ns, nt, len(ps), d2, d2)
		c := &coupling{who: who, net: net, dim: dim, d1: d1, d2: d2, np: len(p), k: affineKernel(affineCouplingBound)}
		return p, c.bijection(), nil
	}
}

// affineCoupling builds AffineCoupling and AffineCouplingBound; who names
// the layer in errors and panics.
func affineCoupling(who string, net NetInitFunc, bound float64) InitFunc {
	return func(key Key, dim int) (Params, Bijection, error) {
		if net == nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: nil net", who)
		}
		if !(bound > 0) || math.IsInf(bound, 1) {
			return nil, Bijection{}, fmt.Errorf("flows: %s: log-scale bound %v, want positive and finite", who, bound)
		}
		return newCoupling(who, net, key, dim, affineKernel(bound))
	}
}

// affineKernel is the element-wise part of the affine couplings. The
// conditioner's row is [raw (d2) | t (d2)]; with th = tanh(raw/S) and
// s = S·th,
//
//	Direct:  v2 = u2·e + t,    e = exp(s),   logDet =  Σ s
//	Inverse: v2 = (u2 − t)·e,  e = exp(−s),  logDet = −Σ s
//
// It keeps, per row, [th (d2) | e (d2) | w (d2)] with w = u2·e (Direct) or
// v2 (Inverse), the u2-dependent factor of ∂v2/∂s.
//
// Writing g = dL/dv2 and σ = ±1 for Direct/Inverse:
//
//	Direct:  ∂v2/∂u2 = e,  ∂v2/∂t = 1,   ∂v2/∂s = u2·e = w
//	Inverse: ∂v2/∂u2 = e,  ∂v2/∂t = −e,  ∂v2/∂s = −(u2 − t)·e = −w
//	∂logDet/∂s = σ,   ∂s/∂raw = 1 − th²,
//
// so du2 = g·e, dt = g (Direct) or −g·e (Inverse), ds = σ·(g·w + dLogDet),
// draw = ds·(1 − th²).
func affineKernel(S float64) couplingKernel {
	return couplingKernel{
		width: 2,
		keep:  3,
		forward: func(v2, u2, y, keep []float64, inverse bool) float64 {
			d2 := len(u2)
			sign := 1.0
			if inverse {
				sign = -1
			}
			var sum float64
			for j := 0; j < d2; j++ {
				tj := math.Tanh(y[j] / S)
				s := S * tj
				ej := math.Exp(sign * s)
				t := y[d2+j]
				// wj is ∓∂v2/∂s: u2·e for Direct, v2 itself for Inverse.
				var v, wj float64
				if inverse {
					v = (u2[j] - t) * ej
					wj = v
				} else {
					wj = u2[j] * ej
					v = wj + t
				}
				v2[j] = v
				sum += s
				if keep != nil {
					keep[j], keep[d2+j], keep[2*d2+j] = tj, ej, wj
				}
			}
			return sign * sum
		},
		back: func(du2, dy, g2, keep []float64, dLogDet float64, inverse bool) {
			d2 := len(g2)
			sign := 1.0
			if inverse {
				sign = -1
			}
			th, e, w := keep[:d2], keep[d2:2*d2], keep[2*d2:3*d2]
			for j, g := range g2 {
				du2[j] = g * e[j]
				ds := sign * (g*w[j] + dLogDet)
				dy[j] = ds * (1 - th[j]*th[j])
				if inverse {
					dy[d2+j] = -g * e[j]
				} else {
					dy[d2+j] = g
				}
			}
		},
	}
}

// The machinery below is shared by every coupling layer (AffineCoupling,
// AffineCouplingBound, AffineCouplingSplit, AdditiveCoupling): the split
// into [u1 | u2], the conditioner call on u1, the shape checks, and the
// pullback's plumbing (the pass-through gradient of u1 plus the
// conditioner's pullback). A coupling differs only in its couplingKernel.

// couplingKernel is the element-wise part of a coupling layer: how one
// row's transformed half u2 (d2 columns) maps to v2, given the
// conditioner's output row y (width·d2 columns). Its functions are pure.
type couplingKernel struct {
	// width is the conditioner's output columns per transformed column.
	width int

	// keep is how many values per transformed column forward keeps for
	// back (0 when back needs none).
	keep int

	// forward sets v2 from u2 and y for Direct (or Inverse, when inverse)
	// and returns the row's log-det. keep is nil when no pullback is
	// wanted, else the row's keep·d2 values for back to read.
	forward func(v2, u2, y, keep []float64, inverse bool) float64

	// back sets du2 = dL/du2 and dy = dL/dy (the whole row, width·d2)
	// from g2 = dL/dv2, the row's dL/dlogDet and what forward kept.
	back func(du2, dy, g2, keep []float64, dLogDet float64, inverse bool)
}

// coupling holds a coupling layer's immutable shape: its conditioner net
// maps d1 + cdim columns to k.width·d2 and holds all np parameters.
type coupling struct {
	who         string
	net         Net
	dim, d1, d2 int
	np          int
	k           couplingKernel
	cdim        int // context columns fed to the conditioner after u1 (0: unconditional)
}

// couplingDims returns the split of dim into the d1 conditioning and d2
// transformed columns, or an init error naming who for dim < 2.
func couplingDims(who string, dim int) (d1, d2 int, err error) {
	if dim < 2 {
		return 0, 0, fmt.Errorf("flows: %s: dimension %d, want at least 2", who, dim)
	}
	return dim / 2, dim - dim/2, nil
}

// initConditioner makes a conditioner net from in to out columns and checks
// that it has both functions; what names it in errors.
func initConditioner(who, what string, net NetInitFunc, key Key, in, out int) (Params, Net, error) {
	p, nt, err := net(key, in, out)
	if err != nil {
		return nil, Net{}, fmt.Errorf("flows: %s: %s: %w", who, what, err)
	}
	if nt.Apply == nil || nt.ApplyVJP == nil {
		return nil, Net{}, fmt.Errorf("flows: %s: %s net lacks Apply or ApplyVJP", who, what)
	}
	return p, nt, nil
}

// newCoupling makes a coupling layer with one conditioner made by net
// (d1 → k.width·d2, all the layer's parameters) and the kernel k.
func newCoupling(who string, net NetInitFunc, key Key, dim int, k couplingKernel) (Params, Bijection, error) {
	if net == nil {
		return nil, Bijection{}, fmt.Errorf("flows: %s: nil net", who)
	}
	d1, d2, err := couplingDims(who, dim)
	if err != nil {
		return nil, Bijection{}, err
	}
	p, nt, err := initConditioner(who, "conditioner", net, key, d1, k.width*d2)
	if err != nil {
		return nil, Bijection{}, err
	}
	c := &coupling{who: who, net: nt, dim: dim, d1: d1, d2: d2, np: len(p), k: k}
	return p, c.bijection(), nil
}

// bijection returns the layer's functions, all four through forward.
func (c *coupling) bijection() Bijection {
	return Bijection{
		Direct: func(p Params, x *mat.Dense) (*mat.Dense, []float64) {
			z, ld, _ := c.forward(p, x, false, false)
			return z, ld
		},
		Inverse: func(p Params, z *mat.Dense) (*mat.Dense, []float64) {
			x, ld, _ := c.forward(p, z, true, false)
			return x, ld
		},
		DirectVJP: func(p Params, x *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return c.forward(p, x, false, true)
		},
		InverseVJP: func(p Params, z *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return c.forward(p, z, true, true)
		},
	}
}

// forward runs the coupling on u (n×dim), Direct when !inverse and Inverse
// when inverse, and returns the output, the log-det and, when vjp, the
// pullback (else nil). The output is [u1 | v2], v2 from the kernel. It is
// forwardCtx without a context.
func (c *coupling) forward(p Params, u *mat.Dense, inverse, vjp bool) (*mat.Dense, []float64, Pullback) {
	out, logDet, back := c.forwardCtx(p, u, nil, inverse, vjp)
	if back == nil {
		return out, logDet, nil
	}
	return out, logDet, func(dv *mat.Dense, dLogDet []float64, dp Params) *mat.Dense {
		du, _ := back(dv, dLogDet, dp)
		return du
	}
}

// forwardCtx is forward with an optional context ctx (n×c.cdim, or nil when
// c.cdim is 0): the conditioner sees the row [u1 | ctx] (d1 + cdim
// columns), so the scale and shift of u2 depend on both. Its pullback
// splits the conditioner's input gradient into the u1 part (added to the
// pass-through term) and dctx, which it returns (nil when c.cdim is 0).
// With no context every value is computed exactly as before, bit for bit.
//
// The pullback keeps the kernel's values in a buffer of its own, and the
// conditioner's pullback its own, so it never depends on the caller's
// matrices after forwardCtx returns.
func (c *coupling) forwardCtx(p Params, u, ctx *mat.Dense, inverse, vjp bool) (*mat.Dense, []float64, CondPullback) {
	checkParams(c.who, p, c.np)
	checkWidth(c.who, u, c.dim)
	n, _ := u.Dims()
	if c.cdim > 0 {
		checkContext(c.who, ctx, n, c.cdim)
	}
	d1, d2, dim, cd := c.d1, c.d2, c.dim, c.cdim
	wy := c.k.width * d2 // conditioner output columns
	wk := c.k.keep * d2  // kept values per row
	win := d1 + cd       // conditioner input columns

	// The conditioner's input, [u1 | ctx], as a contiguous copy: the net
	// sees a plain matrix and its pullback may keep it.
	ur := u.RawMatrix()
	u1 := make([]float64, n*win)
	for i := 0; i < n; i++ {
		copy(u1[i*win:i*win+d1], ur.Data[i*ur.Stride:i*ur.Stride+d1])
	}
	if cd > 0 {
		cr := ctx.RawMatrix()
		for i := 0; i < n; i++ {
			copy(u1[i*win+d1:(i+1)*win], cr.Data[i*cr.Stride:i*cr.Stride+cd])
		}
	}
	u1m := mat.NewDense(n, win, u1)
	var y *mat.Dense
	var netBack NetPullback
	if vjp {
		y, netBack = c.net.ApplyVJP(p, u1m)
	} else {
		y = c.net.Apply(p, u1m)
	}
	if r, cols := y.Dims(); r != n || cols != wy {
		panic(fmt.Sprintf("flows: %s: conditioner returned %d×%d, want %d×%d", c.who, r, cols, n, wy))
	}
	yr := y.RawMatrix()

	out := make([]float64, n*dim)
	logDet := make([]float64, n)
	var kept []float64
	if vjp {
		kept = make([]float64, n*wk)
	}
	for i := 0; i < n; i++ {
		urow := ur.Data[i*ur.Stride : i*ur.Stride+dim]
		yrow := yr.Data[i*yr.Stride : i*yr.Stride+wy]
		orow := out[i*dim : (i+1)*dim]
		copy(orow[:d1], urow[:d1])
		var krow []float64
		if vjp {
			krow = kept[i*wk : (i+1)*wk]
		}
		logDet[i] = c.k.forward(orow[d1:], urow[d1:], yrow, krow, inverse)
	}
	if !vjp {
		return mat.NewDense(n, dim, out), logDet, nil
	}

	back := func(dv *mat.Dense, dLogDet []float64, dp Params) (*mat.Dense, *mat.Dense) {
		checkPullback(c.who, dv, dLogDet, dp, n, dim, c.np)
		// The kernel gives du2 and dy = dL/d(conditioner output); the net
		// pulls dy back to [du1 | dctx]: du1 is added to g1, the
		// pass-through term, dctx is returned, and dp receives the rest.
		gr := dv.RawMatrix()
		du := make([]float64, n*dim)
		dy := make([]float64, n*wy)
		for i := 0; i < n; i++ {
			grow := gr.Data[i*gr.Stride : i*gr.Stride+dim]
			drow := du[i*dim : (i+1)*dim]
			copy(drow[:d1], grow[:d1])
			c.k.back(drow[d1:], dy[i*wy:(i+1)*wy], grow[d1:], kept[i*wk:(i+1)*wk], dLogDet[i], inverse)
		}
		du1 := netBack(mat.NewDense(n, wy, dy), dp)
		if r, cols := du1.Dims(); r != n || cols != win {
			panic(fmt.Sprintf("flows: %s: conditioner pullback returned %d×%d, want %d×%d", c.who, r, cols, n, win))
		}
		dr := du1.RawMatrix()
		for i := 0; i < n; i++ {
			drow := du[i*dim : i*dim+d1]
			for j, v := range dr.Data[i*dr.Stride : i*dr.Stride+d1] {
				drow[j] += v
			}
		}
		var dctx *mat.Dense
		if cd > 0 {
			dc := make([]float64, n*cd)
			for i := 0; i < n; i++ {
				copy(dc[i*cd:(i+1)*cd], dr.Data[i*dr.Stride+d1:i*dr.Stride+win])
			}
			dctx = mat.NewDense(n, cd, dc)
		}
		return mat.NewDense(n, dim, du), dctx
	}
	return mat.NewDense(n, dim, out), logDet, back
}

// concatNets returns the net x ↦ [a(x) | b(x)], with outA + outB output
// columns and parameters [a's (na) | b's]: AffineCouplingSplit's two nets
// seen as one conditioner. who, nameA and nameB label its panics. Its
// pullback splits dy into contiguous halves, pulls each back through its
// own net into its own part of dp, and returns the sum of the two dx.
func concatNets(who, nameA, nameB string, a, b Net, na, outA, outB int) Net {
	parts := func(p Params) (Params, Params) { return p[:na:na], p[na:] }
	// join copies ya and yb side by side into a new n×(outA+outB) matrix.
	join := func(ya, yb *mat.Dense, n int) *mat.Dense {
		checkNetOut(who, nameA+" returned", ya, n, outA)
		checkNetOut(who, nameB+" returned", yb, n, outB)
		w := outA + outB
		y := make([]float64, n*w)
		ar, br := ya.RawMatrix(), yb.RawMatrix()
		for i := 0; i < n; i++ {
			copy(y[i*w:i*w+outA], ar.Data[i*ar.Stride:i*ar.Stride+outA])
			copy(y[i*w+outA:(i+1)*w], br.Data[i*br.Stride:i*br.Stride+outB])
		}
		return mat.NewDense(n, w, y)
	}
	return Net{
		Apply: func(p Params, x *mat.Dense) *mat.Dense {
			pa, pb := parts(p)
			n, _ := x.Dims()
			return join(a.Apply(pa, x), b.Apply(pb, x), n)
		},
		ApplyVJP: func(p Params, x *mat.Dense) (*mat.Dense, NetPullback) {
			pa, pb := parts(p)
			n, in := x.Dims()
			ya, backA := a.ApplyVJP(pa, x)
			yb, backB := b.ApplyVJP(pb, x)
			back := func(dy *mat.Dense, dp Params) *mat.Dense {
				checkNetOut(who, "pullback gradient", dy, n, outA+outB)
				dr := dy.RawMatrix()
				dya := make([]float64, n*outA)
				dyb := make([]float64, n*outB)
				for i := 0; i < n; i++ {
					row := dr.Data[i*dr.Stride : i*dr.Stride+outA+outB]
					copy(dya[i*outA:(i+1)*outA], row[:outA])
					copy(dyb[i*outB:(i+1)*outB], row[outA:])
				}
				dpa, dpb := parts(dp)
				dxa := backA(mat.NewDense(n, outA, dya), dpa)
				dxb := backB(mat.NewDense(n, outB, dyb), dpb)
				checkNetOut(who, nameA+" pullback returned", dxa, n, in)
				checkNetOut(who, nameB+" pullback returned", dxb, n, in)
				dx := mat.NewDense(n, in, nil)
				dx.Add(dxa, dxb)
				return dx
			}
			return join(ya, yb, n), back
		},
	}
}

// checkNetOut panics with a flows: message when m is not r×c.
func checkNetOut(who, what string, m *mat.Dense, r, c int) {
	if mr, mc := m.Dims(); mr != r || mc != c {
		panic(fmt.Sprintf("flows: %s: %s %d×%d, want %d×%d", who, what, mr, mc, r, c))
	}
}
