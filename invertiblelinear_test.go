package flows_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"gonum.org/v1/gonum/mat"
)

func TestInvertibleLinearConformance(t *testing.T) {
	for _, dim := range []int{1, 2, 3, 6} {
		flowstest.TestBijection(t, flowstest.Bijection{
			Name: fmt.Sprintf("InvertibleLinear/dim=%d", dim),
			Init: flows.InvertibleLinear(),
			Dim:  dim,
		})
	}
}

// invLinWeight returns the matrix W of InvertibleLinear at p: the rows of
// Direct(p, I), since z = x·W.
func invLinWeight(bj flows.Bijection, p flows.Params, dim int) *mat.Dense {
	id := mat.NewDense(dim, dim, nil)
	for i := 0; i < dim; i++ {
		id.Set(i, i, 1)
	}
	w, _ := bj.Direct(p, id, nil)
	return w
}

// invLinPerturbed returns p with N(0, 0.3²) added to every entry, drawn from
// key, so that W is no longer orthogonal.
func invLinPerturbed(key flows.Key, p flows.Params) flows.Params {
	rng := key.Rand()
	q := slices.Clone(p)
	for i := range q {
		q[i] += 0.3 * rng.NormFloat64()
	}
	return q
}

func TestInvertibleLinearInitOrthogonal(t *testing.T) {
	for _, dim := range []int{1, 2, 3, 6, 32} {
		p, bj, err := flows.InvertibleLinear()(flows.NewKey(uint64(dim)), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != dim*dim {
			t.Fatalf("dim %d: %d parameters, want %d", dim, len(p), dim*dim)
		}
		w := invLinWeight(bj, p, dim)
		var wtw mat.Dense
		wtw.Mul(w.T(), w)
		// W is rebuilt from an LU factorisation of an orthogonal Q: a few
		// ulps per entry, amplified at most by dim.
		for i := 0; i < dim; i++ {
			for j := 0; j < dim; j++ {
				want := 0.0
				if i == j {
					want = 1
				}
				if math.Abs(wtw.At(i, j)-want) > 1e-12 {
					t.Fatalf("dim %d: (WᵀW)[%d,%d] = %v, want %v", dim, i, j, wtw.At(i, j), want)
				}
			}
		}
		_, ld := bj.Direct(p, mat.NewDense(1, dim, nil), nil)
		if math.Abs(ld[0]) > 1e-12 {
			t.Errorf("dim %d: log|det W| = %v at init, want 0", dim, ld[0])
		}
	}
}

func TestInvertibleLinearDeterministic(t *testing.T) {
	const dim = 5
	p1, b1, _ := flows.InvertibleLinear()(flows.NewKey(3), dim, 0)
	p2, b2, _ := flows.InvertibleLinear()(flows.NewKey(3), dim, 0)
	p3, b3, _ := flows.InvertibleLinear()(flows.NewKey(4), dim, 0)
	if !slices.Equal(p1, p2) {
		t.Error("same key, different parameters")
	}
	// Same parameters through both closures: the fixed P and signs agree.
	q := invLinPerturbed(flows.NewKey(9), p1)
	if !mat.Equal(invLinWeight(b1, q, dim), invLinWeight(b2, q, dim)) {
		t.Error("same key, different fixed permutation or signs")
	}
	if slices.Equal(p1, p3) || mat.Equal(invLinWeight(b1, p1, dim), invLinWeight(b3, p3, dim)) {
		t.Error("different keys, same initial W")
	}
}

// TestInvertibleLinearLayout checks that the last dim entries are logAbsS:
// with the triangles at zero, W = P·diag(sign·exp(logAbsS)) is a signed,
// scaled permutation matrix.
func TestInvertibleLinearLayout(t *testing.T) {
	const dim = 6
	p, bj, _ := flows.InvertibleLinear()(flows.NewKey(11), dim, 0)
	q := make(flows.Params, len(p))
	for j := 0; j < dim; j++ {
		q[len(q)-dim+j] = math.Log(float64(j + 2))
	}
	w := invLinWeight(bj, q, dim)
	seen := make([]bool, dim)
	for i := 0; i < dim; i++ {
		nonzero := 0
		for j := 0; j < dim; j++ {
			v := math.Abs(w.At(i, j))
			if v == 0 {
				continue
			}
			nonzero++
			// Row i of P·D is row perm[i] of D: its entry sits in column
			// perm[i] with magnitude exp(logAbsS[perm[i]]) = perm[i]+2.
			if math.Abs(v-float64(j+2)) > 1e-12 || seen[j] {
				t.Errorf("W[%d,%d] = %v", i, j, w.At(i, j))
			}
			seen[j] = true
		}
		if nonzero != 1 {
			t.Errorf("row %d of W has %d nonzero entries, want 1", i, nonzero)
		}
	}
}

// TestInvertibleLinearInverseMatchesGonum checks the triangular solves of
// Inverse (and the log-det) against gonum's explicit inverse and log-det of
// W, at parameters away from the orthogonal initial point.
func TestInvertibleLinearInverseMatchesGonum(t *testing.T) {
	for _, dim := range []int{1, 2, 3, 6, 17} {
		p0, bj, err := flows.InvertibleLinear()(flows.NewKey(uint64(100+dim)), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		p := invLinPerturbed(flows.NewKey(uint64(200+dim)), p0)
		w := invLinWeight(bj, p, dim)
		var winv mat.Dense
		if err := winv.Inverse(w); err != nil {
			t.Fatalf("dim %d: %v", dim, err)
		}
		rng := flows.NewKey(uint64(300 + dim)).Rand()
		const n = 7
		z := mat.NewDense(n, dim, nil)
		for i := 0; i < n; i++ {
			for j := 0; j < dim; j++ {
				z.Set(i, j, rng.NormFloat64())
			}
		}
		x, ld := bj.Inverse(p, z, nil)
		var want mat.Dense
		want.Mul(z, &winv)
		// Two backward-stable computations of z·W⁻¹; cond(W) stays small
		// (tens) at these perturbations, so 1e-10 is generous.
		if !mat.EqualApprox(x, &want, 1e-10) {
			t.Errorf("dim %d: Inverse differs from z·W⁻¹:\n got %v\nwant %v", dim, mat.Formatted(x), mat.Formatted(&want))
		}
		var lu mat.LU
		lu.Factorize(w)
		logAbsDet, _ := lu.LogDet()
		for i, v := range ld {
			if math.Abs(v+logAbsDet) > 1e-10 {
				t.Errorf("dim %d: inverse logDet[%d] = %v, want −log|det W| = %v", dim, i, v, -logAbsDet)
			}
		}
		_, ldd := bj.Direct(p, z, nil)
		if math.Abs(ldd[0]-logAbsDet) > 1e-10 {
			t.Errorf("dim %d: direct logDet = %v, want log|det W| = %v", dim, ldd[0], logAbsDet)
		}
	}
}

func TestInvertibleLinearBadDim(t *testing.T) {
	for _, dim := range []int{0, -2} {
		if _, _, err := flows.InvertibleLinear()(flows.NewKey(1), dim, 0); err == nil {
			t.Errorf("dim %d: no error", dim)
		}
	}
}

func TestInvertibleLinearPanics(t *testing.T) {
	p, bj, err := flows.InvertibleLinear()(flows.NewKey(1), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	wrong := mat.NewDense(2, 2, nil)
	_, _, back := bj.DirectVJP(p, mat.NewDense(2, 3, nil), nil)
	for name, f := range map[string]func(){
		"Direct":              func() { bj.Direct(p, wrong, nil) },
		"Inverse":             func() { bj.Inverse(p, wrong, nil) },
		"DirectVJP":           func() { bj.DirectVJP(p, wrong, nil) },
		"InverseVJP":          func() { bj.InverseVJP(p, wrong, nil) },
		"Direct nil":          func() { bj.Direct(p, nil, nil) },
		"Direct short params": func() { bj.Direct(p[:8], mat.NewDense(2, 3, nil), nil) },
		"pullback width":      func() { back(mat.NewDense(2, 2, nil), make([]float64, 2), make(flows.Params, len(p)), nil) },
	} {
		msg := layerPanicMessage(f)
		if !strings.Contains(msg, "flows: InvertibleLinear") {
			t.Errorf("%s: panic %q, want a flows: InvertibleLinear message", name, msg)
		}
	}
}

func BenchmarkInvertibleLinear(b *testing.B) {
	const n = 256
	for _, dim := range []int{8, 64} {
		p, bj, err := flows.InvertibleLinear()(flows.NewKey(1), dim, 0)
		if err != nil {
			b.Fatal(err)
		}
		rng := flows.NewKey(2).Rand()
		x := mat.NewDense(n, dim, nil)
		for i := 0; i < n; i++ {
			for j := 0; j < dim; j++ {
				x.Set(i, j, rng.NormFloat64())
			}
		}
		b.Run(fmt.Sprintf("Direct/dim=%d/n=%d", dim, n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bj.Direct(p, x, nil)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
		b.Run(fmt.Sprintf("Inverse/dim=%d/n=%d", dim, n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bj.Inverse(p, x, nil)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// TestActNormInvertibleLinearStridedViews checks that ActNorm and InvertibleLinear read batches
// (and pullback gradients) that are views with a stride wider than their
// width the same as contiguous copies.
func TestActNormInvertibleLinearStridedViews(t *testing.T) {
	const n, dim = 4, 3
	for name, init := range map[string]flows.InitFunc{"ActNorm": flows.ActNorm(), "InvertibleLinear": flows.InvertibleLinear()} {
		p0, bj, err := init(flows.NewKey(5), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		p := invLinPerturbed(flows.NewKey(6), p0)
		rng := flows.NewKey(7).Rand()
		big := mat.NewDense(n+1, dim+2, nil)
		for i := 0; i < n+1; i++ {
			for j := 0; j < dim+2; j++ {
				big.Set(i, j, rng.NormFloat64())
			}
		}
		view := big.Slice(1, n+1, 1, dim+1).(*mat.Dense)
		flat := mat.DenseCopyOf(view)
		dl := []float64{0.3, -1, 2, 0.5}
		for _, dir := range []string{"Direct", "Inverse"} {
			vjp := bj.DirectVJP
			if dir == "Inverse" {
				vjp = bj.InverseVJP
			}
			yv, _, backV := vjp(p, view, nil)
			yf, _, backF := vjp(p, flat, nil)
			if !mat.Equal(yv, yf) {
				t.Errorf("%s %s: output of a view differs from that of a copy", name, dir)
			}
			dpV, dpF := make(flows.Params, len(p)), make(flows.Params, len(p))
			gv, gf := backV(view, dl, dpV, nil), backF(flat, dl, dpF, nil)
			if !mat.Equal(gv, gf) || !slices.Equal(dpV, dpF) {
				t.Errorf("%s %s: pullback of a view gradient differs from that of a copy", name, dir)
			}
		}
	}
}
