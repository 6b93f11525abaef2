package flows_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"gonum.org/v1/gonum/mat"
)

func TestActNormConformance(t *testing.T) {
	for _, dim := range []int{1, 2, 3, 6} {
		flowstest.TestBijection(t, flowstest.Bijection{
			Name: fmt.Sprintf("ActNorm/dim=%d", dim),
			Init: flows.ActNorm(),
			Dim:  dim,
		})
	}
}

func TestActNormInitIsIdentity(t *testing.T) {
	p, bj, err := flows.ActNorm()(flows.NewKey(1), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 6 {
		t.Fatalf("len(p) = %d, want 6", len(p))
	}
	x := mat.NewDense(2, 3, []float64{1, -2, 3, 0.5, 7, -1})
	z, ld := bj.Direct(p, x, nil)
	if !mat.Equal(z, x) {
		t.Errorf("Direct at init = %v, want the identity", mat.Formatted(z))
	}
	for i, v := range ld {
		if v != 0 {
			t.Errorf("logDet[%d] = %v at init, want 0", i, v)
		}
	}
}

func TestActNormBadDim(t *testing.T) {
	for _, dim := range []int{0, -1} {
		if _, _, err := flows.ActNorm()(flows.NewKey(1), dim, 0); err == nil {
			t.Errorf("dim %d: no error", dim)
		}
	}
}

// TestActNormInitFromData checks that the data-dependent initialisation
// normalises each column of a batch with offsets and scales, that a constant
// column stays finite (scale 1), and that the convention
// z = (x − bias)·exp(−logScale) holds: bias is the mean, exp(logScale) the
// standard deviation.
func TestActNormInitFromData(t *testing.T) {
	const n, dim = 200, 4
	offsets := []float64{5, -3, 1e3, 42}
	scales := []float64{0.01, 7, 300, 0} // the last column is constant
	rng := flows.NewKey(7).Rand()
	x := mat.NewDense(n, dim, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			x.Set(i, j, offsets[j]+scales[j]*rng.NormFloat64())
		}
	}
	xCopy := mat.DenseCopyOf(x)

	p, bj, err := flows.ActNorm()(flows.NewKey(1), dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bj.InitFromData == nil {
		t.Fatal("ActNorm has no InitFromData")
	}
	z := bj.InitFromData(p, x, nil)
	if !mat.Equal(x, xCopy) {
		t.Error("InitFromData modified its batch")
	}
	// The returned batch is what Direct gives at the parameters set.
	zd, _ := bj.Direct(p, x, nil)
	if !mat.EqualApprox(z, zd, 1e-12) {
		t.Error("InitFromData's batch differs from Direct's")
	}
	for j := 0; j < dim; j++ {
		var mean, sq float64
		for i := 0; i < n; i++ {
			mean += z.At(i, j)
		}
		mean /= n
		for i := 0; i < n; i++ {
			d := z.At(i, j) - mean
			sq += d * d
		}
		variance := sq / n
		// Mean and variance of the output are computed from the same
		// floating-point data as the parameters: they are right to
		// rounding (relative 1e-12 of offset/scale ≈ 1e5 at worst, so
		// 1e-9 is ample while a wrong formula is off by O(1)).
		if math.Abs(mean) > 1e-9 {
			t.Errorf("column %d: mean %v after InitFromData, want 0", j, mean)
		}
		want := 1.0
		if scales[j] == 0 {
			want = 0 // a constant column maps to zeros
		}
		if math.Abs(variance-want) > 1e-9 {
			t.Errorf("column %d: variance %v after InitFromData, want %v", j, variance, want)
		}
		if ls := p[j]; scales[j] != 0 && math.Abs(ls-math.Log(scales[j])) > 0.2 {
			t.Errorf("column %d: logScale %v, want about log(%v) = %v", j, ls, scales[j], math.Log(scales[j]))
		}
		if b := p[dim+j]; math.Abs(b-offsets[j]) > 0.5*scales[j]+1e-9 {
			t.Errorf("column %d: bias %v, want about %v", j, b, offsets[j])
		}
	}
	// The constant column: scale 1, finite output.
	if p[dim-1] != 0 {
		t.Errorf("constant column: logScale %v, want 0", p[dim-1])
	}
	for i := 0; i < n; i++ {
		if v := z.At(i, dim-1); math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 1e-12 {
			t.Fatalf("constant column: z[%d] = %v, want about 0", i, v)
		}
	}
	// A large constant (rounding makes its computed variance non-zero but
	// tiny) is still treated as constant.
	c := mat.NewDense(3, 1, []float64{0.1 + 1e6, 0.1 + 1e6, 0.1 + 1e6})
	pc, bc, _ := flows.ActNorm()(flows.NewKey(1), 1, 0)
	if zc := bc.InitFromData(pc, c, nil); pc[0] != 0 || math.Abs(zc.At(0, 0)) > 1e-6 {
		t.Errorf("large constant: logScale %v, z %v", pc[0], zc.At(0, 0))
	}
	// A single row is constant in every column.
	one := mat.NewDense(1, dim, []float64{1, 2, 3, 4})
	p1, b1, _ := flows.ActNorm()(flows.NewKey(1), dim, 0)
	z1 := b1.InitFromData(p1, one, nil)
	for j := 0; j < dim; j++ {
		if p1[j] != 0 || z1.At(0, j) != 0 {
			t.Errorf("single row: column %d: logScale %v, z %v; want 0, 0", j, p1[j], z1.At(0, j))
		}
	}
}

func TestActNormPanics(t *testing.T) {
	p, bj, err := flows.ActNorm()(flows.NewKey(1), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	wrong := mat.NewDense(2, 4, nil)
	for name, f := range map[string]func(){
		"Direct":              func() { bj.Direct(p, wrong, nil) },
		"Inverse":             func() { bj.Inverse(p, wrong, nil) },
		"DirectVJP":           func() { bj.DirectVJP(p, wrong, nil) },
		"InverseVJP":          func() { bj.InverseVJP(p, wrong, nil) },
		"InitFromData":        func() { bj.InitFromData(p, wrong, nil) },
		"InitFromData empty":  func() { bj.InitFromData(p, &mat.Dense{}, nil) },
		"Direct short params": func() { bj.Direct(p[:5], mat.NewDense(2, 3, nil), nil) },
	} {
		msg := layerPanicMessage(f)
		if !strings.Contains(msg, "flows: ActNorm") {
			t.Errorf("%s: panic %q, want a flows: ActNorm message", name, msg)
		}
	}
}

// layerPanicMessage runs f and returns the text of its panic, or "" when it does
// not panic.
func layerPanicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}
