package flows

// The coupling layer, written once over any Transformer.
//
// A row u (n×dim) splits into [u1 | u2], the first d1 = dim/2 columns and the
// last d2 = dim − d1. The conditioner net reads [u1 | c] (d1 + contextDim
// columns, c the context when there is one) and emits P parameters for each
// of the d2 columns of u2; each column then goes through the transformer,
// forward for Direct and inverse for Inverse, and u1 passes through:
//
//	y  = net([u1 | c])              (P·d2 columns)
//	v2_j = f(u2_j; θ_j)  or  f⁻¹(u2_j; θ_j),   logDet = Σ_j log|∂v2_j/∂u2_j|
//
// So an odd dim transforms one more column than it keeps. The parameters
// θ_j of column j are gathered from y by the layout the preset chose:
// Coupling's own is parameter-major, θ_j[k] = y[k·d2 + j] (P blocks of d2
// columns, the k-th parameter of every transformed column in block k).
// Non-finite conditioner outputs are replaced before the transformer sees
// them and get no gradient (see transformer.go's file comment).
//
// The pullback runs the transformer's pullback per element, which gives
// du2_j and dL/dθ_j, gathers the latter into dL/dy, pulls that back through
// the net to [du1 | dc], and adds du1 to the pass-through gradient. The
// pullback keeps private copies of u2 and v2 and the net's output (which is
// the layer's own), so it never depends on the caller's matrices after the
// pass returns.

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Coupling returns a coupling layer (Dinh et al., 2015, 2017; Durkan et
// al., 2019): a row of width dim ≥ 2 splits into [x1 | x2], the first
// d1 = dim/2 columns and the last d2 = dim − d1; x1 passes through, and
// each column of x2 goes through the transformer t with parameters from a
// conditioner net made by net, which reads [x1 | c] (c the context, when
// there is one; for MLP, the first layer's weight rows for x1 come first).
//
// The net has d1 + contextDim inputs and P·d2 outputs (P = t.Params), P
// blocks of d2 columns: x2_j's k-th parameter is output column k·d2 + j.
// The parameters are exactly the net's, in its layout. A net that starts
// with zero output, as MLP does, makes the layer the identity for every
// transformer of this package and every context (the formulas are in
// coupling.go's file comment). Stack couplings with a permutation between:
//
//	Serial(Coupling(net, t), Reverse(), Coupling(net, t), Reverse(), …)
//
// Init returns an error for dim < 2, a negative contextDim, a nil net or a
// transformer without its functions, and passes on the net's init errors.
// The functions panic for a batch without dim columns, a context that is
// not n×contextDim, or parameters of the wrong length. DirectVJP and
// InverseVJP are both provided; the pullbacks keep private copies of what
// they need (the net's aside, see MLP) and may be called any number of
// times, from any goroutine.
func Coupling(net NetInitFunc, t Transformer) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		return newCoupling("Coupling", net, key, dim, contextDim, t, paramMajor)
	}
}

// coupling holds a coupling layer's immutable shape: its conditioner net
// maps d1 + cdim columns to t.Params·d2 and holds all np parameters.
type coupling struct {
	who         string
	net         Net
	t           Transformer
	at          elementParams // where θ_j sits in a row of the net's output
	dim, d1, d2 int
	cdim        int // context columns fed to the conditioner after u1
	np          int
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
	if net == nil {
		if what == "conditioner" {
			return nil, Net{}, fmt.Errorf("flows: %s: nil net", who)
		}
		return nil, Net{}, fmt.Errorf("flows: %s: nil %s net", who, what)
	}
	p, nt, err := net(key, in, out)
	if err != nil {
		return nil, Net{}, fmt.Errorf("flows: %s: %s: %w", who, what, err)
	}
	if nt.Apply == nil || nt.ApplyVJP == nil {
		return nil, Net{}, fmt.Errorf("flows: %s: %s net lacks Apply or ApplyVJP", who, what)
	}
	return p, nt, nil
}

// newCoupling makes a coupling layer over t with one conditioner made by
// net (d1 + contextDim → t.Params·d2, all the layer's parameters), its
// output laid out by layout(d2, t.Params).
func newCoupling(who string, net NetInitFunc, key Key, dim, contextDim int, t Transformer, layout func(d2, p int) elementParams) (Params, Bijection, error) {
	if err := checkContextDim(who, contextDim); err != nil {
		return nil, Bijection{}, err
	}
	if err := t.validate(who); err != nil {
		return nil, Bijection{}, err
	}
	d1, d2, err := couplingDims(who, dim)
	if err != nil {
		return nil, Bijection{}, err
	}
	p, nt, err := initConditioner(who, "conditioner", net, key, d1+contextDim, t.Params*d2)
	if err != nil {
		return nil, Bijection{}, err
	}
	c := &coupling{who: who, net: nt, t: t.withInverseVJP(), dim: dim, d1: d1, d2: d2, cdim: contextDim, np: len(p)}
	c.at = layout(d2, t.Params)
	return p, c.bijection(), nil
}

// bijection returns the layer's functions, all four through forward.
func (c *coupling) bijection() Bijection {
	return Bijection{
		Direct: func(p Params, x, ctx *mat.Dense) (*mat.Dense, []float64) {
			z, ld, _ := c.forward(p, x, ctx, false, false)
			return z, ld
		},
		Inverse: func(p Params, z, ctx *mat.Dense) (*mat.Dense, []float64) {
			x, ld, _ := c.forward(p, z, ctx, true, false)
			return x, ld
		},
		DirectVJP: func(p Params, x, ctx *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return c.forward(p, x, ctx, false, true)
		},
		InverseVJP: func(p Params, z, ctx *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return c.forward(p, z, ctx, true, true)
		},
	}
}

// forward runs the coupling on u (n×dim) given the context ctx, Direct when
// !inverse and Inverse when inverse, and returns the output, the log-det
// and, when vjp, the pullback (else nil).
func (c *coupling) forward(p Params, u, ctx *mat.Dense, inverse, vjp bool) (*mat.Dense, []float64, Pullback) {
	checkParams(c.who, p, c.np)
	checkWidth(c.who, u, c.dim)
	n, _ := u.Dims()
	checkContext(c.who, ctx, n, c.cdim)
	d1, d2, dim, cd := c.d1, c.d2, c.dim, c.cdim
	P := c.t.Params
	wy := P * d2   // conditioner output columns
	win := d1 + cd // conditioner input columns

	// The conditioner's input, [u1 | ctx], as a contiguous copy: the net
	// sees a plain matrix and its pullback may keep it (pooled when there
	// is no pullback).
	ur := u.RawMatrix()
	var u1 []float64
	if vjp {
		u1 = make([]float64, n*win)
	} else {
		u1Buf := getScratch(n * win)
		defer u1Buf.put()
		u1 = u1Buf.f
	}
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

	f := c.t.Forward
	if inverse {
		f = c.t.Inverse
	}
	out := make([]float64, n*dim)
	logDet := make([]float64, n)
	forRows(n, d2*transformerWork, func(r0, r1 int) {
		theta := make([]float64, P)
		for i := r0; i < r1; i++ {
			urow := ur.Data[i*ur.Stride : i*ur.Stride+dim]
			yrow := yr.Data[i*yr.Stride : i*yr.Stride+wy]
			orow := out[i*dim : (i+1)*dim]
			copy(orow[:d1], urow[:d1])
			var sum float64
			for j, v := range urow[d1:] {
				c.at.gather(theta, yrow, j)
				w, ld := f(theta, v)
				orow[d1+j] = w
				sum += ld
			}
			logDet[i] = sum
		}
	})
	if !vjp {
		return mat.NewDense(n, dim, out), logDet, nil
	}

	// What the pullback needs: u2 and v2 (private copies) and y (ours).
	kept := make([]float64, 2*n*d2)
	for i := 0; i < n; i++ {
		copy(kept[i*d2:(i+1)*d2], ur.Data[i*ur.Stride+d1:i*ur.Stride+dim])
		copy(kept[(n+i)*d2:(n+i+1)*d2], out[i*dim+d1:(i+1)*dim])
	}
	back := func(dv *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
		checkPullback(c.who, dv, dLogDet, dp, dc, n, dim, c.np, cd)
		// The transformer gives du2 and dθ per element, gathered into
		// dy = dL/d(conditioner output); the net pulls dy back to
		// [du1 | dctx]: du1 is added to the pass-through term g1, dctx
		// into dc, and dp receives the rest.
		gr := dv.RawMatrix()
		du := make([]float64, n*dim)
		dyBuf := getScratch(n * wy)
		defer dyBuf.put()
		dy := dyBuf.f
		forRows(n, d2*transformerWork, func(r0, r1 int) {
			buf := make([]float64, 2*P)
			theta, dtheta := buf[:P:P], buf[P:]
			for i := r0; i < r1; i++ {
				grow := gr.Data[i*gr.Stride : i*gr.Stride+dim]
				drow := du[i*dim : (i+1)*dim]
				copy(drow[:d1], grow[:d1])
				yrow := yr.Data[i*yr.Stride : i*yr.Stride+wy]
				dyrow := dy[i*wy : (i+1)*wy]
				u2, v2 := kept[i*d2:(i+1)*d2], kept[(n+i)*d2:(n+i+1)*d2]
				for j, g := range grow[d1:] {
					fixed := c.at.gather(theta, yrow, j)
					clear(dtheta)
					if inverse {
						drow[d1+j] = c.t.InverseVJP(theta, u2[j], v2[j], g, dLogDet[i], dtheta)
					} else {
						drow[d1+j] = c.t.ForwardVJP(theta, u2[j], v2[j], g, dLogDet[i], dtheta)
					}
					c.at.scatter(dyrow, dtheta, yrow, j, fixed)
				}
			}
		})
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
		if cd > 0 && dc != nil {
			dcr := dc.RawMatrix()
			for i := 0; i < n; i++ {
				dst := dcr.Data[i*dcr.Stride : i*dcr.Stride+cd]
				for j, v := range dr.Data[i*dr.Stride+d1 : i*dr.Stride+win] {
					dst[j] += v
				}
			}
		}
		return mat.NewDense(n, dim, du)
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
