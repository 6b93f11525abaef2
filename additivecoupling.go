package flows

// AdditiveCoupling returns a NICE additive coupling layer (Dinh, Krueger
// and Bengio, 2014) whose shift comes from a conditioner net made by net.
//
// For rows of width dim ≥ 2 it splits x = [x1 | x2] as AffineCoupling does,
// the first d1 = dim/2 columns and the last d2 = dim − d1, and computes
//
//	t  = net(x1)          (net: d1 → d2 columns)
//	z1 = x1
//	z2 = x2 + t
//	logDet = 0
//
// with Inverse x2 = z2 − t. The layer preserves volume: its log-det is
// exactly 0 in both directions, so a stack of additive couplings and
// permutations has log-det exactly 0 too (NICE adds a diagonal scaling,
// ActNorm here, to change volume).
//
// The parameters are exactly the net's, in the net's layout. A net that
// starts with zero output, as MLP does, makes the layer the identity at
// init. Stack it with Reverse (or another permutation) between layers:
//
//	Serial(AdditiveCoupling(net), Reverse(), AdditiveCoupling(net), …)
//
// Init returns an error for dim < 2 and passes on the net's init errors.
// DirectVJP and InverseVJP are both provided. The functions panic for a
// batch without dim columns or parameters of the wrong length.
func AdditiveCoupling(net NetInitFunc) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		return newCoupling("AdditiveCoupling", net, key, dim, contextDim, Shift())
	}
}

// Shift returns the shift transformer of NICE's additive coupling:
//
//	θ = [t],   y = x + t,   log f′ = 0,
//
// which preserves volume; its inverse is x = y − t. θ = 0 is the identity.
func Shift() Transformer {
	return Transformer{
		Name:    "Shift",
		Params:  1,
		Forward: func(th []float64, x float64) (float64, float64) { return x + th[0], 0 },
		Inverse: func(th []float64, y float64) (float64, float64) { return y - th[0], 0 },
		// ∂y/∂x = 1, ∂y/∂t = 1; the log-det is constant.
		ForwardVJP: func(_ []float64, _, _, gy, _ float64, dth []float64) float64 {
			dth[0] += gy
			return gy
		},
		// ∂x/∂y = 1, ∂x/∂t = −1.
		InverseVJP: func(_ []float64, _, _, gx, _ float64, dth []float64) float64 {
			dth[0] += -gx
			return gx
		},
	}
}
