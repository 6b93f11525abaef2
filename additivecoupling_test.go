package flows_test

import (
	"fmt"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
)

func TestAdditiveCouplingConformance(t *testing.T) {
	for _, act := range []flows.Activation{flows.ReLU, flows.Tanh} {
		for _, dim := range []int{2, 3, 5} {
			flowstest.TestBijection(t, flowstest.Bijection{
				Name: fmt.Sprintf("AdditiveCoupling/%v/dim=%d", act, dim),
				Init: flows.AdditiveCoupling(flows.MLP([]int{8, 8}, act)),
				Dim:  dim,
			})
		}
	}
	flowstest.TestBijection(t, flowstest.Bijection{
		Name: "NICE/dim=5",
		Init: niceStack(flows.MLP([]int{8}, flows.Tanh)),
		Dim:  5,
	})
}

// niceStack is three additive couplings with Reverse between them, so
// every column is shifted at least once.
func niceStack(net flows.NetInitFunc) flows.InitFunc {
	return flows.Serial(
		flows.AdditiveCoupling(net), flows.Reverse(),
		flows.AdditiveCoupling(net), flows.Reverse(),
		flows.AdditiveCoupling(net),
	)
}

// couplingTestBatch is an n×dim batch of distinct, non-round values.
func couplingTestBatch(n, dim int) *mat.Dense {
	x := mat.NewDense(n, dim, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			x.Set(i, j, float64(i*dim+j)*0.37-4.5)
		}
	}
	return x
}

// checkIdentityAtInit checks that init makes the exact identity in both
// directions, with log-det exactly 0.
func checkIdentityAtInit(t *testing.T, name string, init flows.InitFunc, dims []int) {
	t.Helper()
	for _, dim := range dims {
		p, bj, err := init(flows.NewKey(4), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		x := couplingTestBatch(3, dim)
		z, ld := bj.Direct(p, x, nil)
		xi, ild := bj.Inverse(p, x, nil)
		zv, ldv, _ := bj.DirectVJP(p, x, nil)
		xv, ildv, _ := bj.InverseVJP(p, x, nil)
		for what, m := range map[string]*mat.Dense{"Direct": z, "Inverse": xi, "DirectVJP": zv, "InverseVJP": xv} {
			if !mat.Equal(m, x) {
				t.Errorf("%s dim %d: %s at init is not the identity:\n%v", name, dim, what, mat.Formatted(m))
			}
		}
		for _, l := range [][]float64{ld, ild, ldv, ildv} {
			for _, v := range l {
				if v != 0 {
					t.Errorf("%s dim %d: log-det at init %v, want 0", name, dim, l)
					break
				}
			}
		}
	}
}

func TestAdditiveCouplingIdentityAtInit(t *testing.T) {
	checkIdentityAtInit(t, "AdditiveCoupling", flows.AdditiveCoupling(flows.MLP([]int{16, 16}, flows.ReLU)), []int{2, 3, 7})
}

// TestAdditiveCouplingFormula checks Direct and Inverse against
// z2 = x2 + t with a fixed shift, and that the split is [first dim/2 |
// rest].
func TestAdditiveCouplingFormula(t *testing.T) {
	shift := []float64{0.5, -2, 3}
	_, bj, err := flows.AdditiveCoupling(affineTestNet(nil, shift))(flows.NewKey(1), 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := couplingTestBatch(2, 5)
	z, ld := bj.Direct(nil, x, nil)
	xr, ild := bj.Inverse(nil, z, nil)
	for i := 0; i < 2; i++ {
		for j := 0; j < 5; j++ {
			want := x.At(i, j)
			if j >= 2 {
				want += shift[j-2]
			}
			if got := z.At(i, j); got != want { // one addition: exact
				t.Errorf("z[%d,%d] = %v, want %v", i, j, got, want)
			}
			// (x + t) − t can differ from x by an ulp of x + t.
			if d := xr.At(i, j) - x.At(i, j); d > 1e-14 || d < -1e-14 {
				t.Errorf("round trip [%d,%d] = %v, want %v", i, j, xr.At(i, j), x.At(i, j))
			}
		}
		if ld[i] != 0 || ild[i] != 0 {
			t.Errorf("log-dets %v, %v, want 0", ld[i], ild[i])
		}
	}
}

// TestAdditiveCouplingNICELogDetZero checks that a stack of additive couplings and
// permutations has log-det exactly 0, not merely close, in every pass,
// at parameters far from the identity.
func TestAdditiveCouplingNICELogDetZero(t *testing.T) {
	for _, dim := range []int{2, 3, 6} {
		p, bj, err := niceStack(flows.MLP([]int{8}, flows.ReLU))(flows.NewKey(7), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		rng := flows.NewKey(8).Rand()
		for i := range p {
			p[i] += rng.NormFloat64()
		}
		x := couplingTestBatch(4, dim)
		z, ld := bj.Direct(p, x, nil)
		if mat.Equal(z, x) {
			t.Fatalf("dim %d: the perturbed stack is the identity; the test checks nothing", dim)
		}
		_, ild := bj.Inverse(p, z, nil)
		_, ldv, _ := bj.DirectVJP(p, x, nil)
		_, ildv, _ := bj.InverseVJP(p, z, nil)
		for _, l := range [][]float64{ld, ild, ldv, ildv} {
			for _, v := range l {
				if v != 0 {
					t.Errorf("dim %d: log-det %v, want exactly 0", dim, l)
					break
				}
			}
		}
	}
}

func TestAdditiveCouplingInitErrors(t *testing.T) {
	net := flows.MLP([]int{4}, flows.Tanh)
	for _, tc := range []struct {
		name string
		init flows.InitFunc
		dim  int
		pre  string
	}{
		{"dim 1", flows.AdditiveCoupling(net), 1, "flows: AdditiveCoupling: "},
		{"dim 0", flows.AdditiveCoupling(net), 0, "flows: AdditiveCoupling: "},
		{"bad net", flows.AdditiveCoupling(flows.MLP([]int{0}, flows.Tanh)), 4, "flows: AdditiveCoupling: "},
		{"nil net", flows.AdditiveCoupling(nil), 4, "flows: AdditiveCoupling: "},
		{"in Serial", flows.Serial(flows.Reverse(), flows.AdditiveCoupling(net)), 1, "flows: Serial layer 1: flows: AdditiveCoupling: "},
	} {
		_, _, err := tc.init(flows.NewKey(1), tc.dim, 0)
		if err == nil || !strings.HasPrefix(err.Error(), tc.pre) {
			t.Errorf("%s: error %v, want one starting %q", tc.name, err, tc.pre)
		}
	}
}

func TestAdditiveCouplingPanics(t *testing.T) {
	p, bj, err := flows.AdditiveCoupling(flows.MLP([]int{4}, flows.Tanh))(flows.NewKey(1), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := couplingTestBatch(2, 3)
	_, _, back := bj.DirectVJP(p, x, nil)
	_, _, iback := bj.InverseVJP(p, x, nil)
	dp := make(flows.Params, len(p))
	for name, f := range map[string]func(){
		"Direct wrong width":     func() { bj.Direct(p, mat.NewDense(2, 2, nil), nil) },
		"Inverse wrong width":    func() { bj.Inverse(p, mat.NewDense(2, 4, nil), nil) },
		"DirectVJP nil batch":    func() { bj.DirectVJP(p, nil, nil) },
		"InverseVJP wrong width": func() { bj.InverseVJP(p, mat.NewDense(2, 2, nil), nil) },
		"Inverse long params":    func() { bj.Inverse(append(p[:len(p):len(p)], 0), x, nil) },
		"pullback wrong dz":      func() { back(mat.NewDense(2, 2, nil), []float64{0, 0}, dp, nil) },
		"pullback short dLogDet": func() { iback(mat.NewDense(2, 3, nil), []float64{0}, dp, nil) },
		"pullback nil dLogDet":   func() { back(mat.NewDense(2, 3, nil), nil, dp, nil) },
		"pullback short dp":      func() { back(mat.NewDense(2, 3, nil), []float64{0, 0}, dp[:1], nil) },
	} {
		if msg := panicMessage(f); !strings.HasPrefix(msg, "flows: AdditiveCoupling") {
			t.Errorf("%s: panic %q, want one starting \"flows: AdditiveCoupling\"", name, msg)
		}
	}
}
