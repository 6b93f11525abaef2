package flows

import "testing"

// TestPreparedRowMaps: the layers the package doc lists as fused in a
// prepared Serial stack have row maps when prepared (couplings with an
// MLP conditioner, MAF, permutations, and a Serial of them); a coupling
// whose conditioner has no prepare hook (AffineCouplingSplit's two nets)
// has none and is called on the whole batch.
func TestPreparedRowMaps(t *testing.T) {
	net := MLP([]int{6}, Tanh)
	made := MADEConfig{Hidden: []int{6}}
	fused := map[string]InitFunc{
		"Coupling":                Coupling(net, Affine(2)),
		"AffineCoupling":          AffineCoupling(net),
		"AdditiveCoupling":        AdditiveCoupling(net),
		"NeuralSplineCoupling":    NeuralSplineCoupling(net, SplineConfig{Bins: 4, Bound: 3}),
		"LogisticMixtureCoupling": LogisticMixtureCoupling(net, 2),
		"CircularCoupling":        CircularCoupling(net, CircularConfig{Angles: []int{0}, Bins: 4}),
		"MAF":                     MAF(made),
		"Serial":                  Serial(AffineCoupling(net), Reverse(), MAF(made), Invert(AffineCoupling(net))),
	}
	for name, init := range fused {
		for _, cdim := range []int{0, 2} {
			p, b, err := init(NewKey(1), 4, cdim)
			if err != nil {
				t.Fatal(err)
			}
			if PrepareBijection(b, p).rows == nil {
				t.Errorf("%s (context %d): prepared without row maps", name, cdim)
			}
		}
	}
	p, b, err := AffineCouplingSplit(net, net)(NewKey(1), 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if PrepareBijection(b, p).rows != nil {
		t.Error("AffineCouplingSplit: row maps, but its conditioner has no prepare hook")
	}
}
