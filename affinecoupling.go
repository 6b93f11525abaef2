package flows

// RealNVP's affine coupling (Dinh, Sohl-Dickstein and Bengio, "Density
// estimation using Real NVP", 2017): the Affine transformer and its presets
// over Coupling. With x = [x1 | x2] split as in Coupling (so an odd dim
// transforms one more column than it keeps) and c the context,
//
//	[raw | t] = net([x1 | c])      (net: d1 + contextDim → 2·d2 columns)
//	s  = S·tanh(raw/S)             (S = 3, or AffineCouplingBound's bound)
//	z1 = x1
//	z2 = x2·exp(s) + t
//	logDet = Σ_j s_j
//
// and Inverse computes x2 = (z2 − t)·exp(−s) with logDet = −Σ_j s_j. The
// bound keeps every log-scale in (−S, S) per dimension per layer (the scale
// within (e^−S, e^S)), so a training step cannot blow up the scale, while
// the slope 1 of S·tanh(·/S) at 0 leaves small outputs as in the unbounded
// form. In floating point a saturated tanh gives |s| = S exactly, never
// more. AffineCouplingSplit's two nets are seen by Coupling as one
// conditioner with output [scale net's | shift net's] (concatNets).

import (
	"fmt"
	"math"
)

// affineCouplingBound is the default bound S on the log-scale of
// AffineCoupling and AffineCouplingSplit: |s| < S per dimension per layer.
const affineCouplingBound = 3

// AffineCoupling returns a RealNVP affine coupling layer (Dinh et al., 2017):
// Coupling over Affine(3), z2 = x2·exp(s) + t with s = 3·tanh(raw/3), whose
// raw log-scale and shift t come from a conditioner net made by net. The
// bound keeps every log-scale in (−3, 3) per dimension per layer, so a
// training step cannot blow up the scale (the formulas are in
// affinecoupling.go's file comment). Use AffineCouplingBound for another
// bound, AffineCouplingSplit for separate scale and shift nets, and
// AdditiveCoupling for the volume-preserving shift-only form.
//
// The net is made with in = d1 + contextDim and out = 2·d2 columns
// (d1 = dim/2, d2 = dim − d1), its output read as [raw scale (d2) |
// shift t (d2)]. The parameters are exactly the net's, in the net's layout
// (for MLP, the layers' [W | b] in order). A net that starts with zero
// output, as MLP does, makes the layer the identity at init.
//
// The split, the context, stacking with Reverse, init errors, panics and
// pullbacks are as for Coupling, with errors starting
// "flows: AffineCoupling:".
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
//	raw = scale([x1 | c]),  t = shift([x1 | c])   (each net: d1 + contextDim → d2 columns)
//	s   = S·tanh(raw/S)                           (S = 3)
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
// functions panic for a batch without dim columns, a context that is not
// n×contextDim, or parameters of the wrong length.
func AffineCouplingSplit(scale, shift NetInitFunc) InitFunc {
	const who = "AffineCouplingSplit"
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		if err := checkContextDim(who, contextDim); err != nil {
			return nil, Bijection{}, err
		}
		d1, d2, err := couplingDims(who, dim)
		if err != nil {
			return nil, Bijection{}, err
		}
		keys := key.Split(2)
		ps, ns, err := initConditioner(who, "scale conditioner", scale, keys[0], d1+contextDim, d2)
		if err != nil {
			return nil, Bijection{}, err
		}
		pt, nt, err := initConditioner(who, "shift conditioner", shift, keys[1], d1+contextDim, d2)
		if err != nil {
			return nil, Bijection{}, err
		}
		p := make(Params, 0, len(ps)+len(pt))
		p = append(append(p, ps...), pt...)
		net := concatNets(who, "scale conditioner", "shift conditioner", ns, nt, len(ps), d2, d2)
		c, err := couplingShape(who, dim, contextDim, func(int) Transformer { return Affine(affineCouplingBound) }, nil)
		if err != nil {
			return nil, Bijection{}, err
		}
		c.net, c.np = net, len(p)
		return p, layerPass(c.forward).bijection(), nil
	}
}

// affineCoupling builds AffineCoupling and AffineCouplingBound; who names
// the layer in errors and panics.
func affineCoupling(who string, net NetInitFunc, bound float64) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		if err := checkAffineBound(who, bound); err != nil {
			return nil, Bijection{}, err
		}
		return newCoupling(who, net, key, dim, contextDim, Affine(bound))
	}
}

// checkAffineBound returns an init error unless bound is positive and
// finite.
func checkAffineBound(who string, bound float64) error {
	if !(bound > 0) || math.IsInf(bound, 1) {
		return fmt.Errorf("flows: %s: log-scale bound %v, want positive and finite", who, bound)
	}
	return nil
}

// Affine returns the affine transformer with a bounded log-scale, the map of
// RealNVP's coupling layers:
//
//	θ = [raw, t],   s = S·tanh(raw/S),   y = x·exp(s) + t,   log f′ = s
//
// with S = bound, so every log-scale stays in (−S, S) per element per
// layer (the scale within (e^−S, e^S)): a training step cannot blow up the
// scale, while the slope 1 of S·tanh(·/S) at 0 leaves small outputs as in
// the unbounded form. In floating point a saturated tanh gives |s| = S
// exactly, never more. θ = 0 is the identity. Its inverse is
// x = (y − t)·exp(−s). A bound that is not positive and finite gives a
// transformer whose layers fail to initialise. In a coupling layer its
// parameters come in two blocks, [raw (d2) | t (d2)] (see Coupling).
func Affine(bound float64) Transformer {
	S := bound
	if !(S > 0) || math.IsInf(S, 1) {
		return Transformer{Name: "Affine", err: fmt.Errorf("transformer Affine: log-scale bound %v, want positive and finite", bound)}
	}
	return Transformer{
		Name:        "Affine",
		Params:      2,
		blocks:      true,
		affineBound: S,
		Forward: func(th []float64, x float64) (float64, float64) {
			s := S * math.Tanh(th[0]/S)
			return x*math.Exp(s) + th[1], s
		},
		Inverse: func(th []float64, y float64) (float64, float64) {
			s := S * math.Tanh(th[0]/S)
			return (y - th[1]) * math.Exp(-s), -s
		},
		// With th = tanh(raw/S), s = S·th, e = exp(s):
		//   ∂y/∂x = e, ∂y/∂t = 1, ∂y/∂s = x·e, ∂log f′/∂s = 1,
		//   ∂s/∂raw = 1 − th²,
		// so dx = gy·e, dt = gy, ds = gy·(x·e) + gl, draw = ds·(1 − th²).
		ForwardVJP: func(th []float64, x, _, gy, gl float64, dth []float64) float64 {
			h := math.Tanh(th[0] / S)
			e := math.Exp(S * h)
			ds := gy*(x*e) + gl
			dth[0] += ds * (1 - h*h)
			dth[1] += gy
			return gy * e
		},
		// x = (y − t)·e with e = exp(−s), the inverse log-det −s:
		//   ∂x/∂y = e, ∂x/∂t = −e, ∂x/∂s = −x,
		// so dy = gx·e, dt = −gx·e, ds = −(gx·x + gl).
		InverseVJP: func(th []float64, _, x, gx, gl float64, dth []float64) float64 {
			h := math.Tanh(th[0] / S)
			e := math.Exp(-S * h)
			ds := -(gx*x + gl)
			dth[0] += ds * (1 - h*h)
			dth[1] += -gx * e
			return gx * e
		},
	}
}
