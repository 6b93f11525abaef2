package flows_test

import (
	"fmt"
	"testing"

	"github.com/gonormflows/flows"
)

// The float32 mode's benchmarks: the models of BenchmarkMAFStep,
// BenchmarkRealNVPStep and BenchmarkNSFCouplingStep with their nets'
// products in Float32 (prec=float32), and in Float64 (prec=float64, the
// same models as those benchmarks) for a side-by-side run.

var precisions = []flows.Precision{flows.Float64, flows.Float32}

// BenchmarkMAFStepPrec times mafFlow's training step in both precisions.
func BenchmarkMAFStepPrec(b *testing.B) {
	for _, pr := range precisions {
		for _, s := range benchSizes {
			b.Run(fmt.Sprintf("prec=%v/dim=%d/hidden=%d/batch=%d", pr, s.dim, s.hidden, s.batch), func(b *testing.B) {
				benchStep(b, mafFlowPrec(s.hidden, pr), s.dim, s.batch)
			})
		}
	}
}

// BenchmarkRealNVPStepPrec times the RealNVP's training step in both
// precisions.
func BenchmarkRealNVPStepPrec(b *testing.B) {
	for _, pr := range precisions {
		for _, s := range benchSizes {
			b.Run(fmt.Sprintf("prec=%v/dim=%d/hidden=%d/batch=%d", pr, s.dim, s.hidden, s.batch), func(b *testing.B) {
				benchStep(b, flows.Flow(realNVPPrec(8, s.hidden, pr), flows.Normal()), s.dim, s.batch)
			})
		}
	}
}

// BenchmarkNSFCouplingStepPrec times the spline coupling flow's training
// step (dim 8, hidden 128, batch 256) in both precisions.
func BenchmarkNSFCouplingStepPrec(b *testing.B) {
	for _, pr := range precisions {
		b.Run(fmt.Sprintf("prec=%v", pr), func(b *testing.B) {
			var layers []flows.InitFunc
			for i := range 8 {
				if i > 0 {
					layers = append(layers, flows.Reverse())
				}
				net := flows.MLPWith(flows.MLPConfig{Hidden: []int{128, 128}, Act: flows.ReLU, Precision: pr})
				layers = append(layers, flows.NeuralSplineCoupling(net, flows.SplineConfig{Bins: 8, Bound: 3}))
			}
			benchStep(b, flows.Flow(flows.Serial(layers...), flows.Normal()), 8, 256)
		})
	}
}

// BenchmarkDensityPrec times the log density of 10,000 rows (scoring) of
// the MAF and the RealNVP in both precisions, in rows/s.
func BenchmarkDensityPrec(b *testing.B) {
	const n = 10000
	for _, pr := range precisions {
		for _, c := range []struct {
			name   string
			flow   flows.DistInitFunc
			dim, h int
		}{
			{"MAF", mafFlowPrec(128, pr), 8, 128},
			{"MAF", mafFlowPrec(128, pr), 64, 128},
			{"RealNVP", flows.Flow(realNVPPrec(8, 512, pr), flows.Normal()), 8, 512},
		} {
			b.Run(fmt.Sprintf("prec=%v/%s/dim=%d/hidden=%d", pr, c.name, c.dim, c.h), func(b *testing.B) {
				p, d, err := c.flow(flows.NewKey(1), c.dim, 0)
				if err != nil {
					b.Fatal(err)
				}
				x := normalRows(flows.NewKey(2), n, c.dim)
				b.ReportAllocs()
				for b.Loop() {
					d.LogPDF(p, x, nil)
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
