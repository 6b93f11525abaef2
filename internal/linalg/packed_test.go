package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPackedMatchesGemm: MulAdd gives Gemm's c = a·B + c bit for bit, for
// row counts around every kernel's tile (and the row kernel's), widths
// around the panels' (16, 64), and k across one and several k-blocks and
// the 4 KiB stride that packs every row panel, with the default kernel
// choice and with each kernel forced as KernelEnv forces it.
func TestPackedMatchesGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	saved, savedForced := defaultKernel, forced
	defer func() { defaultKernel, forced = saved, savedForced }()
	choices := []*kernelInfo{nil}
	for _, kn := range kernels() {
		if kn.mr > 1 { // the row kernel is never a default
			choices = append(choices, kn)
		}
	}
	for _, kn := range choices {
		if kn == nil {
			defaultKernel, forced = saved, savedForced
		} else {
			defaultKernel, forced = kn, true
		}
		name := "default"
		if kn != nil {
			name = kn.name
		}
		for _, k := range []int{1, 3, 8, 64, 129, 300, 512} {
			for _, n := range []int{1, 5, 8, 16, 17, 64, 70, 130} {
				b := randSlice(rng, k*n)
				pb := PackB(k, n, b)
				for _, m := range []int{1, 2, 4, 5, 6, 7, 11, 12, 13, 16, 25, 40} {
					a, c0 := randSlice(rng, m*k), randSlice(rng, m*n)
					want := slices.Clone(c0)
					gemm(nil, false, false, m, n, k, 1, a, b, 1, want, 1)
					got := slices.Clone(c0)
					pb.MulAdd(m, a, got)
					if i := firstDiff(got, want); i >= 0 {
						t.Fatalf("%s: m=%d n=%d k=%d: c[%d] = %v, Gemm %v", name, m, n, k, i, got[i], want[i])
					}
					// beta = 0: c is not read (NaN stays out).
					gemm(nil, false, false, m, n, k, 1, a, b, 0, want, 1)
					for i := range got {
						got[i] = math.NaN()
					}
					pb.Mul(m, a, got)
					if i := firstDiff(got, want); i >= 0 {
						t.Fatalf("%s: Mul, m=%d n=%d k=%d: c[%d] = %v, Gemm %v", name, m, n, k, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// firstDiff returns the first index where a and b differ in bits, or −1.
func firstDiff(a, b []float64) int {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestPackedNoAllocs: MulAdd allocates nothing.
func TestPackedNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, m := range []int{1, 16, 100} {
		pb := PackB(64, 70, randSlice(rng, 64*70))
		a, c := randSlice(rng, m*64), randSlice(rng, m*70)
		if got := testing.AllocsPerRun(20, func() { pb.MulAdd(m, a, c) }); got != 0 {
			t.Errorf("m=%d: %v allocations per call, want 0", m, got)
		}
	}
}

// BenchmarkPacked compares MulAdd with GemmSerial on the small blocks of a
// scoring call (rows × k×n of a MADE [64, 64] on 8 columns and RealNVP's
// 128-unit layer).
func BenchmarkPacked(b *testing.B) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, s := range []struct{ m, k, n int }{{1, 64, 64}, {16, 64, 64}, {16, 64, 16}, {16, 8, 64}, {128, 128, 128}, {128, 128, 8}} {
		x, w := randSlice(rng, s.m*s.k), randSlice(rng, s.k*s.n)
		c := make([]float64, s.m*s.n)
		pb := PackB(s.k, s.n, w)
		name := fmt.Sprintf("m=%d/k=%d/n=%d", s.m, s.k, s.n)
		b.Run(name+"/gemm", func(b *testing.B) {
			c0 := cpuNanos()
			for b.Loop() {
				GemmSerial(false, false, s.m, s.n, s.k, 1, x, w, 1, c)
			}
			b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
		})
		b.Run(name+"/packed", func(b *testing.B) {
			c0 := cpuNanos()
			for b.Loop() {
				pb.MulAdd(s.m, x, c)
			}
			b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}
