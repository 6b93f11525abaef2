package flows

// The coupling layer, written once over a transformer per transformed
// column.
//
// A row u (n×dim) splits into [u1 | u2], the first d1 = dim/2 columns and
// the last d2 = dim − d1. The conditioner net reads e = [embed(u1) | c]
// (c the context when there is one; embed is the identity, or, for the
// columns CircularCoupling marks as angles, (cos u, sin u)) and emits the
// parameters of each of the d2 columns of u2; column j then goes through
// its transformer T_j (P_j parameters), forward for Direct and inverse for
// Inverse, and u1 passes through:
//
//	y  = net(e)
//	v2_j = T_j(u2_j; θ_j)  or  T_j⁻¹(u2_j; θ_j),   logDet = Σ_j log|∂v2_j/∂u2_j|
//
// So an odd dim transforms one more column than it keeps.
//
// # The layout of the conditioner's output
//
// There is one layout, element-major: θ_j is contiguous, θ_j[k] =
// y[o_j + k] with o_j = P_0 + … + P_{j−1} (j·P when every column has the
// same transformer). It is the only layout that serves columns with
// different transformers (CircularCoupling), and the one the pinned
// nsf-coupling, LogisticMixtureCoupling and CircularCoupling parameters
// were trained in. The one exception is a transformer that declares its
// parameters as blocks (Affine, whose raw log-scale and shift RealNVP and
// AffineCouplingSplit make as two separate nets, and whose layout the
// pinned realnvp and glow model files hold): when every column has that
// same transformer, θ_j[k] = y[k·d2 + j], P blocks of d2 columns. Both are
// one offset o_j and one stride per layer (elementParams), and the layout
// depends only on the transformer: Coupling(net, Spline(cfg)) is
// NeuralSplineCoupling(net, cfg), Coupling(net, Affine(b)) is
// AffineCouplingBound(net, b), parameter for parameter.
//
// Non-finite conditioner outputs are replaced before the transformer sees
// them and get no gradient (see transformer.go's file comment).
//
// # The pullback
//
// The pullback runs each transformer's pullback per element, which gives
// du2_j and dL/dθ_j, scatters the latter into dL/dy, pulls that back
// through the net to [de1 | dc], maps de1 back through the embedding
// (an angle's d/du of (cos u, sin u)) and adds it to the pass-through
// gradient. It keeps private copies of u and v2 and the net's output
// (which is the layer's own), so it never depends on the caller's matrices
// after the pass returns.

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Coupling returns a coupling layer (Dinh et al., 2015, 2017; Durkan et
// al., 2019): a row of width dim ≥ 2 splits into [x1 | x2], the first
// d1 = dim/2 columns and the last d2 = dim − d1; x1 passes through, and
// each column of x2 goes through the transformer t with parameters from a
// conditioner net made by net, which reads [x1 | c] (c the context, when
// there is one; for MLP, the first layer's weight rows for x1 come first).
//
// The net has d1 + contextDim inputs and P·d2 outputs (P = t.Params),
// element-major: x2_j's parameters are the contiguous output columns
// [j·P, (j+1)·P), in t's order. Affine alone lays them out in P blocks of
// d2 columns, x2_j's k-th parameter at output column k·d2 + j (RealNVP's
// [raw scale | shift]; see coupling.go's file comment). So Coupling over
// Spline, Affine or LogisticMixture is NeuralSplineCoupling,
// AffineCouplingBound or LogisticMixtureCoupling, parameter for
// parameter. The parameters are exactly the net's, in its layout. A net
// that starts with zero output, as MLP does, makes the layer the identity
// for every transformer of this package and every context. Stack
// couplings with a permutation between:
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
		return newCoupling("Coupling", net, key, dim, contextDim, t)
	}
}

// coupling holds a coupling layer's immutable shape: its conditioner net
// maps win columns ([embed(u1) | c]) to wy and holds all np parameters.
type coupling struct {
	who         string
	net         Net
	dim, d1, d2 int
	cdim        int // context columns fed to the conditioner after embed(u1)
	win, wy     int // the conditioner's input and output columns
	np          int
	ts          []Transformer // by transformed column
	off         []int         // θ_j[k] sits at off[j] + k·at.param in a row of y
	at          elementParams // {param: the stride between an element's parameters}
	maxP        int           // the most parameters of one column
	angle       []bool        // by column of u1: fed as (cos, sin); nil: none is
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

// newCoupling makes a coupling layer with every transformed column going
// through t and one conditioner made by net holding all its parameters.
func newCoupling(who string, net NetInitFunc, key Key, dim, contextDim int, t Transformer) (Params, Bijection, error) {
	if err := checkContextDim(who, contextDim); err != nil {
		return nil, Bijection{}, err
	}
	if err := t.validate(who); err != nil {
		return nil, Bijection{}, err
	}
	c, err := couplingShape(who, dim, contextDim, func(int) Transformer { return t }, nil)
	if err != nil {
		return nil, Bijection{}, err
	}
	return c.withNet(net, key)
}

// withNet makes the layer's conditioner with net (win → wy columns) and
// returns the layer.
func (c *coupling) withNet(net NetInitFunc, key Key) (Params, Bijection, error) {
	p, nt, err := initConditioner(c.who, "conditioner", net, key, c.win, c.wy)
	if err != nil {
		return nil, Bijection{}, err
	}
	c.net, c.np = nt, len(p)
	b := layerPass(c.forward).bijection()
	if nt.prepare != nil {
		b.Prepare = c.prepare // couplingprep.go
	}
	return p, b, nil
}

// couplingShape returns the shape of a coupling layer on dim columns whose
// transformed column j (counting from 0 among the last d2) goes through
// tOf(j), and whose conditioning columns marked in angle (by column of the
// row; nil for none) the conditioner reads as (cos, sin). The net is left
// for the caller.
func couplingShape(who string, dim, contextDim int, tOf func(j int) Transformer, angle []bool) (*coupling, error) {
	if err := checkContextDim(who, contextDim); err != nil {
		return nil, err
	}
	d1, d2, err := couplingDims(who, dim)
	if err != nil {
		return nil, err
	}
	c := &coupling{who: who, dim: dim, d1: d1, d2: d2, cdim: contextDim, win: d1 + contextDim}
	for j := range d1 {
		if angle != nil && angle[j] {
			c.win++
			c.angle = angle[:d1:d1]
		}
	}
	blocks := true
	for j := range d2 {
		t := tOf(j).withInverseVJP()
		c.ts = append(c.ts, t)
		c.off = append(c.off, c.wy)
		c.wy += t.Params
		c.maxP = max(c.maxP, t.Params)
		blocks = blocks && t.blocks && t.Params == c.ts[0].Params
	}
	c.at = elementParams{param: 1}
	if blocks {
		for j := range d2 {
			c.off[j] = j
		}
		c.at.param = d2
	}
	return c, nil
}

// forward runs the coupling on u (n×dim) given the context ctx, Direct when
// !inverse and Inverse when inverse, and returns the output, the log-det
// and, when vjp, the pullback (else nil).
func (c *coupling) forward(p Params, u, ctx *mat.Dense, inverse, vjp bool) (*mat.Dense, []float64, Pullback) {
	checkParams(c.who, p, c.np)
	checkWidth(c.who, u, c.dim)
	n, _ := u.Dims()
	checkContext(c.who, ctx, n, c.cdim)

	// The conditioner's input as a contiguous matrix: the net sees a plain
	// matrix and its pullback may keep it (pooled when there is no
	// pullback).
	var e []float64
	if vjp {
		e = make([]float64, n*c.win)
	} else {
		eBuf := getScratch(n * c.win)
		defer eBuf.put()
		e = eBuf.f
	}
	c.embed(e, u, ctx)
	em := mat.NewDense(n, c.win, e)
	var y *mat.Dense
	var netBack NetPullback
	if vjp {
		y, netBack = c.net.ApplyVJP(p, em)
	} else {
		y = c.net.Apply(p, em)
	}
	checkNetOut(c.who, "conditioner returned", y, n, c.wy)
	out, logDet := c.transform(u, y, inverse)
	if !vjp {
		return mat.NewDense(n, c.dim, out), logDet, nil
	}
	// What the pullback needs: the rows read (u2, or all of u when angles
	// are embedded) and v2, private copies, and y (ours).
	ur := u.RawMatrix()
	kw, k0 := c.keptWidth()
	kept := make([]float64, n*(kw+c.d2))
	in, v2 := kept[:n*kw], kept[n*kw:]
	for i := range n {
		copy(in[i*kw:(i+1)*kw], ur.Data[i*ur.Stride+k0:i*ur.Stride+c.dim])
		copy(v2[i*c.d2:(i+1)*c.d2], out[i*c.dim+c.d1:(i+1)*c.dim])
	}
	return mat.NewDense(n, c.dim, out), logDet, c.pullback(y, netBack, in, v2, inverse)
}

// keptWidth returns the width kw of the rows a pullback keeps of its input
// and the column k0 they start at: u2 (d2 from d1), or all of u (dim from 0)
// when the conditioner reads angles through (cos, sin).
func (c *coupling) keptWidth() (kw, k0 int) {
	if c.angle == nil {
		return c.d2, c.d1
	}
	return c.dim, 0
}

// embed writes the conditioner's input rows [embed(u1) | ctx] into e
// (n×win).
func (c *coupling) embed(e []float64, u, ctx *mat.Dense) {
	ur := u.RawMatrix()
	for i := range ur.Rows {
		row := e[i*c.win : (i+1)*c.win]
		u1 := ur.Data[i*ur.Stride : i*ur.Stride+c.d1]
		k := c.d1
		if c.angle == nil {
			copy(row, u1)
		} else {
			k = 0
			for j, v := range u1 {
				if c.angle[j] {
					row[k], row[k+1] = math.Cos(v), math.Sin(v)
					k += 2
				} else {
					row[k] = v
					k++
				}
			}
		}
		if c.cdim > 0 {
			cr := ctx.RawMatrix()
			copy(row[k:], cr.Data[i*cr.Stride:i*cr.Stride+c.cdim])
		}
	}
}

// transform maps u2 of every row of u through the transformers with the
// parameters in y (inverse: their inverses) and returns the rows
// [u1 | v2] and the log-dets.
func (c *coupling) transform(u, y *mat.Dense, inverse bool) ([]float64, []float64) {
	ur, yr := u.RawMatrix(), y.RawMatrix()
	n := ur.Rows
	out, logDet := make([]float64, n*c.dim), make([]float64, n)
	forRows(n, c.d2*transformerWork, func(r0, r1 int) {
		c.transformRows(ur.Data, ur.Stride, yr.Data, yr.Stride, out, logDet, r0, r1, inverse)
	})
	return out, logDet
}

// transformRows is transform's work on rows [r0, r1): u's rows at stride
// us, y's at stride ys, out's (n×dim) and logDet's written.
func (c *coupling) transformRows(u []float64, us int, y []float64, ys int, out, logDet []float64, r0, r1 int, inverse bool) {
	if S := c.affineBound(); S > 0 {
		c.affineRows(S, u, us, y, ys, out, logDet, r0, r1, inverse)
		return
	}
	d1, dim := c.d1, c.dim
	ts, off, at, wy := c.ts, c.off, c.at, c.wy
	var small [64]float64
	buf := small[:]
	if c.maxP > len(small) {
		buf = make([]float64, c.maxP)
	}
	for i := r0; i < r1; i++ {
		urow := u[i*us : i*us+dim]
		yrow := y[i*ys : i*ys+wy]
		orow := out[i*dim : (i+1)*dim]
		copy(orow[:d1], urow[:d1])
		var sum float64
		for j, v := range urow[d1:] {
			t := &ts[j]
			theta := buf[:t.Params:t.Params]
			at.gatherAt(theta, yrow, off[j])
			f := t.Forward
			if inverse {
				f = t.Inverse
			}
			w, ld := f(theta, v)
			orow[d1+j] = w
			sum += ld
		}
		logDet[i] = sum
	}
}

// pullback returns the pullback of a pass that read the rows in (their
// last kw columns, see keptWidth) and wrote v2 (n×d2), the conditioner
// having returned y with pullback netBack.
func (c *coupling) pullback(y *mat.Dense, netBack NetPullback, in, v2 []float64, inverse bool) Pullback {
	yr := y.RawMatrix()
	n, d1, d2, dim, wy := yr.Rows, c.d1, c.d2, c.dim, c.wy
	kw, _ := c.keptWidth()
	ts, off, at, maxP := c.ts, c.off, c.at, c.maxP
	S := c.affineBound()
	return func(dv *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
		checkPullback(c.who, dv, dLogDet, dp, dc, n, dim, c.np, c.cdim)
		// The transformer gives du2 and dθ per element, scattered into
		// dy = dL/d(conditioner output); the net pulls dy back to
		// [de1 | dctx] (see conditionerBack).
		gr := dv.RawMatrix()
		du := make([]float64, n*dim)
		dyBuf := getScratch(n * wy)
		defer dyBuf.put()
		dy := dyBuf.f
		forRows(n, d2*transformerWork, func(r0, r1 int) {
			if S > 0 {
				c.affineBackRows(S, yr.Data, yr.Stride, gr.Data, gr.Stride, dLogDet, du, dy, in, kw, v2, r0, r1, inverse)
				return
			}
			buf := make([]float64, 2*maxP)
			for i := r0; i < r1; i++ {
				grow := gr.Data[i*gr.Stride : i*gr.Stride+dim]
				drow := du[i*dim : (i+1)*dim]
				copy(drow[:d1], grow[:d1])
				yrow := yr.Data[i*yr.Stride : i*yr.Stride+wy]
				dyrow := dy[i*wy : (i+1)*wy]
				u2, w2 := in[(i+1)*kw-d2:(i+1)*kw], v2[i*d2:(i+1)*d2]
				for j, g := range grow[d1:] {
					t := &ts[j]
					theta, dtheta := buf[:t.Params:t.Params], buf[maxP:maxP+t.Params]
					fixed := at.gatherAt(theta, yrow, off[j])
					clear(dtheta)
					if inverse {
						drow[d1+j] = t.InverseVJP(theta, u2[j], w2[j], g, dLogDet[i], dtheta)
					} else {
						drow[d1+j] = t.ForwardVJP(theta, u2[j], w2[j], g, dLogDet[i], dtheta)
					}
					at.scatterAt(dyrow, dtheta, yrow, off[j], fixed)
				}
			}
		})
		de := netBack(mat.NewDense(n, wy, dy), dp)
		checkNetOut(c.who, "conditioner pullback returned", de, n, c.win)
		c.conditionerBack(du, de, in, dc)
		return mat.NewDense(n, dim, du)
	}
}

// conditionerBack adds the conditioner's input gradient de (n×win) to the
// rows' gradient du through the embedding of the rows in (all of u when
// angles are embedded), and its context part into dc (when not nil).
func (c *coupling) conditionerBack(du []float64, de *mat.Dense, in []float64, dc *mat.Dense) {
	dr := de.RawMatrix()
	for i := range dr.Rows {
		row := dr.Data[i*dr.Stride : i*dr.Stride+c.win]
		drow := du[i*c.dim : i*c.dim+c.d1]
		k := c.d1
		if c.angle == nil {
			for j, v := range row[:c.d1] {
				drow[j] += v
			}
		} else {
			k = 0
			for j, v := range in[i*c.dim : i*c.dim+c.d1] {
				if c.angle[j] {
					drow[j] += -row[k]*math.Sin(v) + row[k+1]*math.Cos(v)
					k += 2
				} else {
					drow[j] += row[k]
					k++
				}
			}
		}
		if c.cdim > 0 && dc != nil {
			dcr := dc.RawMatrix()
			dst := dcr.Data[i*dcr.Stride : i*dcr.Stride+c.cdim]
			for j, v := range row[k:] {
				dst[j] += v
			}
		}
	}
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
