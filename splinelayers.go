package flows

// The rational-quadratic spline as a transformer, and the neural spline
// layers (RQ-NSF C and AR, Durkan, Bekasov, Murray and Papamakarios,
// "Neural Spline Flows", 2019) as presets of Coupling and
// MaskedAutoregressive. The spline itself, its inverse and its pullbacks
// are in spline.go.
//
// # Coupling, RQ-NSF (C)
//
// For rows of width dim ≥ 2, x = [x1 | x2] splits as in Coupling, the first
// d1 = dim/2 columns and the last d2 = dim − d1. x1 passes through
// unchanged; the net maps it (with the context c, when there is one) to
// P = cfg.NumParams() = 3K−1 unconstrained knot parameters per transformed
// column (K = cfg.Bins), and each column of x2 goes through its own
// monotonic rational-quadratic spline g (see SplineConfig):
//
//	[θ_0 | θ_1 | … | θ_{d2−1}] = net([x1 | c])   (net: d1 + contextDim → d2·P columns)
//	z1 = x1
//	z2_j = g(x2_j; θ_j)                           (identity outside [−B, B])
//	logDet = Σ_j log g′(x2_j; θ_j)
//
// and Inverse computes x2_j = g⁻¹(z2_j; θ_j) with logDet = −Σ_j log g′(x2_j).
// Within θ_j the widths of column j are output columns j·P, …, j·P+K−1, its
// heights the next K, its slopes the last K−1. Every parameter is used: the
// gradient of the loss flows through every θ_j into the net.
//
// # Autoregressive, RQ-NSF (AR)
//
// The MADE is made with in = dim and out = P·dim columns, and input i's
// parameters θ_i are its outputs for i, which depend only on the inputs
// before i in the ordering:
//
//	θ_i[k] = MADE(x)[k·dim + i],   k = 0, …, P−1
//	z_i    = g(x_i; θ_i)           (identity outside [−B, B])
//	logDet = Σ_i log g′(x_i; θ_i)
//
// MADE output column k·dim + i is the width k of input i for k < K, its
// height k−K for K ≤ k < 2K, and its slope k−2K for 2K ≤ k < P. Direct,
// the density direction, is one parallel pass of the MADE. Inverse, the
// sampling direction, computes x_i = g⁻¹(z_i; θ_i), with
// logDet = −Σ_i log g′(x_i; θ_i), one position of the ordering at a time,
// dim sequential steps, since θ_i needs the inputs before i. As in MAF,
// each step computes only what has just become computable (the hidden units
// whose degree is the position just filled, and the P outputs of the next
// input), so the dim steps together cost about one MADE pass restricted to
// its unmasked weights, and the buffers are allocated once per call. The
// parameters' layout is MADE's, [W_0 (dim×h_0) | b_0 | … |
// W_L (h_{L−1}×P·dim) | b_L], masked entries unused and with zero gradient;
// the MADE's last layer is zero at init, so θ = 0. With dim 1 the one
// spline's knots are free parameters (the MADE's last biases).
//
// # Extreme inputs
//
// Outside [−B, B] each spline is the identity with zero log-derivative and
// no dependence on θ, so inputs of any finite size are mapped without
// overflow. Conditioner (or MADE) outputs that are not finite, which only
// an overflowing net produces (huge weights on huge inputs), are read as
// +Inf → MaxFloat64, −Inf → −MaxFloat64 and NaN → 0, and receive zero
// gradient, so the outputs and log-dets stay finite for every finite input
// and every net. The layer's own gradients (to θ and to x2) are finite too;
// those the net's pullback computes are finite unless the net itself
// overflows (an MLP with unbounded activations, ReLU, on inputs near
// 1e300; Tanh nets stay finite). A MADE that overflows the same way gives
// NaN weight gradients in its own pullback, and, since its dense pass
// multiplies masked zeros by the overflowed activations (0·Inf = NaN)
// where the incremental pass skips them, Direct and Inverse then no longer
// undo each other exactly on such rows.

import "slices"

// Spline returns the monotone rational-quadratic spline transformer of
// Durkan, Bekasov, Murray and Papamakarios, "Neural Spline Flows" (2019),
// with K = cfg.Bins bins on [−B, B] (B = cfg.Bound) and linear tails (see
// SplineConfig): Params = cfg.NumParams() = 3K−1 per element, laid out
// [widths (K) | heights (K) | interior slopes (K−1)]. θ = 0 gives uniform
// bins and unit slopes, the identity (up to rounding, a few ulps of B);
// outside [−B, B] it is the identity for every θ. An invalid cfg gives a
// transformer whose layers fail to initialise with cfg's error.
func Spline(cfg SplineConfig) Transformer {
	if err := cfg.validate(); err != nil {
		return Transformer{Name: "Spline", err: err}
	}
	c := cfg.withDefaults()
	return Transformer{
		Name:    "Spline",
		Params:  c.NumParams(),
		Forward: c.rqsForward,
		Inverse: c.rqsInverse,
		ForwardVJP: func(th []float64, x, _, gy, gl float64, dth []float64) float64 {
			_, _, dx := c.rqsForwardVJP(th, x, gy, gl, dth)
			return dx
		},
		InverseVJP: func(th []float64, y, _, gx, gl float64, dth []float64) float64 {
			_, _, dy := c.rqsInverseVJP(th, y, gx, gl, dth)
			return dy
		},
	}
}

// NeuralSplineCoupling returns a rational-quadratic neural spline coupling
// layer, RQ-NSF (C) of Durkan et al. (2019): Coupling over Spline(cfg), each
// column of x2 going through its own monotonic rational-quadratic spline
// with K = cfg.Bins bins on [−B, B] (B = cfg.Bound; the identity outside),
// whose knots come from a conditioner net made by net.
//
// Conditioner output layout, with P = cfg.NumParams() = 3K−1: column j's
// block θ_j is contiguous, output columns [j·P, (j+1)·P), and within it
// [widths (K) | heights (K) | interior slopes (K−1)]. The parameters are
// exactly the net's, in its layout, and all are used. A net that starts
// with zero output, as MLP does, gives uniform bins and unit slopes: the
// identity (up to a few ulps of B). Put the data's range inside [−B, B]
// (standardize it, or choose cfg.Bound) for the splines to act on it.
// Outputs, log-dets and the layer's own gradients are finite for every
// finite input and every net (the formulas and numerics are in
// splinelayers.go's file comment).
//
// The split, the context, stacking with Reverse, init errors (an invalid
// cfg wraps SplineConfig's error), panics and pullbacks are as for
// Coupling, with errors starting "flows: NeuralSplineCoupling:".
func NeuralSplineCoupling(net NetInitFunc, cfg SplineConfig) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		return newCoupling("NeuralSplineCoupling", net, key, dim, contextDim, Spline(cfg))
	}
}

// NeuralSplineAutoregressive returns a rational-quadratic neural spline
// autoregressive layer, RQ-NSF (AR) of Durkan et al. (2019):
// MaskedAutoregressive over Spline(cfg), each input going through its own
// monotonic rational-quadratic spline with K = cfg.Bins bins on [−B, B]
// (B = cfg.Bound; the identity outside), whose knots a MADE made by made
// computes from the inputs before it in the ordering (see MADE).
//
// With P = cfg.NumParams() = 3K−1, the MADE is made with in = dim and
// out = P·dim, and input i's θ_i[k] is MADE output column k·dim + i, laid
// out [widths (K) | heights (K) | interior slopes (K−1)]. The parameters
// are exactly MADE(made)(key, dim, P·dim)'s, the same values for the same
// key, in MADE's layout, then the context weights of MaskedAutoregressive.
// The layer starts as the identity (uniform bins, unit slopes; up to a few
// ulps of B); dim 1 gives an unconditional elementwise spline. Outputs and
// log-dets are finite for every finite input (the formulas, costs and
// numerics are in splinelayers.go's file comment).
//
// The directions' costs, stacking, init errors (an invalid cfg wraps
// SplineConfig's error), panics and pullbacks are as for
// MaskedAutoregressive, with errors starting
// "flows: NeuralSplineAutoregressive:".
func NeuralSplineAutoregressive(made MADEConfig, cfg SplineConfig) InitFunc {
	made.Hidden = slices.Clone(made.Hidden) // the caller may reuse its slice
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		return newAutoregressive("NeuralSplineAutoregressive", made, key, dim, contextDim, Spline(cfg), nil)
	}
}
