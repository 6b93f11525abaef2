package flows

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// bnafLayer makes a BNAF layer and its internals at parameters moved by
// N(0, scale²) from the initial ones.
func bnafLayer(t testing.TB, cfg BNAFConfig, dim, cdim int, scale float64, seed uint64) (*bnaf, Params, Bijection) {
	t.Helper()
	p, bj, err := BNAF(cfg)(NewKey(seed), dim, cdim)
	if err != nil {
		t.Fatal(err)
	}
	rng := NewKey(seed + 1).Rand()
	for i := range p {
		p[i] += scale * rng.NormFloat64()
	}
	b, err := newBNAF(cfg, dim, cdim)
	if err != nil {
		t.Fatal(err)
	}
	if b.np != len(p) {
		t.Fatalf("shape gives %d parameters, BNAF %d", b.np, len(p))
	}
	return b, p, bj
}

// TestBNAFWeights checks the effective weights against their definition:
// zero above the diagonal blocks, positive on them, each row of norm e^s,
// and G the log of the diagonal entries.
func TestBNAFWeights(t *testing.T) {
	b, p, _ := bnafLayer(t, BNAFConfig{Hidden: []int{3, 2}}, 4, 0, 0.5, 1)
	for l := range b.L {
		in, out := b.w[l], b.w[l+1]
		lw := b.weights(p, l)
		raw := p[b.off[l] : b.off[l]+out*in]
		s := p[b.off[l]+out*in : b.off[l]+out*in+out]
		for r := range out {
			var n2, ref float64
			for c := range in {
				w := lw.W[r*in+c]
				switch {
				case !b.used(l, r, c):
					if w != 0 {
						t.Fatalf("layer %d: masked entry (%d, %d) = %v", l, r, c, w)
					}
				case c/b.a[l] == r/b.a[l+1]:
					if !(w > 0) || math.Abs(math.Log(w)-lw.G[r*in+c]) > 1e-13 {
						t.Fatalf("layer %d: diagonal entry (%d, %d) = %v, G = %v", l, r, c, w, lw.G[r*in+c])
					}
					ref += math.Exp(2 * raw[r*in+c])
				default:
					ref += raw[r*in+c] * raw[r*in+c]
				}
				n2 += w * w
			}
			if math.Abs(math.Sqrt(n2)-math.Exp(s[r])) > 1e-13*math.Exp(s[r]) {
				t.Fatalf("layer %d row %d: norm %v, want e^s = %v", l, r, math.Sqrt(n2), math.Exp(s[r]))
			}
			// A diagonal entry against the plain formula.
			c := (r / b.a[l+1]) * b.a[l]
			if want := math.Exp(s[r]) * math.Exp(raw[r*in+c]) / math.Sqrt(ref); math.Abs(lw.W[r*in+c]-want) > 1e-13*want {
				t.Fatalf("layer %d: W[%d, %d] = %v, want %v", l, r, c, lw.W[r*in+c], want)
			}
		}
	}
}

// TestBNAFExtremeWeights checks that huge raw weights (whose exponentials
// overflow) still give finite, normalised rows and a finite log-det.
func TestBNAFExtremeWeights(t *testing.T) {
	b, p, bj := bnafLayer(t, BNAFConfig{Hidden: []int{2}}, 3, 0, 0.3, 2)
	for _, v := range []float64{800, -800, 1e5, -1e5} {
		q := append(Params(nil), p...)
		for l := range b.L {
			raw := q[b.off[l] : b.off[l]+b.w[l+1]*b.w[l]]
			for k := range raw {
				if k%2 == 0 {
					raw[k] = v
				}
			}
		}
		x := mat.NewDense(2, 3, []float64{0.5, -1, 2, 3, 0, -0.2})
		z, ld := bj.Direct(q, x, nil)
		for _, u := range append(append([]float64(nil), z.RawMatrix().Data...), ld...) {
			if !lmcFinite(u) {
				t.Fatalf("raw weights %v: z = %v, log-det %v", v, z.RawMatrix().Data, ld)
			}
		}
		// With diagonal weights of e^{−800} relative to the others
		// (v < 0), a dimension's map is flat beyond float64's resolution
		// (its root beyond float64): Inverse then returns ±MaxFloat64,
		// documented, where Direct overflows. For v > 0 the largest
		// weights are on the diagonal and the round trip holds, checked
		// in z.
		if v < 0 {
			continue
		}
		xb, _ := bj.Inverse(q, z, nil)
		z2, _ := bj.Direct(q, xb, nil)
		if !mat.EqualApprox(z2, z, 1e-9) {
			t.Errorf("raw weights %v: z = %v, Direct(Inverse(z)) = %v", v, z.RawMatrix().Data, z2.RawMatrix().Data)
		}
	}
}

// TestBNAFOnto checks that Inverse solves z far outside the data's range
// (the leak makes every dimension's map onto ℝ) and that the round trip
// holds at extreme inputs, with the inverse's stated tolerance turned into
// an error in z by the slope.
func TestBNAFOnto(t *testing.T) {
	for _, leak := range []float64{0.01, 1e-4, 1} {
		_, p, bj := bnafLayer(t, BNAFConfig{Hidden: []int{3, 3}, Leak: leak}, 3, 0, 0.4, 3)
		for _, v := range []float64{0, 1e-300, 1, -3, 1e3, -1e3, 1e8, -1e8, 1e12, -1e12} {
			z := mat.NewDense(1, 3, []float64{v, -v / 2, v / 3})
			x, ild := bj.Inverse(p, z, nil)
			z2, ld := bj.Direct(p, x, nil)
			for j := range 3 {
				if !lmcFinite(x.At(0, j)) {
					t.Fatalf("leak %v z=%v: x = %v", leak, z.RawMatrix().Data, x.RawMatrix().Data)
				}
			}
			// z_j = f(x_j | x_<j): an error of 1e-13·max(1, |x_j|) in x_j
			// moves z_j by the slope times that, plus the rounding of
			// the sums (a few ulps of the weighted terms, bounded by
			// 1e-12·max(1, |z|) here).
			for j := range 3 {
				if d := math.Abs(z2.At(0, j) - z.At(0, j)); d > 1e-12*max(1, math.Abs(z.At(0, j)))+
					2e-13*max(1, math.Abs(x.At(0, j)))*math.Exp(ld[0]) {
					t.Errorf("leak %v z=%v: Direct(Inverse(z)) = %v", leak, z.RawMatrix().Data, z2.RawMatrix().Data)
				}
			}
			if ild[0] != -ld[0] {
				t.Errorf("leak %v: inverse log-det %v, direct %v", leak, ild[0], ld[0])
			}
		}
	}
}

// TestBNAFTails checks the slope far out: each dimension's map is
// asymptotically linear, so the log-det tends to a constant.
func TestBNAFTails(t *testing.T) {
	_, p, bj := bnafLayer(t, BNAFConfig{Hidden: []int{2}}, 2, 0, 0.3, 4)
	for _, s := range []float64{1, -1} {
		_, l1 := bj.Direct(p, mat.NewDense(1, 2, []float64{s * 1e6, s * 1e6}), nil)
		_, l2 := bj.Direct(p, mat.NewDense(1, 2, []float64{s * 1e9, s * 1e9}), nil)
		if math.Abs(l1[0]-l2[0]) > 1e-9 || !lmcFinite(l1[0]) {
			t.Errorf("side %v: log-det %v at 1e6, %v at 1e9, want the same constant", s, l1[0], l2[0])
		}
	}
}

// FuzzBNAF fuzzes a BNAF layer (dim 2, one hidden layer of 2 units per
// dimension, 26 parameters) at parameters moved from init by the first
// floats of raw (read as the layers' inputs are: values beyond ±30 are
// clamped, non-finite ones are 0, since the parameters are an optimiser's)
// on the row (x0, x1): never NaN, finite where the inputs are within
// ±1e12, and the round trip of the inverse.
func FuzzBNAF(f *testing.F) {
	p0, bj, err := BNAF(BNAFConfig{Hidden: []int{2}})(NewKey(5), 2, 0)
	if err != nil {
		f.Fatal(err)
	}
	b, err := newBNAF(BNAFConfig{Hidden: []int{2}}, 2, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(0.0, 0.0, []byte{})
	f.Add(1e12, -1e12, lmcEncodeTheta(30, -30, 30, -30, 30, -30))
	f.Add(-3.5, 1e-300, lmcEncodeTheta(0.5, 2, -1, 7, 0, 0, 3, -2))
	f.Fuzz(func(t *testing.T, x0, x1 float64, raw []byte) {
		if !lmcFinite(x0) || !lmcFinite(x1) || math.Abs(x0) > 1e12 || math.Abs(x1) > 1e12 {
			t.Skip("input beyond the fuzzed range")
		}
		p := append(Params(nil), p0...)
		for i := range p {
			if len(raw) >= 8*(i+1) {
				v := math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
				if !lmcFinite(v) {
					v = 0
				}
				p[i] += max(-30, min(30, v))
			}
		}
		x := mat.NewDense(1, 2, []float64{x0, x1})
		z, ld := bj.Direct(p, x, nil)
		xb, ild := bj.Inverse(p, z, nil)
		vals := []float64{z.At(0, 0), z.At(0, 1), ld[0], xb.At(0, 0), xb.At(0, 1), ild[0]}
		for _, v := range vals {
			if !lmcFinite(v) {
				t.Fatalf("p=%v x=%v: z=%v ld=%v x'=%v ild=%v", p, x.RawMatrix().Data, z.RawMatrix().Data, ld, xb.RawMatrix().Data, ild)
			}
		}
		bnafCheckInverse(t, b, bj, p, z, xb)
		_, _, back := bj.DirectVJP(p, x, nil)
		dp := make(Params, len(p))
		dx := back(mat.NewDense(1, 2, []float64{1, -1}), []float64{1}, dp, nil)
		for _, v := range append(append([]float64(nil), dx.RawMatrix().Data...), dp...) {
			if math.IsNaN(v) {
				t.Fatalf("p=%v x=%v: NaN gradient", p, x.RawMatrix().Data)
			}
		}
	})
}

// TestBNAFInverseEvaluations checks that inversions at random parameters,
// inputs and contexts round-trip and take a handful of evaluations.
func TestBNAFInverseEvaluations(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 17))
	b, p, bj := bnafLayer(t, BNAFConfig{Hidden: []int{4, 4}}, 3, 2, 0.5, 6)
	x := mat.NewDense(200, 3, nil)
	c := mat.NewDense(200, 2, nil)
	for i := range 200 {
		for j := range 3 {
			x.Set(i, j, 3*rng.NormFloat64())
		}
		c.Set(i, 0, rng.NormFloat64())
		c.Set(i, 1, rng.NormFloat64())
	}
	z, _ := bj.Direct(p, x, c)
	xb, _ := bj.Inverse(p, z, c)
	if !mat.EqualApprox(xb, x, 1e-9) {
		t.Fatal("round trip fails")
	}
	zs, _, _ := rawRows(z)
	cs, _, _ := rawRows(c)
	_, _, evals := b.inverse(p, zs, cs, 200)
	t.Logf("at most %d evaluations per dimension", evals)
	if evals > 40 {
		t.Errorf("an inversion took %d evaluations, want a handful (at most 40) at these parameters", evals)
	}
}

// bnafCheckInverse checks Inverse's documented promise at one row: each
// x'_j = Inverse(z)_j is within 1e-13·max(1, |x'_j|) of a root of z_j(v |
// x'_<j) − z_j, that is, Direct's z_j at x'_j ∓ twice that tolerance
// (x'_<j fixed; twice, since the solver may stop on a Newton correction
// within the tolerance) lies on either side of z_j, up to the rounding of
// z_j: a bound on the error of Direct's sums, relative to the magnitude
// of their terms (bnafRounding), not to z_j. So the check holds however
// ill-conditioned the map: where z_j comes out of a cancellation (inputs
// near 1e11 giving z near 1e5, issue 26's crasher), Direct(Inverse(z))
// differs from z by 1e-11 of z, and the solution meets the tolerance in x.
func bnafCheckInverse(t *testing.T, b *bnaf, bj Bijection, p Params, z, xb *mat.Dense) {
	t.Helper()
	d := z.RawMatrix().Cols
	for j := range d {
		tol := 2e-13 * max(1, math.Abs(xb.At(0, j)))
		lo, hi := mat.DenseCopyOf(xb), mat.DenseCopyOf(xb)
		lo.Set(0, j, xb.At(0, j)-tol)
		hi.Set(0, j, xb.At(0, j)+tol)
		zl, _ := bj.Direct(p, lo, nil)
		zh, _ := bj.Direct(p, hi, nil)
		r := max(bnafRounding(b, p, lo.RawRowView(0))[j], bnafRounding(b, p, hi.RawRowView(0))[j])
		if !(zl.At(0, j) <= z.At(0, j)+r && z.At(0, j) <= zh.At(0, j)+r) {
			t.Fatalf("p=%v z=%v: Inverse %v: dimension %d's map is %v, %v at ∓%v, not around %v (rounding %v)",
				p, z.RawMatrix().Data, xb.RawMatrix().Data, j, zl.At(0, j), zh.At(0, j), tol, z.At(0, j), r)
		}
	}
}

// bnafRounding bounds the rounding error of each output of Direct at the
// row x (no context): a pass of magnitudes, Q_l = |b_l| + |W_l|·M_l with
// M_0 = |x| and M_{l+1} = (1 + α)·Q_l (|φ(u)| and φ′ are at most 1 + α),
// gives the sums' terms, and the error of a sum of n terms is within
// n·ε of their magnitude, compounded over the layers; the bound is
// 4·(n + 2)·L·ε·Q_{L−1}.
func bnafRounding(b *bnaf, p Params, x []float64) []float64 {
	m := make([]float64, len(x))
	for i, v := range x {
		m[i] = math.Abs(v)
	}
	n := 0
	for l := range b.L {
		ws := b.weights(p, l)
		in, out := b.w[l], b.w[l+1]
		n = max(n, in)
		bias := p[b.off[l]+out*in+out : b.off[l]+out*in+2*out]
		q := make([]float64, out)
		for r := range out {
			q[r] = math.Abs(bias[r])
			for c := range in {
				q[r] += math.Abs(ws.W[r*in+c]) * m[c]
			}
			if l < b.L-1 {
				q[r] *= 1 + b.alpha
			}
		}
		m = q
	}
	for i := range m {
		m[i] *= 4 * float64((n+2)*b.L) * 0x1p-52
	}
	return m
}
