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

// TestPrepared32NoAllocs: prepared Float32 nets (an MLP with a hidden layer
// of one k-block and one of two, a MADE with context weights) map a block
// of rows without allocating once the scratch pools are warm.
func TestPrepared32NoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops buffers")
	}
	const n, in, out, cdim = prepRows, 5, 4, 3
	x, ctx, y := make([]float64, n*in), make([]float64, n*cdim), make([]float64, n*out)
	for i := range x {
		x[i] = float64(i%7) - 3
	}
	p, net, err := MLPWith(MLPConfig{Hidden: []int{64, 300, 20}, Act: Tanh, Precision: Float32})(NewKey(1), in, out)
	if err != nil {
		t.Fatal(err)
	}
	f := net.prepare(p)
	q, m, err := newMADE("MADE", MADEConfig{Hidden: []int{64, 300}, Act: ReLU, Precision: Float32}, NewKey(2), in, 2*in, cdim)
	if err != nil {
		t.Fatal(err)
	}
	wm := make([]float64, m.nw)
	m.maskedWeights(q, wm)
	pm := m.prepareDense(q, wm)
	if pm.n32 == nil {
		t.Fatal("a Float32 MADE prepared without float32 weights")
	}
	y2 := make([]float64, n*2*in)
	run := func() {
		f(x, n, y)
		pm.forward(x, ctx, n, y2)
	}
	run()
	if got := testing.AllocsPerRun(20, run); got != 0 {
		t.Errorf("%v allocations a call", got)
	}
}
