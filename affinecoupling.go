package flows

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// affineCouplingBound is the default bound S on the log-scale of
// AffineCoupling: |s| < S per dimension per layer.
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
// AffineCouplingBound for another bound.
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
		if dim < 2 {
			return nil, Bijection{}, fmt.Errorf("flows: %s: dimension %d, want at least 2", who, dim)
		}
		d1 := dim / 2
		d2 := dim - d1
		p, nt, err := net(key, d1, 2*d2)
		if err != nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: conditioner: %w", who, err)
		}
		if nt.Apply == nil || nt.ApplyVJP == nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: conditioner net lacks Apply or ApplyVJP", who)
		}
		c := &affineCouplingLayer{who: who, net: nt, dim: dim, d1: d1, d2: d2, np: len(p), bound: bound}
		return p, Bijection{
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
		}, nil
	}
}

// affineCouplingLayer holds a coupling's immutable shape.
type affineCouplingLayer struct {
	who         string
	net         Net
	dim, d1, d2 int
	np          int
	bound       float64
}

// forward runs the coupling on u (n×dim), Direct when !inverse and Inverse
// when inverse, and returns the output, the log-det and, when vjp, the
// pullback (else nil).
//
// Both directions share one shape: with [raw | t] = net(u1), th = tanh(raw/S)
// and s = S·th,
//
//	Direct:  v2 = u2·e + t,    e = exp(s),   logDet =  Σ s
//	Inverse: v2 = (u2 − t)·e,  e = exp(−s),  logDet = −Σ s
//
// The pullback keeps th, e and w = u2·e (Direct) or v2 (Inverse), the
// u2-dependent factor of ∂v2/∂s, in n×d2 buffers of its own, so it never
// depends on the caller's matrices after forward returns.
func (c *affineCouplingLayer) forward(p Params, u *mat.Dense, inverse, vjp bool) (*mat.Dense, []float64, Pullback) {
	checkParams(c.who, p, c.np)
	checkWidth(c.who, u, c.dim)
	n, _ := u.Dims()
	d1, d2, dim := c.d1, c.d2, c.dim

	// The conditioner's input, u1, as a contiguous copy: the net sees a
	// plain matrix and its pullback may keep it.
	ur := u.RawMatrix()
	u1 := make([]float64, n*d1)
	for i := 0; i < n; i++ {
		copy(u1[i*d1:(i+1)*d1], ur.Data[i*ur.Stride:i*ur.Stride+d1])
	}
	u1m := mat.NewDense(n, d1, u1)
	var y *mat.Dense
	var netBack NetPullback
	if vjp {
		y, netBack = c.net.ApplyVJP(p, u1m)
	} else {
		y = c.net.Apply(p, u1m)
	}
	if r, cols := y.Dims(); r != n || cols != 2*d2 {
		panic(fmt.Sprintf("flows: %s: conditioner returned %d×%d, want %d×%d", c.who, r, cols, n, 2*d2))
	}
	yr := y.RawMatrix()

	out := make([]float64, n*dim)
	logDet := make([]float64, n)
	var th, e, w []float64
	if vjp {
		buf := make([]float64, 3*n*d2)
		th, e, w = buf[:n*d2], buf[n*d2:2*n*d2], buf[2*n*d2:]
	}
	S := c.bound
	sign := 1.0
	if inverse {
		sign = -1
	}
	for i := 0; i < n; i++ {
		urow := ur.Data[i*ur.Stride : i*ur.Stride+dim]
		yrow := yr.Data[i*yr.Stride : i*yr.Stride+2*d2]
		orow := out[i*dim : (i+1)*dim]
		copy(orow[:d1], urow[:d1])
		var sum float64
		for j := 0; j < d2; j++ {
			tj := math.Tanh(yrow[j] / S)
			s := S * tj
			ej := math.Exp(sign * s)
			t := yrow[d2+j]
			// wj is ∓∂v2/∂s: u2·e for Direct, v2 itself for Inverse.
			var v, wj float64
			if inverse {
				v = (urow[d1+j] - t) * ej
				wj = v
			} else {
				wj = urow[d1+j] * ej
				v = wj + t
			}
			orow[d1+j] = v
			sum += s
			if vjp {
				k := i*d2 + j
				th[k], e[k], w[k] = tj, ej, wj
			}
		}
		logDet[i] = sign * sum
	}
	if !vjp {
		return mat.NewDense(n, dim, out), logDet, nil
	}

	back := func(dv *mat.Dense, dLogDet []float64, dp Params) *mat.Dense {
		checkPullback(c.who, dv, dLogDet, dp, n, dim, c.np)
		// Writing g = dL/dv and σ = ±1 for Direct/Inverse, with v2 as above:
		//
		//   Direct:  ∂v2/∂u2 = e,  ∂v2/∂t = 1,   ∂v2/∂s = u2·e = w
		//   Inverse: ∂v2/∂u2 = e,  ∂v2/∂t = −e,  ∂v2/∂s = −(u2 − t)·e = −w
		//   ∂logDet/∂s = σ,   ∂s/∂raw = 1 − th²,
		//
		// so du2 = g2·e, dt = g2 (Direct) or −g2·e (Inverse),
		// ds = σ·(g2·w + dLogDet), draw = ds·(1 − th²); the net pulls
		// dy = [draw | dt] back to du1 (added to g1, the pass-through
		// term) and to dp.
		gr := dv.RawMatrix()
		du := make([]float64, n*dim)
		dy := make([]float64, n*2*d2)
		for i := 0; i < n; i++ {
			grow := gr.Data[i*gr.Stride : i*gr.Stride+dim]
			drow := du[i*dim : (i+1)*dim]
			dyrow := dy[i*2*d2 : (i+1)*2*d2]
			copy(drow[:d1], grow[:d1])
			for j := 0; j < d2; j++ {
				k := i*d2 + j
				g := grow[d1+j]
				drow[d1+j] = g * e[k]
				ds := sign * (g*w[k] + dLogDet[i])
				dyrow[j] = ds * (1 - th[k]*th[k])
				if inverse {
					dyrow[d2+j] = -g * e[k]
				} else {
					dyrow[d2+j] = g
				}
			}
		}
		du1 := netBack(mat.NewDense(n, 2*d2, dy), dp)
		if r, cols := du1.Dims(); r != n || cols != d1 {
			panic(fmt.Sprintf("flows: %s: conditioner pullback returned %d×%d, want %d×%d", c.who, r, cols, n, d1))
		}
		dr := du1.RawMatrix()
		for i := 0; i < n; i++ {
			drow := du[i*dim : i*dim+d1]
			for j, v := range dr.Data[i*dr.Stride : i*dr.Stride+d1] {
				drow[j] += v
			}
		}
		return mat.NewDense(n, dim, du)
	}
	return mat.NewDense(n, dim, out), logDet, back
}
