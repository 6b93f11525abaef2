package flows

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/frozen"
	"github.com/gonormflows/flows/internal/linalg"
)

// mlpRun returns an MLP's output, dL/dx and dL/dp (for dL/dy = dy) at p on
// x, by Apply and by ApplyVJP's pullback, concatenated.
func mlpRun(net Net, p Params, x, dy *mat.Dense) []float64 {
	y, back := net.ApplyVJP(p, x)
	dp := make(Params, len(p))
	dx := back(dy, dp)
	out := append(append(append([]float64(nil), y.RawMatrix().Data...), dx.RawMatrix().Data...), dp...)
	return append(out, net.Apply(p, x).RawMatrix().Data...)
}

// TestFrozenPacksBits: with its parameters frozen (frozen.Freeze, as
// optim.NLL does for a step), an MLP packs each layer's W and Wᵀ once and
// multiplies by the packs; its outputs, input and parameter gradients are
// bit for bit those of the unfrozen path, in both precisions, for every
// activation (SiLU keeps pre-activations), hidden widths of one and two
// k-blocks (300 > 256), narrow and wide outputs, batches of one row, a
// chunk and a thousand rows (the row tasks), called on a sub-slice of the
// frozen vector as a coupling calls it. The packs are built once per step
// and reused; a pullback run after Release takes the unfrozen path (same
// bits), and the next step refills the released packs in place. Float64
// packs are skipped in the openblas build (its Gemm is OpenBLAS's).
func TestFrozenPacksBits(t *testing.T) {
	for _, pr := range []Precision{Float64, Float32} {
		for _, act := range []Activation{ReLU, SiLU, Tanh} {
			for _, shape := range []struct {
				in, out int
				hidden  []int
			}{
				{4, 8, []int{64, 64}}, {3, 40, []int{300}}, {5, 2, nil},
			} {
				p0, m, err := newMLP(shape.hidden, act, InitDefault, pr, NewKey(1), shape.in, shape.out)
				if err != nil {
					t.Fatal(err)
				}
				net := m.net()
				rng := NewKey(2).Rand()
				// p inside a longer vector, as a layer's parameters are.
				all := make(Params, len(p0)+7)
				p := all[3 : 3+len(p0)]
				for i := range p {
					p[i] = p0[i] + 0.1*rng.NormFloat64()
				}
				for _, n := range []int{1, 128, 1000} {
					where := fmt.Sprintf("%v/%v/%d→%v→%d/n=%d", pr, act, shape.in, shape.hidden, shape.out, n)
					x, dy := mat.NewDense(n, shape.in, nil), mat.NewDense(n, shape.out, nil)
					for i := range n {
						for j := range shape.in {
							x.Set(i, j, rng.NormFloat64())
						}
						for j := range shape.out {
							dy.Set(i, j, rng.NormFloat64())
						}
					}
					want := mlpRun(net, p, x, dy)
					if m.packs(p) != nil {
						t.Fatalf("%s: packs without a frozen step", where)
					}
					step := frozen.Freeze(all)
					packs := m.packs(p)
					usable := pr == Float32 || linalg.Backend() != "openblas"
					if usable != (packs != nil) {
						t.Fatalf("%s: packs %v, want them: %v", where, packs != nil, usable)
					}
					got := mlpRun(net, p, x, dy)
					y, back := net.ApplyVJP(p, x)
					if again := m.packs(p); usable && &again[0] != &packs[0] {
						t.Errorf("%s: packs rebuilt within one step", where)
					}
					step.Release()
					dp := make(Params, len(p))
					late := append(append(append([]float64(nil), y.RawMatrix().Data...), back(dy, dp).RawMatrix().Data...), dp...)
					if i := sameBits(got, want); i >= 0 {
						t.Fatalf("%s: frozen result [%d] = %v, unfrozen %v", where, i, got[i], want[i])
					}
					if i := sameBits(late, want[:len(late)]); i >= 0 {
						t.Fatalf("%s: pullback after Release [%d] = %v, unfrozen %v", where, i, late[i], want[i])
					}
					if !usable {
						continue
					}
					next := frozen.Freeze(all)
					if refill := m.packs(p); &refill[0] != &packs[0] || !samePackStorage(refill, packs) {
						t.Errorf("%s: the next step did not refill the released packs in place", where)
					}
					next.Release()
				}
			}
		}
	}
}

// samePackStorage reports whether two layer packs (the same slice,
// refilled) hold the same Packed values.
func samePackStorage(a, b []packedW) bool {
	for l := range a {
		if a[l] != b[l] {
			return false
		}
	}
	return true
}
