package flows_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
)

func TestAffineCouplingConformance(t *testing.T) {
	for _, act := range []flows.Activation{flows.ReLU, flows.Tanh} {
		for _, dim := range []int{2, 3, 5} {
			for _, hidden := range [][]int{{6}, {8, 8}} {
				flowstest.TestBijection(t, flowstest.Bijection{
					Name: fmt.Sprintf("AffineCoupling/%v/hidden=%v/dim=%d", act, hidden, dim),
					Init: flows.AffineCoupling(flows.MLP(hidden, act)),
					Dim:  dim,
				})
			}
		}
	}
	// A tight bound, with parameters moved far enough that the tanh
	// saturates in places, so its derivative is exercised away from 1.
	flowstest.TestBijection(t, flowstest.Bijection{
		Name: "AffineCouplingBound/1.5/dim=4",
		Init: flows.AffineCouplingBound(flows.MLP([]int{8}, flows.Tanh), 1.5),
		Dim:  4,
		Perturb: func(key flows.Key, p flows.Params) flows.Params {
			rng := key.Rand()
			q := append(flows.Params(nil), p...)
			for i := range q {
				q[i] += rng.NormFloat64()
			}
			return q
		},
	})
}

// TestAffineCouplingIdentityAtInit checks that with an MLP conditioner,
// whose last layer starts at exactly zero, the layer is exactly the
// identity at init, in both directions, with a zero log-det.
func TestAffineCouplingIdentityAtInit(t *testing.T) {
	for _, dim := range []int{2, 3, 7} {
		p, bj, err := flows.AffineCoupling(flows.MLP([]int{16, 16}, flows.ReLU))(flows.NewKey(4), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		x := mat.NewDense(3, dim, nil)
		for i := 0; i < 3; i++ {
			for j := 0; j < dim; j++ {
				x.Set(i, j, float64(i*dim+j)-4.5)
			}
		}
		z, ld := bj.Direct(p, x, nil)
		xi, ild := bj.Inverse(p, x, nil)
		for name, m := range map[string]*mat.Dense{"Direct": z, "Inverse": xi} {
			if !mat.Equal(m, x) {
				t.Errorf("dim %d: %s at init is not the identity:\n%v", dim, name, mat.Formatted(m))
			}
		}
		for i := range ld {
			if ld[i] != 0 || ild[i] != 0 {
				t.Errorf("dim %d: log-dets at init %v, %v, want 0", dim, ld, ild)
				break
			}
		}
	}
}

// affineTestNet is a conditioner without parameters whose output row is
// fixed: [raw | t], whatever the input.
func affineTestNet(raw, shift []float64) flows.NetInitFunc {
	return func(_ flows.Key, in, out int) (flows.Params, flows.Net, error) {
		if out != len(raw)+len(shift) {
			return nil, flows.Net{}, fmt.Errorf("test net: out %d, want %d", out, len(raw)+len(shift))
		}
		row := append(append([]float64(nil), raw...), shift...)
		apply := func(_ flows.Params, x *mat.Dense) *mat.Dense {
			n, _ := x.Dims()
			y := mat.NewDense(n, out, nil)
			for i := 0; i < n; i++ {
				y.SetRow(i, row)
			}
			return y
		}
		return flows.Params{}, flows.Net{
			Apply: apply,
			ApplyVJP: func(p flows.Params, x *mat.Dense) (*mat.Dense, flows.NetPullback) {
				n, _ := x.Dims()
				return apply(p, x), func(*mat.Dense, flows.Params) *mat.Dense { return mat.NewDense(n, in, nil) }
			},
		}, nil
	}
}

// TestAffineCouplingFormula checks Direct and Inverse against the
// documented formula, and that the log-scale stays within the bound
// (|s| ≤ 3 in floating point, where tanh saturates to exactly 1) for huge
// raw outputs that would overflow exp unbounded.
func TestAffineCouplingFormula(t *testing.T) {
	raw := []float64{1e300, -1e6, 0.7}
	shift := []float64{0.5, -2, 3}
	_, bj, err := flows.AffineCoupling(affineTestNet(raw, shift))(flows.NewKey(1), 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(2, 5, []float64{
		1, 2, 3, 4, 5,
		-1, -2, -3, -4, -5,
	})
	z, ld := bj.Direct(nil, x, nil)
	s := []float64{3, -3, 3 * math.Tanh(0.7/3)}
	for i := 0; i < 2; i++ {
		sum := 0.0
		for j := 0; j < 5; j++ {
			want := x.At(i, j)
			if j >= 2 {
				want = x.At(i, j)*math.Exp(s[j-2]) + shift[j-2]
				sum += s[j-2]
			}
			// Tolerance: the same few operations in another order.
			if got := z.At(i, j); math.Abs(got-want) > 1e-13*math.Max(1, math.Abs(want)) {
				t.Errorf("z[%d,%d] = %.17g, want %.17g", i, j, got, want)
			}
		}
		if math.Abs(ld[i]-sum) > 1e-14 {
			t.Errorf("logDet[%d] = %.17g, want %.17g", i, ld[i], sum)
		}
		if math.Abs(ld[i]) > 3*3 {
			t.Errorf("logDet[%d] = %v exceeds the bound 3·d2", i, ld[i])
		}
	}
	xr, ild := bj.Inverse(nil, z, nil)
	for i := 0; i < 2; i++ {
		if ild[i] != -ld[i] {
			t.Errorf("inverse logDet[%d] = %v, want %v", i, ild[i], -ld[i])
		}
		for j := 0; j < 5; j++ {
			if math.Abs(xr.At(i, j)-x.At(i, j)) > 1e-12 {
				t.Errorf("round trip [%d,%d] = %v, want %v", i, j, xr.At(i, j), x.At(i, j))
			}
		}
	}

	// An MLP conditioner with enormous weights: every |s| stays ≤ 3.
	p, bjm, err := flows.AffineCoupling(flows.MLP([]int{8}, flows.ReLU))(flows.NewKey(2), 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p {
		p[i] = 1e8 * float64(i%5-2)
	}
	xs := mat.NewDense(3, 4, []float64{1, 2, 1, 1, -3, 0.5, 1, 1, 0.1, -0.2, 1, 1})
	zs, lds, back := bjm.DirectVJP(p, xs, nil)
	for i := 0; i < 3; i++ {
		for j := 2; j < 4; j++ {
			// x2 = 1 so z2 − t = exp(s); t is unknown here, so bound the
			// log-det per row instead, and check everything is finite.
			if v := zs.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("z[%d,%d] = %v", i, j, v)
			}
		}
		if !(math.Abs(lds[i]) <= 3*2) {
			t.Errorf("logDet[%d] = %v, want |logDet| ≤ 6", i, lds[i])
		}
	}
	dp := make(flows.Params, len(p))
	dz := mat.NewDense(3, 4, nil)
	dz.Apply(func(int, int, float64) float64 { return 1 }, dz)
	dx := back(dz, []float64{1, 1, 1}, dp, nil)
	for _, v := range append(dp, dx.RawMatrix().Data...) {
		if math.IsNaN(v) {
			t.Fatal("NaN gradient at saturated scales")
		}
	}
}

func TestAffineCouplingInitErrors(t *testing.T) {
	net := flows.MLP([]int{4}, flows.Tanh)
	for _, tc := range []struct {
		name string
		init flows.InitFunc
		dim  int
		pre  string
	}{
		{"dim 1", flows.AffineCoupling(net), 1, "flows: AffineCoupling: "},
		{"dim 0", flows.AffineCoupling(net), 0, "flows: AffineCoupling: "},
		{"bad net", flows.AffineCoupling(flows.MLP([]int{0}, flows.Tanh)), 4, "flows: AffineCoupling: "},
		{"nil net", flows.AffineCoupling(nil), 4, "flows: AffineCoupling: "},
		{"bound 0", flows.AffineCouplingBound(net, 0), 4, "flows: AffineCouplingBound: "},
		{"bound NaN", flows.AffineCouplingBound(net, math.NaN()), 4, "flows: AffineCouplingBound: "},
		{"bound Inf", flows.AffineCouplingBound(net, math.Inf(1)), 4, "flows: AffineCouplingBound: "},
		{"bound dim 1", flows.AffineCouplingBound(net, 2), 1, "flows: AffineCouplingBound: "},
	} {
		_, _, err := tc.init(flows.NewKey(1), tc.dim, 0)
		if err == nil || !strings.HasPrefix(err.Error(), tc.pre) {
			t.Errorf("%s: error %v, want one starting %q", tc.name, err, tc.pre)
		}
	}
	if _, _, err := flows.AffineCouplingBound(net, 0.5)(flows.NewKey(1), 2, 0); err != nil {
		t.Errorf("bound 0.5 at dim 2: %v", err)
	}
}

func TestAffineCouplingPanics(t *testing.T) {
	p, bj, err := flows.AffineCoupling(flows.MLP([]int{4}, flows.Tanh))(flows.NewKey(1), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(2, 3, []float64{1, 2, 3, 4, 5, 6})
	_, _, back := bj.DirectVJP(p, x, nil)
	_, _, iback := bj.InverseVJP(p, x, nil)
	dp := make(flows.Params, len(p))
	for name, f := range map[string]func(){
		"Direct wrong width":     func() { bj.Direct(p, mat.NewDense(2, 2, nil), nil) },
		"Inverse wrong width":    func() { bj.Inverse(p, mat.NewDense(2, 4, nil), nil) },
		"DirectVJP wrong width":  func() { bj.DirectVJP(p, mat.NewDense(2, 4, nil), nil) },
		"InverseVJP wrong width": func() { bj.InverseVJP(p, mat.NewDense(2, 2, nil), nil) },
		"Direct short params":    func() { bj.Direct(p[:1], x, nil) },
		"pullback wrong dz":      func() { back(mat.NewDense(2, 2, nil), []float64{0, 0}, dp, nil) },
		"pullback short dLogDet": func() { back(mat.NewDense(2, 3, nil), []float64{0}, dp, nil) },
		"pullback short dp":      func() { iback(mat.NewDense(2, 3, nil), []float64{0, 0}, dp[:1], nil) },
	} {
		if msg := panicMessage(f); !strings.HasPrefix(msg, "flows: AffineCoupling") {
			t.Errorf("%s: panic %q, want one starting \"flows: AffineCoupling\"", name, msg)
		}
	}
}

// TestAffineCouplingView checks that strided views (of the batch and of
// the pullback's gradient) give what plain copies give.
func TestAffineCouplingView(t *testing.T) {
	p, bj, err := flows.AffineCoupling(flows.MLP([]int{6}, flows.Tanh))(flows.NewKey(3), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p {
		p[i] += 0.1 * float64(i%7-3)
	}
	wide := mat.NewDense(3, 5, []float64{1, 2, 3, 9, 9, -1, 0.5, 2, 9, 9, 0.3, -0.7, -1, 9, 9})
	view := wide.Slice(0, 3, 0, 3).(*mat.Dense)
	plain := mat.DenseCopyOf(view)
	dl := []float64{0.5, -1, 2}
	for _, vjp := range []func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, flows.Pullback){bj.DirectVJP, bj.InverseVJP} {
		zv, ldv, bv := vjp(p, view, nil)
		zp, ldp, bp := vjp(p, plain, nil)
		dpv, dpp := make(flows.Params, len(p)), make(flows.Params, len(p))
		dxv := bv(wide.Slice(0, 3, 2, 5).(*mat.Dense), dl, dpv, nil)
		dxp := bp(mat.DenseCopyOf(wide.Slice(0, 3, 2, 5)), dl, dpp, nil)
		if !mat.Equal(zv, zp) || !equalParams(ldv, ldp) || !mat.Equal(dxv, dxp) || !equalParams(dpv, dpp) {
			t.Error("a strided view gives different results from a copy")
		}
	}
}

// BenchmarkAffineCoupling times DirectVJP and its pullback, the training
// step of one coupling: dim 8, an MLP conditioner with hidden [128, 128],
// batches of 256 rows.
func BenchmarkAffineCoupling(b *testing.B) {
	const dim, n = 8, 256
	for _, act := range []flows.Activation{flows.ReLU, flows.Tanh} {
		b.Run(fmt.Sprintf("dim=%d/hidden=128x128/batch=%d/%v", dim, n, act), func(b *testing.B) {
			p, bj, err := flows.AffineCoupling(flows.MLP([]int{128, 128}, act))(flows.NewKey(1), dim, 0)
			if err != nil {
				b.Fatal(err)
			}
			rng := flows.NewKey(2).Rand()
			for i := range p {
				p[i] += 0.05 * rng.NormFloat64()
			}
			x := mat.NewDense(n, dim, nil)
			dz := mat.NewDense(n, dim, nil)
			for i := 0; i < n; i++ {
				for j := 0; j < dim; j++ {
					x.Set(i, j, rng.NormFloat64())
					dz.Set(i, j, rng.NormFloat64())
				}
			}
			dl := make([]float64, n)
			dp := make(flows.Params, len(p))
			b.ReportAllocs()
			for b.Loop() {
				_, _, back := bj.DirectVJP(p, x, nil)
				back(dz, dl, dp, nil)
			}
			b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

func TestAffineCouplingSplitConformance(t *testing.T) {
	for _, act := range []flows.Activation{flows.ReLU, flows.Tanh} {
		for _, dim := range []int{2, 3, 5} {
			flowstest.TestBijection(t, flowstest.Bijection{
				Name: fmt.Sprintf("AffineCouplingSplit/%v/dim=%d", act, dim),
				// Different shapes, so a mix-up of the two nets'
				// parameter ranges cannot go unnoticed.
				Init: flows.AffineCouplingSplit(flows.MLP([]int{8, 8}, act), flows.MLP([]int{6}, act)),
				Dim:  dim,
			})
		}
	}
}

func TestAffineCouplingSplitIdentityAtInit(t *testing.T) {
	net := flows.MLP([]int{16, 16}, flows.ReLU)
	checkIdentityAtInit(t, "AffineCouplingSplit", flows.AffineCouplingSplit(net, net), []int{2, 3, 7})
}

// TestAffineCouplingSplitMatchesAffineCoupling checks, with nets of fixed
// output, that separate scale and shift nets give bit for bit what one net
// with output [raw | t] gives in AffineCoupling, in every pass.
func TestAffineCouplingSplitMatchesAffineCoupling(t *testing.T) {
	raw := []float64{40, -0.3, 0.7}
	shift := []float64{0.5, -2, 3}
	_, split, err := flows.AffineCouplingSplit(affineTestNet(raw, nil), affineTestNet(nil, shift))(flows.NewKey(1), 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, one, err := flows.AffineCoupling(affineTestNet(raw, shift))(flows.NewKey(1), 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := couplingTestBatch(3, 5)
	dz := couplingTestBatch(3, 5)
	dz.Scale(-0.25, dz)
	dl := []float64{1, -2, 0.5}
	for _, pass := range []struct {
		name   string
		f, g   func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, flows.Pullback)
		fd, gd func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64)
	}{
		{"Direct", split.DirectVJP, one.DirectVJP, split.Direct, one.Direct},
		{"Inverse", split.InverseVJP, one.InverseVJP, split.Inverse, one.Inverse},
	} {
		zs, lds, bs := pass.f(nil, x, nil)
		zo, ldo, bo := pass.g(nil, x, nil)
		zp, ldp := pass.fd(nil, x, nil)
		dxs, dxo := bs(dz, dl, flows.Params{}, nil), bo(dz, dl, flows.Params{}, nil)
		if !mat.Equal(zs, zo) || !mat.Equal(zp, zo) || !equalParams(lds, ldo) || !equalParams(ldp, ldo) || !mat.Equal(dxs, dxo) {
			t.Errorf("%s: AffineCouplingSplit differs from AffineCoupling with the nets' outputs side by side", pass.name)
		}
	}
}

// TestAffineCouplingSplitLayout checks the parameter layout [scale net's |
// shift net's], each net drawn from its own half of key.Split(2): moving
// only the shift net's parameters leaves the log-det at 0, moving only the
// scale net's makes z2 = x2·exp(s) with no shift.
func TestAffineCouplingSplitLayout(t *testing.T) {
	const dim = 5
	d1, d2 := dim/2, dim-dim/2
	scale, shift := flows.MLP([]int{8, 8}, flows.Tanh), flows.MLP([]int{6}, flows.Tanh)
	key := flows.NewKey(11)
	p, bj, err := flows.AffineCouplingSplit(scale, shift)(key, dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys := key.Split(2)
	ps, _, _ := scale(keys[0], d1, d2)
	pt, _, _ := shift(keys[1], d1, d2)
	if !equalParams(p, append(append(flows.Params(nil), ps...), pt...)) {
		t.Fatalf("parameters are not [scale net's (%d) | shift net's (%d)] from key.Split(2)", len(ps), len(pt))
	}
	x := couplingTestBatch(4, dim)
	move := func(lo, hi int) flows.Params {
		q := append(flows.Params(nil), p...)
		for i := lo; i < hi; i++ {
			q[i] += 0.3 * float64(i%5-2)
		}
		return q
	}

	z, ld := bj.Direct(move(len(ps), len(p)), x, nil) // the shift net only
	for i, v := range ld {
		if v != 0 {
			t.Errorf("shift net moved: log-det[%d] = %v, want 0", i, v)
		}
	}
	if mat.Equal(z, x) {
		t.Error("shift net moved: z = x, want a shift")
	}

	z, ld = bj.Direct(move(0, len(ps)), x, nil) // the scale net only
	for i := 0; i < 4; i++ {
		sum := 0.0
		for j := d1; j < dim; j++ {
			sum += logAbsRatio(z.At(i, j), x.At(i, j))
		}
		// z2/x2 = exp(s) exactly up to rounding in exp and the product.
		if d := sum - ld[i]; d > 1e-12 || d < -1e-12 || ld[i] == 0 {
			t.Errorf("scale net moved: row %d: Σ log(z2/x2) = %v, log-det %v", i, sum, ld[i])
		}
	}
}

// logAbsRatio is log|a/b|.
func logAbsRatio(a, b float64) float64 { return math.Log(math.Abs(a / b)) }

func TestAffineCouplingSplitInitErrors(t *testing.T) {
	net := flows.MLP([]int{4}, flows.Tanh)
	bad := flows.MLP([]int{0}, flows.Tanh)
	const pre = "flows: AffineCouplingSplit: "
	for _, tc := range []struct {
		name string
		init flows.InitFunc
		dim  int
		pre  string
	}{
		{"dim 1", flows.AffineCouplingSplit(net, net), 1, pre},
		{"dim 0", flows.AffineCouplingSplit(net, net), 0, pre},
		{"bad scale net", flows.AffineCouplingSplit(bad, net), 4, pre + "scale conditioner: flows: MLP: "},
		{"bad shift net", flows.AffineCouplingSplit(net, bad), 4, pre + "shift conditioner: flows: MLP: "},
		{"nil scale net", flows.AffineCouplingSplit(nil, net), 4, pre},
		{"nil shift net", flows.AffineCouplingSplit(net, nil), 4, pre},
		{"in Serial", flows.Serial(flows.AffineCouplingSplit(net, net)), 1, "flows: Serial layer 0: " + pre},
	} {
		_, _, err := tc.init(flows.NewKey(1), tc.dim, 0)
		if err == nil || !strings.HasPrefix(err.Error(), tc.pre) {
			t.Errorf("%s: error %v, want one starting %q", tc.name, err, tc.pre)
		}
	}
}

func TestAffineCouplingSplitPanics(t *testing.T) {
	net := flows.MLP([]int{4}, flows.Tanh)
	p, bj, err := flows.AffineCouplingSplit(net, net)(flows.NewKey(1), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := couplingTestBatch(2, 3)
	_, _, back := bj.DirectVJP(p, x, nil)
	dp := make(flows.Params, len(p))
	for name, f := range map[string]func(){
		"Direct wrong width":     func() { bj.Direct(p, mat.NewDense(2, 2, nil), nil) },
		"InverseVJP wrong width": func() { bj.InverseVJP(p, mat.NewDense(2, 4, nil), nil) },
		"Direct short params":    func() { bj.Direct(p[:len(p)-1], x, nil) },
		"pullback wrong dz":      func() { back(mat.NewDense(3, 3, nil), []float64{0, 0}, dp, nil) },
		"pullback long dp":       func() { back(mat.NewDense(2, 3, nil), []float64{0, 0}, append(dp, 0), nil) },
	} {
		if msg := panicMessage(f); !strings.HasPrefix(msg, "flows: AffineCouplingSplit") {
			t.Errorf("%s: panic %q, want one starting \"flows: AffineCouplingSplit\"", name, msg)
		}
	}
}

// TestAffineCouplingSplitView checks that strided views (of the batch and
// of the pullback's gradient) give what plain copies give.
func TestAffineCouplingSplitView(t *testing.T) {
	p, bj, err := flows.AffineCouplingSplit(flows.MLP([]int{6}, flows.Tanh), flows.MLP([]int{5}, flows.ReLU))(flows.NewKey(3), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p {
		p[i] += 0.1 * float64(i%7-3)
	}
	wide := mat.NewDense(3, 5, []float64{1, 2, 3, 9, 9, -1, 0.5, 2, 9, 9, 0.3, -0.7, -1, 9, 9})
	view := wide.Slice(0, 3, 0, 3).(*mat.Dense)
	plain := mat.DenseCopyOf(view)
	dl := []float64{0.5, -1, 2}
	for _, vjp := range []func(flows.Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, flows.Pullback){bj.DirectVJP, bj.InverseVJP} {
		zv, ldv, bv := vjp(p, view, nil)
		zp, ldp, bp := vjp(p, plain, nil)
		dpv, dpp := make(flows.Params, len(p)), make(flows.Params, len(p))
		dxv := bv(wide.Slice(0, 3, 2, 5).(*mat.Dense), dl, dpv, nil)
		dxp := bp(mat.DenseCopyOf(wide.Slice(0, 3, 2, 5)), dl, dpp, nil)
		if !mat.Equal(zv, zp) || !equalParams(ldv, ldp) || !mat.Equal(dxv, dxp) || !equalParams(dpv, dpp) {
			t.Error("a strided view gives different results from a copy")
		}
	}
}
