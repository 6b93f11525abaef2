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

// oneHot draws contexts that are one-hot labels, as the example uses.
func oneHot(key flows.Key, n, k int) *mat.Dense {
	rng := key.Rand()
	c := mat.NewDense(n, k, nil)
	for i := 0; i < n; i++ {
		c.Set(i, rng.IntN(k), 1)
	}
	return c
}

func TestCondCouplingConformance(t *testing.T) {
	for _, dim := range []int{2, 3, 5} {
		for _, cdim := range []int{1, 3} {
			flowstest.TestBijection(t, flowstest.Bijection{
				Name:       fmt.Sprintf("CondAffineCoupling/dim=%d/context=%d", dim, cdim),
				Init:       flows.AffineCoupling(flows.MLP([]int{8, 8}, flows.Tanh)),
				Dim:        dim,
				ContextDim: cdim,
			})
			flowstest.TestBijection(t, flowstest.Bijection{
				Name:       fmt.Sprintf("CondAdditiveCoupling/dim=%d/context=%d", dim, cdim),
				Init:       flows.AdditiveCoupling(flows.MLP([]int{8}, flows.ReLU)),
				Dim:        dim,
				ContextDim: cdim,
			})
		}
	}
	flowstest.TestBijection(t, flowstest.Bijection{
		Name:       "CondAffineCouplingSplit/dim=4/context=2",
		Init:       flows.AffineCouplingSplit(flows.MLP([]int{6}, flows.Tanh), flows.MLP([]int{6}, flows.ReLU)),
		Dim:        4,
		ContextDim: 2,
	})
	flowstest.TestBijection(t, flowstest.Bijection{
		Name:       "CondAffineCouplingBound/1.5/one-hot",
		Init:       flows.AffineCouplingBound(flows.MLP([]int{8}, flows.Tanh), 1.5),
		Dim:        3,
		ContextDim: 3,
		Contexts:   oneHot,
	})
}

func TestCondSerialConformance(t *testing.T) {
	net := flows.MLP([]int{8}, flows.Tanh)
	stack := flows.Serial(
		flows.ActNorm(),
		flows.AffineCoupling(net),
		flows.Reverse(),
		flows.InvertibleLinear(),
		flows.AdditiveCoupling(net),
		flows.Reverse(),
		flows.AffineCoupling(net),
	)
	for _, dim := range []int{2, 3} {
		flowstest.TestBijection(t, flowstest.Bijection{
			Name: fmt.Sprintf("CondSerial/dim=%d", dim), Init: stack, Dim: dim, ContextDim: 2,
		})
	}
	flowstest.TestBijection(t, flowstest.Bijection{
		Name: "Conditional(Reverse)", Init: flows.Reverse(), Dim: 3, ContextDim: 2,
	})
	flowstest.TestBijection(t, flowstest.Bijection{
		Name: "CondInvert(CondAffineCoupling)", Init: flows.Invert(flows.AffineCoupling(net)), Dim: 3, ContextDim: 2,
	})
}

func TestCondFlowConformance(t *testing.T) {
	net := flows.MLP([]int{8}, flows.Tanh)
	stack := flows.Serial(
		flows.AffineCoupling(net), flows.Reverse(),
		flows.AffineCoupling(net), flows.Reverse(),
	)
	for _, dim := range []int{2, 3} {
		flowstest.TestDistribution(t, flowstest.Distribution{
			Name: fmt.Sprintf("CondFlow/dim=%d", dim), Init: flows.Flow(stack, flows.DiagNormal()), Dim: dim, ContextDim: 2,
		})
	}
}

// TestCondCouplingIdentityAtInit: an MLP conditioner starts at zero output,
// so the conditional coupling is exactly the identity whatever the context.
func TestCondCouplingIdentityAtInit(t *testing.T) {
	p, b, err := flows.AffineCoupling(flows.MLP([]int{16}, flows.ReLU))(flows.NewKey(1), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(2, 3, []float64{1, -2, 3, 0.5, 4, -1})
	c := mat.NewDense(2, 2, []float64{1, 0, -3, 7})
	z, ld := b.Direct(p, x, c)
	if !mat.Equal(z, x) || ld[0] != 0 || ld[1] != 0 {
		t.Errorf("not the identity at init: z = %v, logDet = %v", mat.Formatted(z), ld)
	}
}

// TestCondCouplingMatchesUnconditional checks that the conditional coupling
// is the unconditional one whose conditioner sees [x1 | c]: with a
// conditioner that ignores its context columns (zero weights there), the
// two agree exactly, and dc is zero.
func TestCondCouplingMatchesUnconditional(t *testing.T) {
	const dim, cdim = 4, 2
	d1 := dim / 2
	// A one-layer MLP conditioner (no hidden layers): W is (d1+cdim)×out,
	// rows [x1 rows | c rows]; zero the context rows.
	pc, cb, err := flows.AffineCoupling(flows.MLP(nil, flows.Tanh))(flows.NewKey(3), dim, cdim)
	if err != nil {
		t.Fatal(err)
	}
	pu, ub, err := flows.AffineCoupling(flows.MLP(nil, flows.Tanh))(flows.NewKey(3), dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := 2 * (dim - d1)
	rng := flows.NewKey(4).Rand()
	for i := range pu {
		pu[i] = 0.3 * rng.NormFloat64()
	}
	// Unconditional layout [W (d1×out) | b (out)]; conditional
	// [W (d1+cdim)×out | b (out)].
	clear(pc)
	copy(pc[:d1*out], pu[:d1*out])
	copy(pc[(d1+cdim)*out:], pu[d1*out:])
	x := mat.NewDense(3, dim, []float64{1, 2, 3, 4, -1, 0.5, 2, 0, 0.3, -0.7, 1.1, 2})
	c := mat.NewDense(3, cdim, []float64{1, 0, 0, 1, 5, -5})
	zc, ldc, back := cb.DirectVJP(pc, x, c)
	zu, ldu := ub.Direct(pu, x, nil)
	if !mat.Equal(zc, zu) {
		t.Errorf("conditional z %v, unconditional %v", mat.Formatted(zc), mat.Formatted(zu))
	}
	for i := range ldc {
		if ldc[i] != ldu[i] {
			t.Errorf("log-det %v, unconditional %v", ldc, ldu)
			break
		}
	}
	ones := mat.NewDense(3, dim, nil)
	ones.Apply(func(_, _ int, _ float64) float64 { return 1 }, ones)
	dc := mat.NewDense(3, cdim, nil)
	back(ones, []float64{1, 1, 1}, make(flows.Params, len(pc)), dc)
	if !mat.Equal(dc, mat.NewDense(3, cdim, nil)) {
		t.Errorf("dc = %v, want 0 for a conditioner that ignores c", mat.Formatted(dc))
	}
	// And the context does matter once its weights are not zero.
	pc[d1*out] = 0.5
	zc2, _ := cb.Direct(pc, x, c)
	if mat.Equal(zc2, zc) {
		t.Error("the output does not depend on the context")
	}
}

func TestContextInitErrors(t *testing.T) {
	net := flows.MLP([]int{4}, flows.ReLU)
	for _, tc := range []struct {
		name      string
		init      flows.InitFunc
		dim, cdim int
		want      string
	}{
		{"coupling dim 1", flows.AffineCoupling(net), 1, 2, "dimension 1"},
		{"coupling context −1", flows.AffineCoupling(net), 2, -1, "context dimension -1"},
		{"MAF context −1", flows.MAF(flows.MADEConfig{}), 2, -1, "context dimension -1"},
		{"nil net", flows.AffineCoupling(nil), 2, 1, "nil net"},
		{"bad bound", flows.AffineCouplingBound(net, math.Inf(1)), 2, 1, "bound"},
		{"serial names the layer", flows.Serial(flows.Reverse(), flows.AffineCoupling(net)), 1, 1, "Serial layer 1"},
		{"split nil", flows.AffineCouplingSplit(net, nil), 2, 1, "nil shift conditioner net"},
	} {
		_, _, err := tc.init(flows.NewKey(1), tc.dim, tc.cdim)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// TestCondFlowInitFromData checks that ActNorm's data-dependent
// initialisation reaches through Serial and Flow given a context.
func TestCondFlowInitFromData(t *testing.T) {
	init := flows.Flow(flows.Serial(flows.ActNorm(),
		flows.AffineCoupling(flows.MLP([]int{8}, flows.ReLU))), flows.Normal())
	p, d, err := init(flows.NewKey(1), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if d.InitFromData == nil {
		t.Fatal("no InitFromData through CondFlow")
	}
	x := mat.NewDense(4, 2, []float64{10, 1, 12, 3, 14, 5, 16, 7})
	c := oneHot(flows.NewKey(2), 4, 3)
	before := append(flows.Params(nil), p...)
	flows.InitFromData(d, p, x, c)
	changed := false
	for i := range p {
		changed = changed || p[i] != before[i]
	}
	if !changed {
		t.Error("InitFromData left the parameters unchanged")
	}
}

// TestCondFlowSampleShape: one sample per context row.
func TestCondFlowSampleShape(t *testing.T) {
	p, d, err := flows.Flow(flows.AffineCoupling(flows.MLP([]int{4}, flows.ReLU)), flows.Normal())(flows.NewKey(1), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	s := d.Sample(flows.NewKey(2), p, 7, oneHot(flows.NewKey(3), 7, 3))
	if r, c := s.Dims(); r != 7 || c != 2 {
		t.Errorf("sample is %d×%d, want 7×2", r, c)
	}
}

func TestCondMAFConformance(t *testing.T) {
	for _, dim := range []int{1, 2, 3} {
		for _, hidden := range [][]int{nil, {8}, {6, 6}} {
			for _, cdim := range []int{1, 2} {
				flowstest.TestBijection(t, flowstest.Bijection{
					Name:       fmt.Sprintf("CondMAF/dim=%d/hidden=%v/context=%d", dim, hidden, cdim),
					Init:       flows.MAF(flows.MADEConfig{Hidden: hidden, Act: flows.Tanh, Order: flows.ReversedOrder}),
					Dim:        dim,
					ContextDim: cdim,
				})
			}
		}
	}
	flowstest.TestBijection(t, flowstest.Bijection{
		Name:       "CondMAF/SiLU/random/one-hot",
		Init:       flows.MAF(flows.MADEConfig{Hidden: []int{7}, Act: flows.SiLU, Order: flows.RandomOrder}),
		Dim:        4,
		ContextDim: 3,
		Contexts:   oneHot,
	})
	// More rows than one chunk of the sequential inverse (256), so that
	// the context terms and their gradients are checked across chunks.
	flowstest.TestBijection(t, flowstest.Bijection{
		Name:       "CondMAF/chunks",
		Init:       flows.MAF(flows.MADEConfig{Hidden: []int{4}, Act: flows.Tanh}),
		Dim:        2,
		ContextDim: 1,
		Rows:       300,
	})
	flowstest.TestBijection(t, flowstest.Bijection{
		Name: "CondInvert(CondMAF)", Init: flows.Invert(flows.MAF(flows.MADEConfig{Hidden: []int{8}, Act: flows.ReLU})), Dim: 3, ContextDim: 2,
	})
	flowstest.TestDistribution(t, flowstest.Distribution{
		Name: "CondFlow(CondMAF)", Dim: 2, ContextDim: 2,
		Init: flows.Flow(flows.Serial(
			flows.MAF(flows.MADEConfig{Hidden: []int{8}, Act: flows.Tanh}),
			flows.Reverse(),
			flows.MAF(flows.MADEConfig{Hidden: []int{8}, Act: flows.Tanh}),
		), flows.Normal()),
	})
}

// TestCondMAFFirstInputSeesContext: the outputs for the first input of the
// ordering see no hidden unit, but the direct context weights into the
// outputs still make its μ and α depend on c.
func TestCondMAFFirstInputSeesContext(t *testing.T) {
	p, b, err := flows.MAF(flows.MADEConfig{Hidden: []int{8}, Act: flows.Tanh})(flows.NewKey(1), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(1, 2, []float64{0.3, -0.2})
	z0, _ := b.Direct(p, x, mat.NewDense(1, 1, []float64{0}))
	if !mat.Equal(z0, x) {
		t.Errorf("not the identity at init: %v", mat.Formatted(z0))
	}
	for i := range p {
		p[i] += 0.1 * float64(i%7-3)
	}
	za, _ := b.Direct(p, x, mat.NewDense(1, 1, []float64{0}))
	zb, _ := b.Direct(p, x, mat.NewDense(1, 1, []float64{1}))
	if za.At(0, 0) == zb.At(0, 0) {
		t.Error("z of the first input does not depend on the context")
	}
}

// TestMAFUnchangedByContextCode: the unconditional MAF is newCondMADE with
// no context; its parameters equal MADE's for the same key.
func TestMAFUnchangedByContextCode(t *testing.T) {
	cfg := flows.MADEConfig{Hidden: []int{5}, Act: flows.ReLU}
	pm, _, err := flows.MAF(cfg)(flows.NewKey(3), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	pc, _, err := flows.MAF(cfg)(flows.NewKey(3), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	// The conditional layout extends the unconditional one: 2×5 context
	// weights into the hidden layer and 2×6 into the outputs.
	if len(pc) != len(pm)+2*5+2*6 {
		t.Fatalf("CondMAF has %d parameters, want %d", len(pc), len(pm)+2*5+2*6)
	}
	for i := range pm {
		if pc[i] != pm[i] {
			t.Fatalf("parameter %d: CondMAF %g, MAF %g", i, pc[i], pm[i])
		}
	}
}
