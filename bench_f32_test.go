package flows_test

import (
	"fmt"
	"testing"

	"github.com/gonormflows/flows"
)

// The float32 mode's benchmarks: the models of BenchmarkMAFStep,
// BenchmarkRealNVPStep and BenchmarkNSFCouplingStep, and of BenchmarkGrid,
// with their nets' products in Float32 (prec=float32), and in Float64
// (prec=float64, the same models as those benchmarks) for a side-by-side
// run.

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

// gridModelsPrec are gridModels (prepared_test.go) with their nets in
// the precision pr: the same models for Float64.
func gridModelsPrec(pr flows.Precision) []struct {
	name   string
	dim, h int
	init   flows.DistInitFunc
} {
	nsf := func(hidden int) flows.InitFunc {
		var layers []flows.InitFunc
		for i := range 8 {
			if i > 0 {
				layers = append(layers, flows.Reverse())
			}
			net := flows.MLPWith(flows.MLPConfig{Hidden: []int{hidden, hidden}, Act: flows.ReLU, Precision: pr})
			layers = append(layers, flows.NeuralSplineCoupling(net, flows.SplineConfig{Bins: 8, Bound: 3}))
		}
		return flows.Serial(layers...)
	}
	return []struct {
		name   string
		dim, h int
		init   flows.DistInitFunc
	}{
		{"maf", 8, 128, mafFlowPrec(128, pr)},
		{"maf", 64, 128, mafFlowPrec(128, pr)},
		{"rnvp", 8, 128, flows.Flow(realNVPPrec(8, 128, pr), flows.Normal())},
		{"rnvp", 8, 512, flows.Flow(realNVPPrec(8, 512, pr), flows.Normal())},
		{"rnvp", 64, 128, flows.Flow(realNVPPrec(8, 128, pr), flows.Normal())},
		{"rqs", 8, 128, flows.Flow(nsf(128), flows.Normal())},
	}
}

// BenchmarkGridPrec times LogPDF (op=density) and Sample (op=sample) on
// 10,000 rows of each grid model, as BenchmarkGrid does, in float32 mode
// prepared (path=prepared, what a loaded model runs: PrepareDistribution)
// and unprepared (path=plain), and in float64 unprepared; BenchmarkGrid
// has float64 prepared. It reports rows/s (wall time) and cpu-ns/op (all
// threads; see benchCPU).
func BenchmarkGridPrec(b *testing.B) {
	const n = 10000
	for _, pr := range precisions {
		for _, g := range gridModelsPrec(pr) {
			p, d, pd, x := gridSetup(b, g.init, g.dim, n)
			for _, path := range []string{"prepared", "plain"} {
				if pr == flows.Float64 && path == "prepared" {
					continue // BenchmarkGrid
				}
				density := func() { pd.LogPDF(x, nil) }
				sample := func() { pd.Sample(flows.NewKey(3), n, nil) }
				if path == "plain" {
					density = func() { d.LogPDF(p, x, nil) }
					sample = func() { d.Sample(flows.NewKey(3), p, n, nil) }
				}
				name := fmt.Sprintf("prec=%v/model=%s/dim=%d/hidden=%d/path=%s", pr, g.name, g.dim, g.h, path)
				for _, o := range []struct {
					op string
					f  func()
				}{{"density", density}, {"sample", sample}} {
					b.Run(name+"/op="+o.op, func(b *testing.B) {
						benchCPU(b, o.f)
						b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
					})
				}
			}
		}
	}
}

// BenchmarkDensityPrec times the unprepared log density (LogPDF at p on
// every call) of 10,000 rows of the MAF and the RealNVP in both
// precisions, in rows/s: the figures of earlier sections of BENCHMARKS.md.
// Prepared scoring, what a loaded model runs, is BenchmarkGrid's (float64)
// and BenchmarkGridPrec's.
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
