package flows

// The rational-quadratic spline as a transformer, and the neural spline
// layers (RQ-NSF C and AR) as presets of Coupling and MaskedAutoregressive.
// The spline itself, its inverse and its pullbacks are in spline.go.

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
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		return newCoupling("NeuralSplineCoupling", net, key, dim, contextDim, Spline(cfg), elementMajor)
	}
}

// NeuralSplineAutoregressive returns a rational-quadratic neural spline
// autoregressive layer, RQ-NSF (AR) of Durkan, Bekasov, Murray and
// Papamakarios, "Neural Spline Flows" (2019): each input goes through its
// own monotonic rational-quadratic spline (see SplineConfig) whose knots a
// MADE (see MADE for made, the masks and the ordering) computes from the
// inputs before it in the ordering.
//
// With K = cfg.Bins and P = cfg.NumParams() = 3K−1 knot parameters per
// input, the MADE is made with in = dim and out = P·dim columns, and input
// i's parameters θ_i are its outputs for i, which depend only on the inputs
// before i:
//
//	θ_i[k] = MADE(x)[k·dim + i],   k = 0, …, P−1
//	z_i    = g(x_i; θ_i)           (identity outside [−B, B])
//	logDet = Σ_i log g′(x_i; θ_i)
//
// with θ_i laid out as every spline of this package, [widths (K) |
// heights (K) | interior slopes (K−1)]: MADE output column k·dim + i is
// the width k of input i for k < K, its height k−K for K ≤ k < 2K, and its
// slope k−2K for 2K ≤ k < P.
//
// Direct, the density direction, is one parallel pass of the MADE.
// Inverse, the sampling direction, computes x_i = g⁻¹(z_i; θ_i), with
// logDet = −Σ_i log g′(x_i; θ_i), one position of the ordering at a time,
// dim sequential steps, since θ_i needs the inputs before i. As in MAF,
// each step computes only what has just become computable (the hidden units
// whose degree is the position just filled, and the P outputs of the next
// input), so the dim steps together cost about one MADE pass restricted to
// its unmasked weights, and the buffers are allocated once per call.
//
// Parameters: exactly those of MADE(made)(key, dim, P·dim), the same values
// for the same key, in MADE's layout: [W_0 (dim×h_0) | b_0 | … |
// W_L (h_{L−1}×P·dim) | b_L], masked entries unused and with zero gradient.
// The MADE's last layer is zero at init, so θ = 0 (uniform bins, unit
// slopes) and the layer starts as the identity (up to rounding, a few ulps
// of B).
//
// Stack these layers with a permutation (Reverse, Shuffle) between them, or
// give them different orders, so that every input is conditioned on the
// others somewhere in the stack. dim 1 is allowed: the one spline's knots
// are then free parameters (the MADE's last biases), an unconditional
// elementwise spline.
//
// DirectVJP and InverseVJP are both provided, each as cheap as its forward
// pass; Invert(NeuralSplineAutoregressive(…)) is the inverse autoregressive
// spline flow, fast to sample, and trains through InverseVJP.
//
// Outside [−B, B] each spline is the identity, so inputs of any finite size
// are mapped without overflow; MADE outputs that are not finite (only an
// overflowing net produces them) are read as +Inf → MaxFloat64,
// −Inf → −MaxFloat64 and NaN → 0 and receive zero gradient, as in
// NeuralSplineCoupling: outputs and log-dets are finite for every finite
// input. A MADE that overflows (unbounded activations on inputs near
// 1e300, Tanh does not) gives NaN weight gradients in its own pullback,
// and, since its dense pass multiplies masked zeros by the overflowed
// activations (0·Inf = NaN) where the incremental pass skips them, Direct
// and Inverse then no longer undo each other exactly on such rows.
//
// Init returns an error starting "flows: NeuralSplineAutoregressive:" for
// dim < 1, an invalid cfg (wrapping SplineConfig's error) or a bad made (see
// MADE). The functions panic for a batch without dim columns or parameters
// of the wrong length. The pullbacks keep private copies of what they need,
// so they may be called after the batch or the parameters change, any
// number of times, from any goroutine.
func NeuralSplineAutoregressive(made MADEConfig, cfg SplineConfig) InitFunc {
	made.Hidden = slices.Clone(made.Hidden) // the caller may reuse its slice
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		return newAutoregressive("NeuralSplineAutoregressive", made, key, dim, contextDim, Spline(cfg))
	}
}
