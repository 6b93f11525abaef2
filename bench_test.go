package flows_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// benchSizes are the dim/hidden/batch configurations of the performance
// issue's tables.
var benchSizes = []struct{ dim, hidden, batch int }{
	{8, 128, 256}, {8, 128, 1024}, {8, 512, 256}, {8, 512, 1024},
	{64, 128, 256}, {64, 128, 1024}, {64, 512, 256}, {64, 512, 1024},
}

// benchStep times one training step (log density, gradient, Adam update) of
// model on a standard-normal batch, reporting samples/s, ms/step and the
// process's CPU time per step (cpu-ns/op, as benchCPU does).
func benchStep(b *testing.B, init flows.DistInitFunc, dim, batch int) {
	p, model, err := init(flows.NewKey(1), dim, 0)
	if err != nil {
		b.Fatal(err)
	}
	_, normal, _ := flows.Normal()(flows.NewKey(0), dim, 0)
	data := normal.Sample(flows.NewKey(2), nil, batch, nil)
	grad := make(flows.Params, len(p))
	opt := optim.NewAdam(len(p))
	b.ReportAllocs()
	var ms runtime.MemStats
	var warm uint64 // bytes allocated when the first step was done
	steps := 0
	c0 := cpuNanos()
	for b.Loop() {
		if _, err := optim.NLL(model, p, data, nil, grad); err != nil {
			b.Fatal(err)
		}
		opt.Step(p, grad)
		if steps++; steps == 1 {
			runtime.ReadMemStats(&ms)
			warm = ms.TotalAlloc
		}
	}
	if steps > 1 {
		// The first step fills the scratch pools; the later ones show
		// what a step allocates in a training loop's steady state.
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.TotalAlloc-warm)/float64(steps-1), "steady-B/op")
	}
	b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
	perStep := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(batch)/perStep, "samples/s")
	b.ReportMetric(1e3*perStep, "ms/step")
}

// benchSample times drawing n samples from model.
func benchSample(b *testing.B, init flows.DistInitFunc, dim, n int) {
	p, model, err := init(flows.NewKey(1), dim, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		model.Sample(flows.NewKey(3), p, n, nil)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkRealNVPStep: 8 affine couplings alternating halves, each
// conditioner an MLP with two hidden ReLU layers of width H, standard
// normal prior.
func BenchmarkRealNVPStep(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("dim=%d/hidden=%d/batch=%d", s.dim, s.hidden, s.batch), func(b *testing.B) {
			benchStep(b, flows.Flow(realNVP(8, s.hidden), flows.Normal()), s.dim, s.batch)
		})
	}
}

// BenchmarkRealNVPSample draws 10,000 points from the RealNVP above.
func BenchmarkRealNVPSample(b *testing.B) {
	for _, dim := range []int{8, 64} {
		b.Run(fmt.Sprintf("dim=%d/hidden=128", dim), func(b *testing.B) {
			benchSample(b, flows.Flow(realNVP(8, 128), flows.Normal()), dim, 10000)
		})
	}
}
