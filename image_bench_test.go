package flows_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
)

// BenchmarkGlowStep times one training step (log density and its full
// pullback) on a batch of 64 MNIST-shaped images: of the default Glow in
// both precisions, of a wider one, and of examples/glow's long run (8 steps,
// hidden 64, a residual block, float32). Uniform noise stands in for the
// data: the work does not depend on it.
func BenchmarkGlowStep(b *testing.B) {
	shape := flows.Shape{C: 1, H: 28, W: 28}
	for _, cfg := range []flows.GlowConfig{{}, {Precision: flows.Float32}, {Hidden: 64, Steps: 8}, {Hidden: 64, Steps: 8, Blocks: 1, Precision: flows.Float32}} {
		name := fmt.Sprintf("steps=%d/hidden=%d/%v", max(cfg.Steps, 4), max(cfg.Hidden, 32), cfg.Precision)
		if cfg.Blocks > 0 {
			name = fmt.Sprintf("steps=%d/hidden=%d/blocks=%d/%v", cfg.Steps, cfg.Hidden, cfg.Blocks, cfg.Precision)
		}
		b.Run(name, func(b *testing.B) {
			const n = 64
			p, d, x := glowBatch(b, shape, cfg, n)
			dp := make(flows.Params, len(p))
			w := make([]float64, n)
			for i := range w {
				w[i] = -1.0 / n
			}
			benchCPU(b, func() {
				_, back := d.LogPDFVJP(p, x, nil)
				back(w, dp, nil)
			})
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// glowBatch returns a Glow of cfg on images of shape with a standard
// normal prior, and n images of uniform noise on (−0.5, 0.5) its ActNorms
// were initialised from.
func glowBatch(tb testing.TB, shape flows.Shape, cfg flows.GlowConfig, n int) (flows.Params, flows.Distribution, *mat.Dense) {
	tb.Helper()
	p, d, err := flows.Flow(flows.Glow(shape, cfg), flows.Normal())(flows.NewKey(1), shape.Size(), 0)
	if err != nil {
		tb.Fatal(err)
	}
	r := flows.NewKey(2).Rand()
	x := mat.NewDense(n, shape.Size(), nil)
	for i := range n {
		for j := range shape.Size() {
			x.Set(i, j, r.Float64()-0.5)
		}
	}
	flows.InitFromData(d, p, x, nil)
	return p, d, x
}

// BenchmarkConvNet times the forward and backward passes (input and
// parameter gradients) of a coupling's conditioner on a batch of 64 images:
// at Glow's first MNIST scale (2 kept channels of 14×14 in, 4 out) and a
// residual block, hidden 32, so the convs are 2→32, 32→32, 32→32, 32→4,
// all 3×3. scripts/conv_torch.py times the same convs in PyTorch.
func BenchmarkConvNet(b *testing.B) {
	for _, c := range []struct {
		cin, cout, h, hidden, blocks int
		prec                         flows.Precision
	}{{2, 4, 14, 32, 1, flows.Float64}, {4, 8, 7, 32, 1, flows.Float64}, {2, 4, 14, 32, 1, flows.Float32}, {4, 8, 7, 32, 1, flows.Float32}} {
		name := fmt.Sprintf("in=%dx%dx%d/hidden=%d/blocks=%d/%v", c.cin, c.h, c.h, c.hidden, c.blocks, c.prec)
		b.Run(name, func(b *testing.B) {
			const n = 64
			hw := c.h * c.h
			p, net, err := flows.ConvNet(c.h, c.h, flows.ConvNetConfig{Hidden: c.hidden, Blocks: c.blocks, Precision: c.prec})(flows.NewKey(1), c.cin*hw, c.cout*hw)
			if err != nil {
				b.Fatal(err)
			}
			x, dy := randBatch(2, n, c.cin*hw), randBatch(3, n, c.cout*hw)
			dp := make(flows.Params, len(p))
			benchCPU(b, func() {
				_, back := net.ApplyVJP(p, x)
				back(dy, dp)
			})
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// TestGlowStepMemory: a training step (log density and its full pullback)
// of the default Glow, in both precisions, on a batch of 64 MNIST-shaped
// images allocates under 1 GiB in all, the bound on a step's
// memory (allocation bounds the live memory from above). Measured: about
// 110 MiB in float64.
func TestGlowStepMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a Glow step on 64 images")
	}
	shape := flows.Shape{C: 1, H: 28, W: 28}
	for _, prec := range []flows.Precision{flows.Float64, flows.Float32} {
		const n = 64
		p, d, x := glowBatch(t, shape, flows.GlowConfig{Precision: prec}, n)
		dp := make(flows.Params, len(p))
		w := make([]float64, n)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, back := d.LogPDFVJP(p, x, nil)
		back(w, dp, nil)
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got >= 1<<30 {
			t.Errorf("%v: a step on %d images allocated %d MiB, want under 1 GiB", prec, n, got>>20)
		} else {
			t.Logf("%v: a step on %d images allocated %d MiB", prec, n, got>>20)
		}
	}
}
