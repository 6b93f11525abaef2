package flows_test

import (
	"fmt"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/linalg"
)

// TestPreparedSortedMAF: prepared MAF layers with sorted degrees (their
// products on the used blocks of the packed weights, linalg.MulExt and
// MulExt32) give the unprepared bits, in both precisions, with and without
// a context, for hidden layers of several groups of columns and of more
// than one k-block, on 1, 16 and 300 rows, GOMAXPROCS 1 and 2.
func TestPreparedSortedMAF(t *testing.T) {
	if linalg.Backend() == "openblas" {
		t.Skip("exact bits are our kernels' promise, not OpenBLAS's")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, prec := range []flows.Precision{flows.Float64, flows.Float32} {
		for _, act := range []flows.Activation{flows.ReLU, flows.Tanh} {
			made := flows.MADESkipAlways(flows.MADEConfig{Hidden: []int{300, 70}, Act: act, Precision: prec, Degrees: flows.SortedDegrees})
			init := flows.Flow(flows.Serial(flows.MAF(made), flows.Reverse(), flows.MAF(made)), flows.Normal())
			for _, cdim := range []int{0, 2} {
				p, d, err := init(flows.NewKey(1), 9, cdim)
				if err != nil {
					t.Fatal(err)
				}
				rng := flows.NewKey(2).Rand()
				for i := range p {
					p[i] += 0.05 * rng.NormFloat64()
				}
				pd := flows.PrepareDistribution(d, p)
				for _, n := range []int{1, 16, 300} {
					x := mafNormal(flows.NewKey(uint64(n)), n, 9, 1)
					var c *mat.Dense
					if cdim > 0 {
						c = mafNormal(flows.NewKey(uint64(n+1)), n, cdim, 1)
					}
					lp, s := d.LogPDF(p, x, c), d.Sample(flows.NewKey(3), p, n, c)
					for _, procs := range []int{1, 2} {
						runtime.GOMAXPROCS(procs)
						label := fmt.Sprintf("%v/%v/context=%d/%d rows/GOMAXPROCS=%d", prec, act, cdim, n, procs)
						if !sameFloatBits(pd.LogPDF(x, c), lp) {
							t.Errorf("%s: prepared LogPDF differs", label)
						}
						if !sameFloatBits(pd.Sample(flows.NewKey(3), n, c).RawMatrix().Data, s.RawMatrix().Data) {
							t.Errorf("%s: prepared Sample differs", label)
						}
					}
				}
			}
		}
	}
}
