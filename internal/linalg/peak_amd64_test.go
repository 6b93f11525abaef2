//go:build amd64 && !purego

package linalg

import (
	"runtime"
	"sync"
	"testing"
)

// BenchmarkPeakF32 measures the machine's float32 peak: fmaPeakAVX512F32,
// 24 independent 16-lane fused multiply-adds per iteration on registers
// only, on one goroutine per core (GOMAXPROCS), in GFLOP/s (2 flops per
// lane) of wall time and of CPU time (cpu-GFLOP/s: one core's peak, times
// the cores, whatever else the machine runs). It is the ceiling that
// BenchmarkGemmF32's GFLOP/s are a fraction of; run it with the same -cpu.
func BenchmarkPeakF32(b *testing.B) {
	if !hasAVX512 {
		b.Skip("no AVX-512")
	}
	const iters = 1 << 20 // 805 Mflop a call
	procs := runtime.GOMAXPROCS(0)
	var sink float32
	c0 := cpuNanos()
	for b.Loop() {
		var wg sync.WaitGroup
		sums := make([]float32, procs)
		for g := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sums[g] = fmaPeakAVX512F32(iters)
			}()
		}
		wg.Wait()
		sink += sums[0]
	}
	if sink != sink {
		b.Fatal("NaN")
	}
	flops := float64(procs) * iters * 24 * 16 * 2 * float64(b.N)
	reportCPU(b, flops, c0)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
