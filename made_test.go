package flows_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
)

var madeOrders = []flows.Order{flows.NaturalOrder, flows.ReversedOrder, flows.RandomOrder}

func TestMADEConformance(t *testing.T) {
	for _, dim := range []int{1, 2, 5} {
		for _, hidden := range [][]int{{6}, {6, 5}} {
			for _, order := range madeOrders {
				for _, k := range []int{1, 2} {
					act := flows.Tanh
					if k == 2 {
						act = flows.SiLU // the activation that keeps its pre-activation
					}
					flowstest.TestNet(t, flowstest.Net{
						Name: fmt.Sprintf("MADE/dim=%d/hidden=%v/%v/k=%d/%v", dim, hidden, order, k, act),
						Init: flows.MADE(flows.MADEConfig{Hidden: hidden, Act: act, Order: order}),
						In:   dim, Out: k * dim,
					})
				}
			}
		}
	}
	// No hidden layer: a masked affine map.
	flowstest.TestNet(t, flowstest.Net{Name: "MADE/dim=4/no-hidden", Init: flows.MADE(flows.MADEConfig{}), In: 4, Out: 8})
	// Sorted degrees: hidden layers of several groups of columns, so that
	// the products skip blocks (see madeblocks.go; the float32 products
	// against the float64 ones: TestMADESortedSkipMatchesFull).
	for _, order := range madeOrders {
		cfg := flows.MADESkipAlways(flows.MADEConfig{Hidden: []int{70, 40}, Act: flows.SiLU, Order: order, Degrees: flows.SortedDegrees})
		flowstest.TestNet(t, flowstest.Net{Name: fmt.Sprintf("MADE/sorted/dim=5/%v", order), Init: flows.MADE(cfg), In: 5, Out: 10})
	}
	flowstest.TestNet(t, flowstest.Net{Name: "MADE/sorted/dim=1", Init: flows.MADE(flows.MADESkipAlways(flows.MADEConfig{Hidden: []int{40}, Act: flows.Tanh, Degrees: flows.SortedDegrees})), In: 1, Out: 2})
}

// madeJacobian returns, for a MADE net with in = dim and out = k·dim at
// parameters p, the Jacobian ∂y/∂x (out×dim) of every row of x by central
// finite differences, and the sum of their absolute values.
func madeJacobian(net flows.Net, p flows.Params, x *mat.Dense, dim, out int) (sumAbs [][]float64, perRow [][][]float64) {
	n, _ := x.Dims()
	sumAbs = make([][]float64, out)
	for o := range sumAbs {
		sumAbs[o] = make([]float64, dim)
	}
	for r := 0; r < n; r++ {
		row := mat.NewDense(1, dim, mat.Row(nil, r, x))
		jac := make([][]float64, out)
		for o := range jac {
			jac[o] = make([]float64, dim)
		}
		for j := 0; j < dim; j++ {
			v := row.At(0, j)
			const h = 1e-4 // any step works: the test looks at exact zeros and at clear non-zeros
			row.Set(0, j, v+h)
			yp := net.Apply(p, row)
			row.Set(0, j, v-h)
			ym := net.Apply(p, row)
			row.Set(0, j, v)
			for o := 0; o < out; o++ {
				d := (yp.At(0, o) - ym.At(0, o)) / (2 * h)
				jac[o][j] = d
				sumAbs[o][j] += math.Abs(d)
			}
		}
		perRow = append(perRow, jac)
	}
	return sumAbs, perRow
}

// checkAutoregressive checks the autoregressive property of a MADE made
// with every hidden width at least dim−1, from its finite-difference
// Jacobian at perturbed parameters: it finds the ordering from the Jacobian
// itself (the input at position t has exactly t inputs its outputs depend
// on), checks that it is a permutation (and want, when not nil), and then
// that output k·dim+i depends on input j exactly when j comes before i:
// the forbidden entries exactly zero in every row, the allowed ones not
// zero. It returns the ordering found (perm[t] = input at position t).
func checkAutoregressive(t *testing.T, name string, cfg flows.MADEConfig, key flows.Key, dim, k int, want []int) []int {
	t.Helper()
	out := k * dim
	p0, net, err := flows.MADE(cfg)(key, dim, out)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// Perturb every parameter, the masked entries included, by O(1): the
	// masked entries must still not matter, and the zero last layer of the
	// initial parameters would hide every dependence.
	rng := flows.NewKey(77).Rand()
	p := slices.Clone(p0)
	for i := range p {
		p[i] += rng.NormFloat64()
	}
	x := mat.NewDense(4, dim, nil)
	for i := 0; i < 4; i++ {
		for j := 0; j < dim; j++ {
			x.Set(i, j, rng.NormFloat64())
		}
	}
	sumAbs, perRow := madeJacobian(net, p, x, dim, out)

	// pos[i] = the number of inputs output i (block 0) depends on.
	pos := make([]int, dim)
	perm := make([]int, dim)
	for i := range perm {
		perm[i] = -1
	}
	for i := 0; i < dim; i++ {
		for j := 0; j < dim; j++ {
			if sumAbs[i][j] != 0 {
				pos[i]++
			}
		}
		if pos[i] >= dim || perm[pos[i]] >= 0 {
			t.Errorf("%s: the Jacobian does not come from an ordering: dependence counts %v", name, pos)
			return nil
		}
		perm[pos[i]] = i
	}
	if want != nil && !slices.Equal(perm, want) {
		t.Errorf("%s: ordering %v, want %v", name, perm, want)
	}
	bad := 0
	for o := 0; o < out; o++ {
		i := o % dim
		for j := 0; j < dim; j++ {
			allowed := pos[j] < pos[i]
			switch {
			case allowed && !(sumAbs[o][j] > 0):
				t.Errorf("%s: output %d (block %d, input %d) does not depend on input %d, which comes before", name, o, o/dim, i, j)
				bad++
			case !allowed:
				for r, jac := range perRow {
					if jac[o][j] != 0 {
						t.Errorf("%s: row %d: ∂y[%d]/∂x[%d] = %g, want exactly 0 (block %d, input %d at position %d, input %d at position %d)",
							name, r, o, j, jac[o][j], o/dim, i, pos[i], j, pos[j])
						bad++
					}
				}
			}
			if bad > 10 {
				t.Fatalf("%s: too many failures", name)
			}
		}
	}
	return perm
}

// TestMADEAutoregressive checks the property MADE exists for, on the
// Jacobian, for each order, one to three hidden layers and several
// numbers of outputs per input. The activations are smooth (Tanh, SiLU) so
// that an allowed dependence is never cut by a dead unit; ReLU, whose dead
// units can cut any given dependence at a given point, is checked for the
// forbidden entries only (TestMADEForbiddenReLU).
func TestMADEAutoregressive(t *testing.T) {
	for _, dim := range []int{1, 2, 3, 5, 7} {
		for _, hidden := range [][]int{nil, {max(dim-1, 1)}, {2 * dim, dim + 3}, {dim, 9, dim}} {
			for _, order := range madeOrders {
				for _, k := range []int{1, 2, 3} {
					for _, act := range []flows.Activation{flows.Tanh, flows.SiLU} {
						name := fmt.Sprintf("dim=%d/hidden=%v/%v/k=%d/%v", dim, hidden, order, k, act)
						for _, deg := range []flows.Degrees{flows.CyclicDegrees, flows.SortedDegrees} {
							cfg := flows.MADEConfig{Hidden: hidden, Act: act, Order: order, Degrees: deg}
							if deg == flows.SortedDegrees {
								cfg = flows.MADESkipAlways(cfg) // these widths are below the skipping's
							}
							checkAutoregressive(t, name+"/"+deg.String(), cfg, flows.NewKey(uint64(dim)), dim, k, madeWantPerm(order, dim))
						}
					}
				}
			}
		}
	}
}

// madeWantPerm returns the ordering of NaturalOrder and ReversedOrder
// (perm[t] = the input at position t), nil for RandomOrder.
func madeWantPerm(order flows.Order, dim int) []int {
	var want []int
	switch order {
	case flows.NaturalOrder:
		want = make([]int, dim)
		for i := range want {
			want[i] = i
		}
	case flows.ReversedOrder:
		want = make([]int, dim)
		for i := range want {
			want[i] = dim - 1 - i
		}
	}
	return want
}

// TestMADEForbiddenReLU checks, for ReLU, that the outputs for input i are
// exactly independent of the inputs at or after i's position.
func TestMADEForbiddenReLU(t *testing.T) {
	const dim, k = 6, 2
	for _, order := range []flows.Order{flows.NaturalOrder, flows.ReversedOrder} {
		for _, hidden := range [][]int{{5}, {12, 7}} {
			p, net, err := flows.MADE(flows.MADEConfig{Hidden: hidden, Act: flows.ReLU, Order: order})(flows.NewKey(1), dim, k*dim)
			if err != nil {
				t.Fatal(err)
			}
			rng := flows.NewKey(2).Rand()
			for i := range p {
				p[i] += rng.NormFloat64()
			}
			x := mat.NewDense(5, dim, nil)
			for i := 0; i < 5; i++ {
				for j := 0; j < dim; j++ {
					x.Set(i, j, rng.NormFloat64())
				}
			}
			pos := make([]int, dim)
			for t, i := range madeWantPerm(order, dim) {
				pos[i] = t
			}
			_, perRow := madeJacobian(net, p, x, dim, k*dim)
			for r, jac := range perRow {
				for o := range jac {
					for j, v := range jac[o] {
						if pos[j] >= pos[o%dim] && v != 0 {
							t.Errorf("%v/hidden=%v: row %d: ∂y[%d]/∂x[%d] = %g, want exactly 0", order, hidden, r, o, j, v)
						}
					}
				}
			}
		}
	}
}

// TestMADERandomOrder checks that RandomOrder draws its ordering from the
// key: the same key gives the same ordering, and different keys give
// different ones.
func TestMADERandomOrder(t *testing.T) {
	const dim = 6
	cfg := flows.MADEConfig{Hidden: []int{10}, Act: flows.Tanh, Order: flows.RandomOrder}
	seen := map[string]bool{}
	for seed := uint64(0); seed < 6; seed++ {
		key := flows.NewKey(seed)
		a := checkAutoregressive(t, fmt.Sprint("seed ", seed), cfg, key, dim, 2, nil)
		b := checkAutoregressive(t, fmt.Sprint("seed ", seed, " again"), cfg, key, dim, 2, nil)
		if !slices.Equal(a, b) {
			t.Errorf("seed %d: orderings %v and %v from the same key", seed, a, b)
		}
		seen[fmt.Sprint(a)] = true
	}
	if len(seen) < 3 {
		t.Errorf("6 keys gave only %d different orderings: %v", len(seen), seen)
	}
}

// TestMADENarrowHidden checks hidden layers narrower than dim−1: the outputs
// still depend only on inputs before theirs, and every output but the first
// input's depends on something.
func TestMADENarrowHidden(t *testing.T) {
	const dim, k = 7, 2
	for _, hidden := range [][]int{{2}, {3, 2}, {1, 4}} {
		p0, net, err := flows.MADE(flows.MADEConfig{Hidden: hidden, Act: flows.Tanh})(flows.NewKey(1), dim, k*dim)
		if err != nil {
			t.Fatal(err)
		}
		rng := flows.NewKey(2).Rand()
		for i := range p0 {
			p0[i] += rng.NormFloat64()
		}
		x := mat.NewDense(3, dim, nil)
		for i := 0; i < 3; i++ {
			for j := 0; j < dim; j++ {
				x.Set(i, j, rng.NormFloat64())
			}
		}
		sumAbs, _ := madeJacobian(net, p0, x, dim, k*dim)
		for o := range sumAbs {
			i := o % dim
			any := false
			for j, v := range sumAbs[o] {
				if j >= i && v != 0 {
					t.Errorf("hidden=%v: output %d depends on input %d ≥ %d", hidden, o, j, i)
				}
				any = any || v != 0
			}
			if i > 0 && !any {
				t.Errorf("hidden=%v: output %d (input %d) depends on nothing", hidden, o, i)
			}
		}
	}
}

// madeTestMasks rebuilds MADE's masks from the recipe documented on MADE
// (natural order): input i has degree i+1, hidden unit k degree
// 1 + k mod max(dim−1, 1), output column c degree c mod dim + 1; a weight
// into a hidden unit is used when the degrees satisfy a ≤ b, into an output
// when a < b. It returns, for every parameter, whether it is a masked
// (unused) weight.
func madeTestMasks(dim int, hidden []int, k int) []bool {
	degs := [][]int{make([]int, dim)}
	for i := range degs[0] {
		degs[0][i] = i + 1
	}
	for _, h := range hidden {
		d := make([]int, h)
		for u := range d {
			d[u] = 1 + u%max(dim-1, 1)
		}
		degs = append(degs, d)
	}
	outDeg := make([]int, k*dim)
	for c := range outDeg {
		outDeg[c] = c%dim + 1
	}
	degs = append(degs, outDeg)
	var masked []bool
	for l := 0; l+1 < len(degs); l++ {
		last := l+2 == len(degs)
		for _, a := range degs[l] {
			for _, b := range degs[l+1] {
				used := a <= b
				if last {
					used = a < b
				}
				masked = append(masked, !used)
			}
		}
		masked = append(masked, make([]bool, len(degs[l+1]))...) // biases are never masked
	}
	return masked
}

// TestMADEMaskedWeights checks the documented layout and masks: masked
// weights are zero at init, never read (NaN there changes nothing) and get
// exactly zero gradient; every other weight of a hidden layer is drawn.
func TestMADEMaskedWeights(t *testing.T) {
	for _, c := range []struct {
		dim, k int
		hidden []int
	}{{1, 2, []int{3}}, {4, 2, []int{5, 3}}, {5, 3, []int{8}}, {3, 1, nil}} {
		name := fmt.Sprintf("dim=%d/k=%d/hidden=%v", c.dim, c.k, c.hidden)
		p0, net, err := flows.MADE(flows.MADEConfig{Hidden: c.hidden, Act: flows.SiLU})(flows.NewKey(3), c.dim, c.k*c.dim)
		if err != nil {
			t.Fatal(err)
		}
		masked := madeTestMasks(c.dim, c.hidden, c.k)
		if len(masked) != len(p0) {
			t.Fatalf("%s: %d parameters, the documented layout has %d", name, len(p0), len(masked))
		}
		rng := flows.NewKey(4).Rand()
		p := slices.Clone(p0)
		pNaN := slices.Clone(p0)
		for i := range p {
			if masked[i] {
				if p0[i] != 0 {
					t.Errorf("%s: masked parameter %d is %g at init, want 0", name, i, p0[i])
				}
				pNaN[i] = math.NaN()
				continue
			}
			v := 0.5 * rng.NormFloat64()
			p[i] += v
			pNaN[i] += v
		}
		x := mat.NewDense(6, c.dim, nil)
		dy := mat.NewDense(6, c.k*c.dim, nil)
		for i := 0; i < 6; i++ {
			for j := 0; j < c.dim; j++ {
				x.Set(i, j, rng.NormFloat64())
			}
			for j := 0; j < c.k*c.dim; j++ {
				dy.Set(i, j, rng.NormFloat64())
			}
		}
		y, back := net.ApplyVJP(p, x)
		yNaN, backNaN := net.ApplyVJP(pNaN, x)
		if !mat.Equal(y, yNaN) || !mat.Equal(net.Apply(pNaN, x), y) {
			t.Errorf("%s: NaN in the masked weights changed the output", name)
		}
		dp := make(flows.Params, len(p))
		dpNaN := make(flows.Params, len(p))
		dx := back(dy, dp)
		dxNaN := backNaN(dy, dpNaN)
		if !mat.Equal(dx, dxNaN) || !slices.Equal(dp, dpNaN) {
			t.Errorf("%s: NaN in the masked weights changed the gradients", name)
		}
		for i, m := range masked {
			if m && dp[i] != 0 {
				t.Errorf("%s: masked parameter %d has gradient %g, want exactly 0", name, i, dp[i])
			}
		}
	}
}

func TestMADEZeroAtInit(t *testing.T) {
	for _, dim := range []int{1, 3} {
		p, net, err := flows.MADE(flows.MADEConfig{Hidden: []int{4, 4}, Act: flows.ReLU, Order: flows.RandomOrder})(flows.NewKey(5), dim, 2*dim)
		if err != nil {
			t.Fatal(err)
		}
		x := mat.NewDense(3, dim, nil)
		for i := 0; i < 3; i++ {
			for j := 0; j < dim; j++ {
				x.Set(i, j, float64(i-j)+0.5)
			}
		}
		if y := net.Apply(p, x); mat.Norm(y, math.Inf(1)) != 0 {
			t.Errorf("dim %d: output at init is not zero:\n%v", dim, mat.Formatted(y))
		}
	}
}

func TestMADEInitErrors(t *testing.T) {
	for _, c := range []struct {
		cfg     flows.MADEConfig
		in, out int
		want    string
	}{
		{flows.MADEConfig{}, 0, 0, "input width"},
		{flows.MADEConfig{}, 3, 4, "multiple"},
		{flows.MADEConfig{}, 3, 0, "multiple"},
		{flows.MADEConfig{Hidden: []int{4, 0}}, 3, 6, "hidden layer 1"},
		{flows.MADEConfig{Act: flows.Activation(99)}, 3, 6, "activation"},
		{flows.MADEConfig{Order: flows.Order(7)}, 3, 6, "order"},
	} {
		_, _, err := flows.MADE(c.cfg)(flows.NewKey(1), c.in, c.out)
		if err == nil || !strings.HasPrefix(err.Error(), "flows: MADE: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("MADE(%+v) %d→%d: error %v, want \"flows: MADE: …%s…\"", c.cfg, c.in, c.out, err, c.want)
		}
	}
}

// TestMADECopiesHidden checks that MADE keeps its own copy of the hidden
// widths.
func TestMADECopiesHidden(t *testing.T) {
	hidden := []int{4}
	init := flows.MADE(flows.MADEConfig{Hidden: hidden})
	hidden[0] = 0
	if _, _, err := init(flows.NewKey(1), 2, 4); err != nil {
		t.Fatal(err)
	}
}

func TestOrderString(t *testing.T) {
	for o, want := range map[flows.Order]string{flows.NaturalOrder: "NaturalOrder", flows.ReversedOrder: "ReversedOrder", flows.RandomOrder: "RandomOrder", flows.Order(9): "Order(9)"} {
		if got := o.String(); got != want {
			t.Errorf("%d: %q, want %q", int(o), got, want)
		}
	}
}

// TestMADEMasksInPlace: the dense pass reads p's weights in place when
// every masked weight is +0 and copies them masked otherwise; both give
// the same bits, in both precisions, on products large enough to be split
// over the helper pool. A −0 in each masked entry (bits not +0, value
// zero) forces the copy without changing a value.
func TestMADEMasksInPlace(t *testing.T) {
	const dim, k, n = 9, 2, 300
	hidden := []int{40, 40}
	masked := madeTestMasks(dim, hidden, k)
	for _, pr := range []flows.Precision{flows.Float64, flows.Float32} {
		p, net, err := flows.MADE(flows.MADEConfig{Hidden: hidden, Act: flows.Tanh, Precision: pr})(flows.NewKey(6), dim, k*dim)
		if err != nil {
			t.Fatal(err)
		}
		rng := flows.NewKey(7).Rand()
		for i := range p {
			if !masked[i] {
				p[i] += 0.3 * rng.NormFloat64()
			}
		}
		pNeg := slices.Clone(p)
		for i, m := range masked {
			if m {
				pNeg[i] = math.Copysign(0, -1)
			}
		}
		x, dy := mat.NewDense(n, dim, nil), mat.NewDense(n, k*dim, nil)
		for i := range n {
			for j := range dim {
				x.Set(i, j, rng.NormFloat64())
			}
			for j := range k * dim {
				dy.Set(i, j, rng.NormFloat64())
			}
		}
		y, back := net.ApplyVJP(p, x)
		yNeg, backNeg := net.ApplyVJP(pNeg, x)
		dp, dpNeg := make(flows.Params, len(p)), make(flows.Params, len(p))
		dx, dxNeg := back(dy, dp), backNeg(dy, dpNeg)
		same := func(a, b []float64) bool {
			for i := range a {
				if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
					return false
				}
			}
			return len(a) == len(b)
		}
		if !same(y.RawMatrix().Data, yNeg.RawMatrix().Data) || !same(net.Apply(p, x).RawMatrix().Data, y.RawMatrix().Data) {
			t.Errorf("%v: the output differs between in-place and masked weights", pr)
		}
		if !same(dx.RawMatrix().Data, dxNeg.RawMatrix().Data) || !same(dp, dpNeg) {
			t.Errorf("%v: the gradients differ between in-place and masked weights", pr)
		}
	}
}
