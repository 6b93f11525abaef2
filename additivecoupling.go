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
	return func(key Key, dim int) (Params, Bijection, error) {
		return newCoupling("AdditiveCoupling", net, key, dim, additiveKernel)
	}
}

// additiveKernel is the element-wise part of AdditiveCoupling: the
// conditioner's row is t (d2), and
//
//	Direct:  v2 = u2 + t,   Inverse: v2 = u2 − t,   logDet = 0,
//
// so du2 = g and dt = g (Direct) or −g (Inverse), with g = dL/dv2; the
// log-det is constant and its gradient drops out. Nothing is kept.
var additiveKernel = couplingKernel{
	width: 1,
	keep:  0,
	forward: func(v2, u2, t, _ []float64, inverse bool) float64 {
		if inverse {
			for j, u := range u2 {
				v2[j] = u - t[j]
			}
		} else {
			for j, u := range u2 {
				v2[j] = u + t[j]
			}
		}
		return 0
	},
	back: func(du2, dt, g2, _ []float64, _ float64, inverse bool) {
		copy(du2, g2)
		if inverse {
			for j, g := range g2 {
				dt[j] = -g
			}
		} else {
			copy(dt, g2)
		}
	},
}
