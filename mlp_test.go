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

var mlpActivations = []flows.Activation{flows.ReLU, flows.Tanh, flows.ELU, flows.LeakyReLU, flows.SiLU}

func TestMLPConformance(t *testing.T) {
	for _, act := range mlpActivations {
		for _, hidden := range [][]int{nil, {5}, {5, 4}} {
			for _, io := range [][2]int{{3, 4}, {1, 2}, {2, 1}} {
				flowstest.TestNet(t, flowstest.Net{
					Name: fmt.Sprintf("MLP/%v/hidden=%v/%d→%d", act, hidden, io[0], io[1]),
					Init: flows.MLP(hidden, act),
					In:   io[0], Out: io[1],
				})
			}
		}
	}
}

// TestMLPHandComputed checks Apply against a 2→2→1 network worked out by
// hand, for each activation.
func TestMLPHandComputed(t *testing.T) {
	// Layout [W0 (2×2) | b0 (2) | W1 (2×1) | b1 (1)].
	p := flows.Params{
		1, -1, // W0 row 0
		2, 0.5, // W0 row 1
		0.5, -1, // b0
		3,    // W1 row 0
		-2,   // W1 row 1
		0.25, // b1
	}
	x := mat.NewDense(2, 2, []float64{
		1, 2,
		-1, 0.5,
	})
	// Pre-activations a = x·W0 + b0:
	//   row 0: [1+4+0.5, −1+1−1] = [5.5, −1]
	//   row 1: [−1+1+0.5, 1+0.25−1] = [0.5, 0.25]
	pre := [][2]float64{{5.5, -1}, {0.5, 0.25}}
	sig := func(a float64) float64 { return 1 / (1 + math.Exp(-a)) }
	acts := map[flows.Activation]func(float64) float64{
		flows.ReLU: func(a float64) float64 { return math.Max(a, 0) },
		flows.Tanh: math.Tanh,
		flows.ELU: func(a float64) float64 {
			if a > 0 {
				return a
			}
			return math.Exp(a) - 1
		},
		flows.LeakyReLU: func(a float64) float64 {
			if a > 0 {
				return a
			}
			return 0.01 * a
		},
		flows.SiLU: func(a float64) float64 { return a * sig(a) },
	}
	// Spelled out for ReLU: h = [[5.5, 0], [0.5, 0.25]],
	// y = h·W1 + b1 = [[16.5+0.25], [1.5−0.5+0.25]] = [[16.75], [1.25]].
	reluWant := []float64{16.75, 1.25}
	for _, act := range mlpActivations {
		_, net, err := flows.MLP([]int{2}, act)(flows.NewKey(1), 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		y := net.Apply(p, x)
		yv, _ := net.ApplyVJP(p, x)
		for i, a := range pre {
			f := acts[act]
			want := 3*f(a[0]) - 2*f(a[1]) + 0.25
			if act == flows.ReLU && want != reluWant[i] {
				t.Fatalf("test arithmetic: %v, want %v", want, reluWant[i])
			}
			// Tolerance: a few ulps of a handful of operations.
			if got := y.At(i, 0); math.Abs(got-want) > 1e-14 {
				t.Errorf("%v: Apply row %d = %.17g, want %.17g", act, i, got, want)
			}
			if got := yv.At(i, 0); math.Abs(got-want) > 1e-14 {
				t.Errorf("%v: ApplyVJP row %d = %.17g, want %.17g", act, i, got, want)
			}
		}
	}
}

// TestMLPInit checks the documented initialisation: the last layer exactly
// zero (so the output is zero), zero biases, hidden weights within their
// uniform bounds, the same key giving the same parameters.
func TestMLPInit(t *testing.T) {
	const in, h1, h2, out = 3, 7, 6, 4
	for _, act := range mlpActivations {
		p, net, err := flows.MLP([]int{h1, h2}, act)(flows.NewKey(9), in, out)
		if err != nil {
			t.Fatal(err)
		}
		if want := in*h1 + h1 + h1*h2 + h2 + h2*out + out; len(p) != want {
			t.Fatalf("%v: %d parameters, want %d", act, len(p), want)
		}
		type block struct {
			name   string
			off, n int
			bound  float64 // 0: must be exactly zero
		}
		glorot := act == flows.Tanh
		bound := func(fin, fout int) float64 {
			if glorot {
				return math.Sqrt(6 / float64(fin+fout))
			}
			return math.Sqrt(6 / float64(fin))
		}
		o1 := in*h1 + h1
		o2 := o1 + h1*h2 + h2
		blocks := []block{
			{"W0", 0, in * h1, bound(in, h1)},
			{"b0", in * h1, h1, 0},
			{"W1", o1, h1 * h2, bound(h1, h2)},
			{"b1", o1 + h1*h2, h2, 0},
			{"W2", o2, h2 * out, 0},
			{"b2", o2 + h2*out, out, 0},
		}
		for _, b := range blocks {
			nonzero := 0
			for _, v := range p[b.off : b.off+b.n] {
				if v != 0 {
					nonzero++
				}
				if b.bound == 0 && v != 0 || math.Abs(v) >= b.bound && b.bound != 0 {
					t.Errorf("%v: %s has %v (bound %v)", act, b.name, v, b.bound)
				}
			}
			if b.bound != 0 && nonzero == 0 {
				t.Errorf("%v: %s is all zero", act, b.name)
			}
		}
		x := mat.NewDense(2, in, []float64{1, -2, 3, 0.5, 4, -1})
		y := net.Apply(p, x)
		if !mat.Equal(y, mat.NewDense(2, out, nil)) {
			t.Errorf("%v: output at init is %v, want zero", act, mat.Formatted(y))
		}
		// Different keys give different hidden weights, the same key the same.
		p2, _, _ := flows.MLP([]int{h1, h2}, act)(flows.NewKey(9), in, out)
		p3, _, _ := flows.MLP([]int{h1, h2}, act)(flows.NewKey(10), in, out)
		if !equalParams(p, p2) || equalParams(p, p3) {
			t.Errorf("%v: key dependence wrong", act)
		}
	}
}

func equalParams(a, b flows.Params) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMLPInitErrors(t *testing.T) {
	for _, tc := range []struct {
		hidden  []int
		act     flows.Activation
		in, out int
	}{
		{nil, flows.ReLU, 0, 2},
		{nil, flows.ReLU, 2, 0},
		{[]int{4}, flows.Tanh, -1, 2},
		{[]int{4, 0}, flows.Tanh, 2, 2},
		{[]int{4}, flows.Activation(99), 2, 2},
		{[]int{4}, flows.Activation(-1), 2, 2},
	} {
		_, _, err := flows.MLP(tc.hidden, tc.act)(flows.NewKey(1), tc.in, tc.out)
		if err == nil || !strings.HasPrefix(err.Error(), "flows: MLP: ") {
			t.Errorf("MLP(%v, %v) %d→%d: error %v, want one starting \"flows: MLP: \"", tc.hidden, tc.act, tc.in, tc.out, err)
		}
	}
}

func TestMLPPanics(t *testing.T) {
	p, net, err := flows.MLP([]int{4}, flows.ReLU)(flows.NewKey(1), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(2, 3, []float64{1, 2, 3, 4, 5, 6})
	_, back := net.ApplyVJP(p, x)
	for name, f := range map[string]func(){
		"Apply wrong width":    func() { net.Apply(p, mat.NewDense(2, 4, nil)) },
		"ApplyVJP wrong width": func() { net.ApplyVJP(p, mat.NewDense(2, 2, nil)) },
		"Apply nil batch":      func() { net.Apply(p, nil) },
		"Apply short params":   func() { net.Apply(p[:len(p)-1], x) },
		"ApplyVJP long params": func() { net.ApplyVJP(append(p[:len(p):len(p)], 0), x) },
		"pullback wrong dy":    func() { back(mat.NewDense(2, 3, nil), make(flows.Params, len(p))) },
		"pullback short dp":    func() { back(mat.NewDense(2, 2, nil), make(flows.Params, 1)) },
	} {
		msg := panicMessage(f)
		if !strings.HasPrefix(msg, "flows: MLP") {
			t.Errorf("%s: panic %q, want one starting \"flows: MLP\"", name, msg)
		}
	}
}

// panicMessage returns what f panics with, or "" when it does not panic.
func panicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// TestMLPView checks that a batch which is a view with a row stride wider
// than its width gives the same output and gradients as a plain copy.
func TestMLPView(t *testing.T) {
	p, net, err := flows.MLP([]int{6}, flows.Tanh)(flows.NewKey(3), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p {
		p[i] += 0.1 * float64(i%7-3)
	}
	wide := mat.NewDense(3, 4, []float64{1, 2, 9, 9, -1, 0.5, 9, 9, 0.3, -0.7, 9, 9})
	view := wide.Slice(0, 3, 0, 2).(*mat.Dense)
	plain := mat.DenseCopyOf(view)
	dyWide := mat.NewDense(3, 5, []float64{1, 2, 3, 7, 7, -1, 0, 1, 7, 7, 0.5, 0.5, -2, 7, 7})
	dy := dyWide.Slice(0, 3, 0, 3).(*mat.Dense)
	yv, bv := net.ApplyVJP(p, view)
	yp, bp := net.ApplyVJP(p, plain)
	dpv, dpp := make(flows.Params, len(p)), make(flows.Params, len(p))
	dxv, dxp := bv(dy, dpv), bp(mat.DenseCopyOf(dy), dpp)
	if !mat.Equal(yv, yp) || !mat.Equal(dxv, dxp) || !equalParams(dpv, dpp) {
		t.Error("a strided view gives different results from a copy")
	}
}
