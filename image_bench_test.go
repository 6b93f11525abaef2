package flows_test

import (
	"fmt"
	"testing"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
)

// BenchmarkGlowStep times one training step (log density and its full
// pullback) of the default Glow on a batch of 64 MNIST-shaped images
// (uniform noise stands in for the data: the work does not depend on it).
func BenchmarkGlowStep(b *testing.B) {
	shape := flows.Shape{C: 1, H: 28, W: 28}
	for _, cfg := range []flows.GlowConfig{{}, {Hidden: 64, Steps: 8}} {
		b.Run(fmt.Sprintf("steps=%d/hidden=%d", max(cfg.Steps, 4), max(cfg.Hidden, 32)), func(b *testing.B) {
			const n = 64
			p, d, err := flows.Flow(flows.Glow(shape, cfg), flows.Normal())(flows.NewKey(1), shape.Size(), 0)
			if err != nil {
				b.Fatal(err)
			}
			r := flows.NewKey(2).Rand()
			x := mat.NewDense(n, shape.Size(), nil)
			for i := range n {
				for j := range shape.Size() {
					x.Set(i, j, r.Float64()-0.5)
				}
			}
			flows.InitFromData(d, p, x, nil)
			dp := make(flows.Params, len(p))
			w := make([]float64, n)
			for i := range w {
				w[i] = -1.0 / n
			}
			b.ReportAllocs()
			for b.Loop() {
				_, back := d.LogPDFVJP(p, x, nil)
				back(w, dp, nil)
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
