package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// benchShapes are named m×k×n (op(a) is m×k, op(b) k×n): the MLP shapes
// of a flow's layers (batch 256–1024, widths 8–512; at H = 512 and batch
// 1024 the forward and dx products are 1024×512×512, NN and NT, and the
// weight gradient 512×1024×512, TN) and large squares.
var benchShapes = []struct{ m, k, n int }{
	{256, 64, 256}, {256, 256, 64}, {1024, 64, 256}, {64, 1024, 256}, {1024, 256, 8},
	{256, 256, 256}, {512, 512, 512}, {1024, 512, 512}, {512, 1024, 512}, {1024, 1024, 1024},
}

// benchGemm reports GFLOP/s (2mnk flops per call, averaged over the calls)
// of f on every shape and transpose NN (X·W), TN (Xᵀ·dY) and NT (dY·Wᵀ),
// best-GFLOP/s, that of the fastest call, and cpu-GFLOP/s, flops per
// second of the process's CPU time (all threads, helpers' waiting
// included; on a shared machine the time spent waiting for a core is left
// out).
func benchGemm[T Float](b *testing.B, f func(ta, tb bool, m, n, k int, alpha float64, a, b []T, beta float64, c []float64)) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tr := range []struct {
		name   string
		ta, tb bool
	}{{"NN", false, false}, {"TN", true, false}, {"NT", false, true}} {
		for _, s := range benchShapes {
			b.Run(fmt.Sprintf("%s/%dx%dx%d", tr.name, s.m, s.k, s.n), func(b *testing.B) {
				x, y := convertSlice[T](randSlice(rng, s.m*s.k)), convertSlice[T](randSlice(rng, s.k*s.n))
				c := make([]float64, s.m*s.n)
				flop := 2 * float64(s.m) * float64(s.n) * float64(s.k)
				f(tr.ta, tr.tb, s.m, s.n, s.k, 1, x, y, 0, c) // warm up pools and helpers
				b.ResetTimer()
				fastest := time.Duration(math.MaxInt64)
				c0 := cpuNanos()
				for range b.N {
					t0 := time.Now()
					f(tr.ta, tr.tb, s.m, s.n, s.k, 1, x, y, 0, c)
					fastest = min(fastest, time.Since(t0))
				}
				reportCPU(b, flop*float64(b.N), c0)
				b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				// The fastest call: on a machine shared with other jobs, the
				// one least disturbed by them.
				b.ReportMetric(flop/fastest.Seconds()/1e9, "best-GFLOP/s")
			})
		}
	}
}

// BenchmarkGemm measures Gemm (GOMAXPROCS goroutines; run with -cpu 1 for
// one core).
func BenchmarkGemm(b *testing.B) { benchGemm(b, Gemm) }

// BenchmarkGonum measures gonum's blas64 Dgemm on the same shapes, for
// comparison.
func BenchmarkGonum(b *testing.B) { benchGemm(b, refGemm) }

// BenchmarkKernel measures each micro-kernel alone on one packed tile held
// in L1 (k = 256): the ceiling for Gemm on one core.
func BenchmarkKernel(b *testing.B) {
	const k = 256
	for _, kn := range kernels() {
		b.Run(kn.name, func(b *testing.B) {
			a := make([]float64, kn.mr*k)
			bp := make([]float64, kn.nr*k)
			c := make([]float64, kn.mr*kn.nr)
			for i := range a {
				a[i] = 1
			}
			for i := range bp {
				bp[i] = 1
			}
			// 1000 calls per iteration, so that -benchtime 20x still times
			// a few milliseconds.
			for range b.N {
				for range 1000 {
					kn.fn(k, a, 1, kn.mr, bp, kn.nr, c, kn.nr, 1, 0)
				}
			}
			b.ReportMetric(2e3*float64(kn.mr*kn.nr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGemmF32 measures GemmF32 on the same shapes.
func BenchmarkGemmF32(b *testing.B) { benchGemm(b, GemmF32) }

// BenchmarkGemmF32Of measures GemmF32Of on float32 operands (a net's
// hidden layers in Float32 mode) on the same shapes.
func BenchmarkGemmF32Of(b *testing.B) { benchGemm(b, GemmF32Of[float32, float32]) }

// convertSlice returns x converted to T.
func convertSlice[T Float](x []float64) []T {
	y := make([]T, len(x))
	for i, v := range x {
		y[i] = T(v)
	}
	return y
}

// BenchmarkKernelF32 measures each float32 micro-kernel alone on one packed
// tile held in L1 (k = 256): the ceiling for GemmF32 on one core.
func BenchmarkKernelF32(b *testing.B) {
	const k = 256
	for _, kn := range kernels32() {
		b.Run(kn.name, func(b *testing.B) {
			a := make([]float32, kn.mr32*k)
			bp := make([]float32, kn.nr32*k)
			c := make([]float64, kn.mr32*kn.nr32)
			for i := range a {
				a[i] = 1
			}
			for i := range bp {
				bp[i] = 1
			}
			c0 := cpuNanos()
			for range b.N {
				for range 1000 {
					kn.fn32(k, a, bp, c, kn.nr32, 1, 0)
				}
			}
			reportCPU(b, 2e3*float64(kn.mr32*kn.nr32*k)*float64(b.N), c0)
			b.ReportMetric(2e3*float64(kn.mr32*kn.nr32*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// reportCPU reports flops per second of the process's CPU time since c0
// (cpuNanos) as cpu-GFLOP/s, where the CPU time is known.
func reportCPU(b *testing.B, flops float64, c0 int64) {
	if ns := cpuNanos() - c0; ns > 0 {
		b.ReportMetric(flops/float64(ns), "cpu-GFLOP/s")
	}
}
