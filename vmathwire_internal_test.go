package flows

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// The loops that take exp and tanh from internal/vmath (mafaffine.go,
// couplingaffine.go) against the generic layers that call the transformer
// per element (math.Exp, math.Tanh): the same bits for every output and
// gradient, at widths that leave vector tails, on rows that saturate tanh,
// overflow the conditioner (non-finite parameters) or hold NaN.

// sameBits reports the first index where a and b differ in bits, or -1.
func sameBits(a, b []float64) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return i
		}
	}
	return -1
}

// wireBatch is rows×dim standard normal values, scaled by 4, with rows of
// ±1e300, ±1e154 and NaN entries among them.
func wireBatch(key Key, rows, dim int) *mat.Dense {
	x := pinBatch(key, rows, dim, false)
	x.Scale(4, x)
	for j := 0; j < dim; j++ {
		x.Set(0, j, 1e300)
		x.Set(1, j, -1e300)
		x.Set(2, j, 1e154*float64(j%3-1))
	}
	x.Set(3, dim-1, math.NaN())
	x.Set(4, 0, math.NaN())
	return x
}

// compareLayers checks that fast and slow, two forms of one layer with the
// same parameters, compute the same bits.
func compareLayers(t *testing.T, name string, fast, slow InitFunc, dim, rows int) {
	t.Helper()
	p, bf, err := fast(NewKey(3), dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	q, bs, err := slow(NewKey(3), dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sameBits(p, q) >= 0 {
		t.Fatalf("%s: the two forms initialise different parameters", name)
	}
	rng := NewKey(7).Rand()
	for i := range p {
		p[i] += rng.NormFloat64()
	}
	x := wireBatch(NewKey(4), rows, dim)
	dz := pinBatch(NewKey(5), rows, dim, false)
	dl := denseRows(pinBatch(NewKey(6), rows, 1, false))
	check := func(what string, a, b []float64) {
		t.Helper()
		if i := sameBits(a, b); i >= 0 {
			t.Errorf("%s: %s differs at %d: %v against %v", name, what, i, a[i], b[i])
		}
	}
	zf, ldf := bf.Direct(p, x, nil)
	zs, lds := bs.Direct(p, x, nil)
	check("Direct", denseRows(zf), denseRows(zs))
	check("Direct's log-det", ldf, lds)
	xf, ildf := bf.Inverse(p, zs, nil)
	xs, ilds := bs.Inverse(p, zs, nil)
	check("Inverse", denseRows(xf), denseRows(xs))
	check("Inverse's log-det", ildf, ilds)
	_, _, backF := bf.DirectVJP(p, x, nil)
	_, _, backS := bs.DirectVJP(p, x, nil)
	dpf, dps := make(Params, len(p)), make(Params, len(p))
	check("DirectVJP's dx", denseRows(backF(dz, dl, dpf, nil)), denseRows(backS(dz, dl, dps, nil)))
	check("DirectVJP's dp", dpf, dps)
	if bf.InverseVJP != nil && bs.InverseVJP != nil {
		_, _, ibackF := bf.InverseVJP(p, zs, nil)
		_, _, ibackS := bs.InverseVJP(p, zs, nil)
		dpf, dps := make(Params, len(p)), make(Params, len(p))
		check("InverseVJP's dz", denseRows(ibackF(dz, dl, dpf, nil)), denseRows(ibackS(dz, dl, dps, nil)))
		check("InverseVJP's dp", dpf, dps)
	}
}

func TestVmathWiredMAF(t *testing.T) {
	cfg := MADEConfig{Hidden: []int{16, 16}}
	for _, dim := range []int{1, 3, 8, 11, 64} {
		for _, S := range []float64{mafBound, 0.3} {
			fast := func(key Key, dim, cdim int) (Params, Bijection, error) {
				return newAR("MAF", cfg, key, dim, cdim, mafTransformer(S), mafOrder, S)
			}
			slow := func(key Key, dim, cdim int) (Params, Bijection, error) {
				return newAR("MAF", cfg, key, dim, cdim, mafTransformer(S), mafOrder, 0)
			}
			compareLayers(t, "MAF", fast, slow, dim, 301)
		}
	}
}

func TestVmathWiredAffineCoupling(t *testing.T) {
	for _, dim := range []int{2, 3, 9, 17, 64} {
		for _, S := range []float64{2, 0.3} {
			generic := Affine(S)
			generic.affineBound = 0 // the per-element path
			net := MLP([]int{12}, Tanh)
			compareLayers(t, "Coupling(Affine)", Coupling(net, Affine(S)), Coupling(net, generic), dim, 301)
		}
	}
}
