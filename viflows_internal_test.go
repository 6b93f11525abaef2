package flows

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// viRoundTrip checks Direct(Inverse(z)) ≈ z and the log-dets' signs for
// the layer at p on the rows of z, to tol·max(1, |z|).
func viRoundTrip(t *testing.T, name string, bj Bijection, p Params, z *mat.Dense, tol float64) {
	t.Helper()
	x, ld := bj.Inverse(p, z, nil)
	zb, ldb := bj.Direct(p, x, nil)
	n, d := z.Dims()
	for i := range n {
		for j := range d {
			if v := x.At(i, j); !lmcFinite(v) {
				t.Fatalf("%s p=%v: Inverse gave %v", name, p, mat.Row(nil, i, x))
			}
			if math.Abs(zb.At(i, j)-z.At(i, j)) > tol*max(1, math.Abs(z.At(i, j))) {
				t.Fatalf("%s p=%v: z = %v → x = %v → %v", name, p, mat.Row(nil, i, z), mat.Row(nil, i, x), mat.Row(nil, i, zb))
			}
		}
		if !lmcFinite(ld[i]) || math.Abs(ld[i]+ldb[i]) > tol*max(1, math.Abs(ld[i])) {
			t.Fatalf("%s p=%v: log-dets %v and %v", name, p, ld[i], ldb[i])
		}
	}
}

func dotW(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// TestPlanarInvertibleEverywhere checks the û reparameterisation: for any
// w and u, wᵀû > −1, so the map inverts, even where u points against w.
func TestPlanarInvertibleEverywhere(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 44))
	_, bj, _ := Planar()(NewKey(1), 3, 0)
	z := mat.NewDense(4, 3, []float64{0, 0, 0, 1, -2, 3, -30, 5, 0.1, 1e3, -1e3, 1e3})
	for range 300 {
		p := make(Params, 7)
		scale := math.Pow(10, float64(rng.IntN(5))-2)
		for i := range p {
			p[i] = scale * rng.NormFloat64()
		}
		if rng.IntN(3) == 0 { // u against w
			for k := range 3 {
				p[3+k] = -50 * p[k]
			}
		}
		f := newPlanar(p, 3)
		// 1 + wᵀû, kept as softplus(wᵀu): positive, and equal to the
		// dot product where that has the digits (wᵀu not very negative).
		if !(f.opw > 0) || (f.s > -20 && math.Abs(f.opw-(1+dotW(p[:3], f.uh))) > 1e-9*max(1, math.Abs(dotW(p[:3], f.uh)))) {
			t.Fatalf("p=%v: 1 + wᵀû = %v, from û %v", p, f.opw, 1+dotW(p[:3], f.uh))
		}
		viRoundTrip(t, "Planar", bj, p, z, 1e-9)
	}
}

func TestRadialInvertibleEverywhere(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 44))
	_, bj, _ := Radial()(NewKey(2), 3, 0)
	z := mat.NewDense(4, 3, []float64{0, 0, 0, 1, -2, 3, -30, 5, 0.1, 1e3, -1e3, 1e3})
	for range 300 {
		p := make(Params, 5)
		for i := range p {
			p[i] = 3 * rng.NormFloat64()
		}
		if rng.IntN(3) == 0 { // β close to −α: a strong contraction
			p[4] = -20
		}
		// A row at z₀ itself, where r = 0.
		z.SetRow(0, p[:3])
		viRoundTrip(t, "Radial", bj, p, z, 1e-9)
	}
}

// TestSylvesterOrthogonal checks QᵀQ = I and the round trip with fewer
// hidden units than columns, at parameters far from init.
func TestSylvesterOrthogonal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 44))
	for _, c := range []struct{ d, m, k int }{{3, 3, 3}, {5, 2, 4}, {4, 1, 1}, {2, 2, 6}} {
		p0, bj, err := Sylvester(SylvesterConfig{Hidden: c.m, Reflections: c.k})(NewKey(3), c.d, 0)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			p := append(Params(nil), p0...)
			for i := range p {
				p[i] += 2 * rng.NormFloat64()
			}
			f := newSylvester(p, sylShape{d: c.d, m: c.m, k: c.k})
			Q := f.qs[0]
			for i := range c.m {
				for j := range c.m {
					var s float64
					for r := range c.d {
						s += Q[r*c.m+i] * Q[r*c.m+j]
					}
					want := 0.0
					if i == j {
						want = 1
					}
					if math.Abs(s-want) > 1e-12 {
						t.Fatalf("%+v: (QᵀQ)[%d][%d] = %v", c, i, j, s)
					}
				}
			}
			z := mat.NewDense(3, c.d, nil)
			for i := range 3 {
				for j := range c.d {
					z.Set(i, j, 3*rng.NormFloat64())
				}
			}
			viRoundTrip(t, "Sylvester", bj, p, z, 1e-9)
		}
	}
}

// viFuzz decodes a parameter vector of length np (added to p0) and a row
// of dim inputs from raw, as little-endian float64s read as an optimiser's
// values: non-finite ones are 0 and the rest clamped to ±1e3.
func viFuzz(raw []byte, p0 Params, dim int) (Params, *mat.Dense) {
	next := func(i int) float64 {
		if len(raw) < 8*(i+1) {
			return 0
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		if !lmcFinite(v) {
			return 0
		}
		return max(-1e3, min(1e3, v))
	}
	p := append(Params(nil), p0...)
	for i := range p {
		p[i] += next(i)
	}
	z := mat.NewDense(1, dim, nil)
	for j := range dim {
		z.Set(0, j, next(len(p)+j))
	}
	return p, z
}

// FuzzPlanar fuzzes a 2-D planar flow: parameters and a latent row from
// raw; the sampling pass, its numerical inverse (round trip to 1e-8 of
// max(1, |z|), the inverse's tolerance amplified by at most the slope of
// a map whose slope is at least 1 − |wᵀû|… bounded here by the clamp) and
// both pullbacks must be finite.
func FuzzPlanar(f *testing.F) {
	p0, bj, _ := Planar()(NewKey(5), 2, 0)
	f.Add([]byte{})
	f.Add(lmcEncodeTheta(3, -1, -150, 50, 2, 1e3, -1e3))
	f.Add(lmcEncodeTheta(1e3, 1e3, -1e3, -1e3, 0, 0.5, 0.5))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, z := viFuzz(raw, p0, 2)
		viFuzzCheck(t, bj, p, z)
	})
}

// FuzzSylvester fuzzes a 3-D Sylvester flow with 2 hidden units and 2
// reflections as FuzzPlanar does.
func FuzzSylvester(f *testing.F) {
	p0, bj, _ := Sylvester(SylvesterConfig{Hidden: 2, Reflections: 2})(NewKey(6), 3, 0)
	f.Add([]byte{})
	f.Add(lmcEncodeTheta(1, 0, 0, 0, 1, 0, 50, 3, 0, -50, 1e3, -2, 0, 7, 1, -1, 5, 1e3, -1e3))
	f.Add(lmcEncodeTheta(0, 0, 0, 0, 0, 0, -1e3, 1e3, 0, 1e3, 1e3, -1e3, 0, -1e3, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, z := viFuzz(raw, p0, 3)
		viFuzzCheck(t, bj, p, z)
	})
}

// viFuzzCheck checks one row: finite sampling pass, log-det and pullbacks,
// and the round trip in x (Inverse then Direct then Inverse) to 1e-9 of
// max(1, |x|) plus the inverse's tolerance in z turned into x by the
// slope (e^{ld} bounds the product of the singular values; the largest
// is at most 1 + |û| or 1 + ‖Q R‖ here, up to about 1e3·√dim).
func viFuzzCheck(t *testing.T, bj Bijection, p Params, z *mat.Dense) {
	t.Helper()
	x, ld, back := bj.InverseVJP(p, z, nil)
	_, d := z.Dims()
	for j := range d {
		if !lmcFinite(x.At(0, j)) {
			t.Fatalf("p=%v z=%v: x = %v", p, z.RawMatrix().Data, x.RawMatrix().Data)
		}
	}
	if !lmcFinite(ld[0]) {
		t.Fatalf("p=%v z=%v: log-det %v", p, z.RawMatrix().Data, ld)
	}
	dp := make(Params, len(p))
	dz := back(mat.NewDense(1, d, nil), []float64{1}, dp, nil)
	zb, ldb, dback := bj.DirectVJP(p, x, nil)
	dp2 := make(Params, len(p))
	dx := dback(mat.NewDense(1, d, nil), []float64{1}, dp2, nil)
	for _, v := range append(append(append(append([]float64(nil), dp...), dp2...), dz.RawMatrix().Data...), dx.RawMatrix().Data...) {
		if math.IsNaN(v) {
			t.Fatalf("p=%v z=%v: NaN gradient", p, z.RawMatrix().Data)
		}
	}
	xb, _ := bj.Inverse(p, zb, nil)
	for j := range d {
		if dd := math.Abs(xb.At(0, j) - x.At(0, j)); dd > 1e-9*max(1, math.Abs(x.At(0, j)))+1e-9*max(1, math.Abs(zb.At(0, j)))*(1+math.Exp(ld[0])) {
			t.Fatalf("p=%v z=%v: x = %v, Inverse(Direct(x)) = %v", p, z.RawMatrix().Data, x.RawMatrix().Data, xb.RawMatrix().Data)
		}
	}
	// Direct's log-det is −log|det ∂g/∂z| at the z it returns (which,
	// where the map is near singular, may be another z of nearly the
	// same x).
	if _, ldz := bj.Inverse(p, zb, nil); math.Abs(ldb[0]+ldz[0]) > 1e-12*max(1, math.Abs(ldz[0])) {
		t.Fatalf("p=%v z=%v: Direct's log-det %v, the sampling pass's at its z %v", p, z.RawMatrix().Data, ldb, ldz)
	}
}
