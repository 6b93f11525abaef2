package flows

import (
	"fmt"
	"math"
)

// NeuralSplineCoupling returns a rational-quadratic neural spline coupling
// layer, RQ-NSF (C) of Durkan, Bekasov, Murray and Papamakarios, "Neural
// Spline Flows" (2019), whose knots come from a conditioner net made by net.
//
// For rows of width dim ≥ 2 it splits x = [x1 | x2] as AffineCoupling does,
// the first d1 = dim/2 columns and the last d2 = dim − d1. x1 passes through
// unchanged; the net maps it to P = cfg.NumParams() = 3K−1 unconstrained
// knot parameters per transformed column (K = cfg.Bins), and each column of
// x2 goes through its own monotonic rational-quadratic spline (see
// SplineConfig):
//
//	[θ_0 | θ_1 | … | θ_{d2−1}] = net(x1)   (net: d1 → d2·P columns)
//	z1 = x1
//	z2_j = g(x2_j; θ_j)                     (identity outside [−B, B])
//	logDet = Σ_j log g′(x2_j; θ_j)
//
// and Inverse computes x2_j = g⁻¹(z2_j; θ_j) with logDet = −Σ_j log g′(x2_j).
//
// Conditioner output layout: column j's block θ_j is contiguous, output
// columns [j·P, (j+1)·P), and within it, as for every spline of this
// package, [widths (K) | heights (K) | interior slopes (K−1)]: the widths of
// column j are output columns j·P, …, j·P+K−1, its heights the next K, its
// slopes the last K−1.
//
// The parameters are exactly the net's, in the net's layout (for MLP, the
// layers' [W | b] in order), and they are all used: the gradient of the loss
// flows through every θ_j into the net. A net that starts with zero output,
// as MLP does, gives θ = 0: uniform bins and unit slopes, so the layer
// starts as the identity (up to rounding, a few ulps of B).
//
// Only x2 changes, so stack couplings with Reverse (or another
// permutation) between them, so that both halves are transformed:
//
//	Serial(NeuralSplineCoupling(net, cfg), Reverse(), NeuralSplineCoupling(net, cfg), …)
//
// Outside [−B, B] each spline is the identity with zero log-derivative and
// no dependence on θ, so inputs of any finite size are mapped without
// overflow; put the data's range inside [−B, B] (standardize it, or choose
// cfg.Bound) for the splines to act on it. Conditioner outputs that are not
// finite, which only an overflowing net produces (huge weights on huge
// inputs), are read as +Inf → MaxFloat64, −Inf → −MaxFloat64 and NaN → 0,
// and receive zero gradient, so the outputs and log-dets stay finite for
// every finite input and every net. The layer's own gradients (to θ and to
// x2) are finite too; those the net's pullback computes are finite unless
// the net itself overflows (an MLP with unbounded activations, ReLU, on
// inputs near 1e300; Tanh nets stay finite).
//
// Init returns an error for dim < 2, a nil net or an invalid cfg (errors
// start "flows: NeuralSplineCoupling:", wrapping SplineConfig's), and
// passes on the net's init errors. DirectVJP and InverseVJP are both
// provided. The functions panic for a batch without dim columns or
// parameters of the wrong length. The pullbacks keep private copies of what
// they need (the net's pullback aside, see MLP), and may be called any
// number of times, from any goroutine.
func NeuralSplineCoupling(net NetInitFunc, cfg SplineConfig) InitFunc {
	const who = "NeuralSplineCoupling"
	return func(key Key, dim int) (Params, Bijection, error) {
		if err := cfg.validate(); err != nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %w", who, err)
		}
		return newCoupling(who, net, key, dim, splineKernel(cfg.withDefaults()))
	}
}

// splineKernel is the element-wise part of NeuralSplineCoupling for the
// spline c (after withDefaults). The conditioner's row is
// [θ_0 | … | θ_{d2−1}], P = 3K−1 entries each, and
//
//	Direct:  v2_j = g(u2_j; θ_j),   logDet =  Σ_j log g′(u2_j)
//	Inverse: v2_j = g⁻¹(u2_j; θ_j), logDet = −Σ_j log g′(v2_j)
//
// It keeps, per row, [u2 (d2) | the conditioner's row (d2·P)], from which
// back recomputes each spline's pullback with rqsForwardVJP or
// rqsInverseVJP (the scalar functions redo the cheap bin search rather than
// storing intermediate values): with g = dL/dv2_j and gl = dL/dlogDet they
// give du2_j and add dL/dθ_j into the row's block of dy.
func splineKernel(c SplineConfig) couplingKernel {
	np := c.NumParams()
	return couplingKernel{
		width: np,
		keep:  np + 1,
		forward: func(v2, u2, y, keep []float64, inverse bool) float64 {
			d2 := len(u2)
			var arr [3 * rqsStackBins]float64
			buf := arr[:]
			var sum float64
			for j, u := range u2 {
				th, _ := splineTheta(y[j*np:(j+1)*np], buf)
				var v, ld float64
				if inverse {
					v, ld = c.rqsInverse(th, u)
				} else {
					v, ld = c.rqsForward(th, u)
				}
				v2[j] = v
				sum += ld
			}
			if keep != nil {
				copy(keep[:d2], u2)
				copy(keep[d2:], y[:d2*np])
			}
			return sum
		},
		back: func(du2, dy, g2, keep []float64, dLogDet float64, inverse bool) {
			d2 := len(g2)
			u2, y := keep[:d2], keep[d2:]
			clear(dy[:d2*np]) // the rqs pullbacks add into dθ
			var arr [3 * rqsStackBins]float64
			buf := arr[:]
			for j, g := range g2 {
				raw := y[j*np : (j+1)*np]
				th, fixed := splineTheta(raw, buf)
				dth := dy[j*np : (j+1)*np]
				if inverse {
					_, _, du2[j] = c.rqsInverseVJP(th, u2[j], g, dLogDet, dth)
				} else {
					_, _, du2[j] = c.rqsForwardVJP(th, u2[j], g, dLogDet, dth)
				}
				if fixed {
					splineMaskGrad(raw, dth)
				}
			}
		},
	}
}

// splineTheta returns the spline parameters to use for the conditioner's
// output th: th itself when every entry is finite (the rqs functions accept
// any finite θ), otherwise a copy in buf (or a new slice when buf is too
// short) with +Inf → MaxFloat64, −Inf → −MaxFloat64 and NaN → 0, and
// fixed = true. Only an overflowing conditioner produces such entries.
func splineTheta(th, buf []float64) (out []float64, fixed bool) {
	for _, v := range th {
		if v-v != 0 { // ±Inf − ±Inf and NaN − NaN are NaN; finite v − v is 0
			fixed = true
			break
		}
	}
	if !fixed {
		return th, false
	}
	if len(buf) < len(th) {
		buf = make([]float64, len(th))
	}
	out = buf[:len(th)]
	splineSanitize(out, th)
	return out, true
}

// splineSanitize sets dst to src with +Inf → MaxFloat64, −Inf →
// −MaxFloat64 and NaN → 0 (dst and src may be the same slice) and reports
// whether any entry changed.
func splineSanitize(dst, src []float64) (fixed bool) {
	for i, v := range src {
		switch {
		case v-v == 0:
			dst[i] = v
		case math.IsNaN(v):
			dst[i], fixed = 0, true
		case v > 0:
			dst[i], fixed = math.MaxFloat64, true
		default:
			dst[i], fixed = -math.MaxFloat64, true
		}
	}
	return fixed
}

// splineMaskGrad zeroes the gradient entries dth[i] whose raw conditioner
// output raw[i] is not finite: such an output has no meaningful derivative,
// and passing one on would only spread the overflow through the net.
func splineMaskGrad(raw, dth []float64) {
	for i, v := range raw {
		if v-v != 0 {
			dth[i] = 0
		}
	}
}

// CondNeuralSplineCoupling is the conditional form of NeuralSplineCoupling:
// the conditioner net also reads the context c (contextDim columns), so the
// knots of every transformed column depend on x1 and c,
//
//	[θ_0 | … | θ_{d2−1}] = net([x1 | c])   (net: d1 + contextDim → d2·P columns)
//	z1 = x1,   z2_j = g(x2_j; θ_j),   logDet = Σ_j log g′(x2_j; θ_j),
//
// with NeuralSplineCoupling's split, spline, output layout, Inverse,
// bounds and handling of non-finite conditioner outputs, and both
// pullbacks, which also return dc.
//
// The parameters are exactly the net's, made with in = d1 + contextDim
// (the net's input row is [x1 | c]: for MLP, the first layer's weight rows
// for x1 come first, then those for c) and out = d2·P. A net that starts
// with zero output, as MLP does, gives θ = 0 for every context, so the
// layer starts as the identity (up to rounding, a few ulps of B) whatever
// the context.
//
// Stack it with Conditional(Reverse()) (or another permutation) between
// layers, in CondSerial:
//
//	CondSerial(CondNeuralSplineCoupling(net, cfg), Conditional(Reverse()), CondNeuralSplineCoupling(net, cfg), …)
//
// Init returns an error for dim < 2, contextDim < 1, a nil net or an
// invalid cfg (errors start "flows: CondNeuralSplineCoupling:", wrapping
// SplineConfig's), and passes on the net's init errors. The functions
// panic for a batch without dim columns, a context that is not
// n×contextDim, or parameters of the wrong length.
func CondNeuralSplineCoupling(net NetInitFunc, cfg SplineConfig) CondInitFunc {
	const who = "CondNeuralSplineCoupling"
	return func(key Key, dim, contextDim int) (Params, CondBijection, error) {
		if err := cfg.validate(); err != nil {
			return nil, CondBijection{}, fmt.Errorf("flows: %s: %w", who, err)
		}
		return newCondCoupling(who, net, key, dim, contextDim, splineKernel(cfg.withDefaults()))
	}
}
