package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMulRowsMatchGemm: MulRows32 on weights packed by PackB32Into (B
// stored) or PackBT32Into (B = btᵀ) gives GemmF32Of's c = a·op(b) +
// beta·c bit for bit, beta 0 and 1, a float64 and float32, for every
// kernel, row counts below and above a task and a chunk, k across one and
// several k-blocks, on one worker and on three (the row tasks); refilling
// a larger pack in place gives the same bits. MulRows on PackBInto and
// PackBTInto does the same against this package's float64 product (gemm,
// which the openblas build's Gemm bypasses).
func TestMulRowsMatchGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	defer SetWorkers(SetWorkers(0))
	big := randSlice(rng, 300*70)
	for _, kn := range kernels32() {
		for _, k := range []int{1, 8, 129, 300} {
			for _, n := range []int{1, 17, 70} {
				for _, trans := range []bool{false, true} {
					b := randSlice(rng, k*n)
					pb := packB32Into(kn, packB32Into(kn, nil, 300, 70, big, false), k, n, b, trans)
					var pb64 *Packed
					if trans {
						pb64 = PackBTInto(PackBInto(nil, 300, 70, big), k, n, b)
					} else {
						pb64 = PackBInto(PackBInto(nil, 300, 70, big), k, n, b)
					}
					for _, m := range []int{1, 13, 150, 400} {
						a := randSlice(rng, m*k)
						a32 := make([]float32, len(a))
						for i, v := range a {
							a32[i] = float32(v)
						}
						c0 := randSlice(rng, m*n)
						for _, beta := range []float64{0, 1} {
							want := slices.Clone(c0)
							gemm32(kn, false, trans, m, n, k, 1, a, b, beta, want, 1)
							want64 := slices.Clone(c0)
							gemm(nil, false, trans, m, n, k, 1, a, b, beta, want64, 1)
							for _, workers := range []int{1, 3} {
								SetWorkers(workers)
								where := fmt.Sprintf("%s: m=%d n=%d k=%d trans=%v beta=%v workers=%d", kn.name, m, n, k, trans, beta, workers)
								got := slices.Clone(c0)
								MulRows32(pb, m, a, beta, got)
								if i := firstDiff(got, want); i >= 0 {
									t.Fatalf("%s: c[%d] = %v, GemmF32 %v", where, i, got[i], want[i])
								}
								got = slices.Clone(c0)
								MulRows32(pb, m, a32, beta, got)
								if i := firstDiff(got, want); i >= 0 {
									t.Fatalf("%s, float32 a: c[%d] = %v, GemmF32 %v", where, i, got[i], want[i])
								}
								got = slices.Clone(c0)
								MulRows(pb64, m, a, beta, got)
								if i := firstDiff(got, want64); i >= 0 {
									t.Fatalf("%s, MulRows: c[%d] = %v, Gemm %v", where, i, got[i], want64[i])
								}
								if workers > 1 {
									continue
								}
								got = slices.Clone(c0)
								MulRowsSerial32(pb, m, a32, beta, got)
								if i := firstDiff(got, want); i >= 0 {
									t.Fatalf("%s, MulRowsSerial32: c[%d] = %v, GemmF32 %v", where, i, got[i], want[i])
								}
								got = slices.Clone(c0)
								MulRowsSerial(pb64, m, a, beta, got)
								if i := firstDiff(got, want64); i >= 0 {
									t.Fatalf("%s, MulRowsSerial: c[%d] = %v, Gemm %v", where, i, got[i], want64[i])
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestMulRowsNoAllocs: MulRows and MulRows32 allocate nothing on the
// caller alone, and in row tasks nothing beyond what Parallel allocates
// for as many tasks (its panic recovery).
func TestMulRowsNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops buffers")
	}
	defer SetWorkers(SetWorkers(2))
	rng := rand.New(rand.NewPCG(33, 34))
	b := randSlice(rng, 64*70)
	pb, pbt := PackB32Into(nil, 64, 70, b), PackBT32Into(nil, 70, 64, b)
	pb64 := PackBInto(nil, 64, 70, b)
	for _, m := range []int{1, 16, 400} {
		a, c := randSlice(rng, m*70), randSlice(rng, m*70)
		a32 := make([]float32, len(a))
		f := func() {
			MulRows32(pb, m, a, 1, c)
			MulRows32(pbt, m, a32, 0, c)
			MulRows(pb64, m, a, 0, c)
		}
		f()
		var want float64
		if per := rowsPerTask(m, 70, 64, defaultKernel.mr); per < m {
			tasks := blocks(m, per)
			want = testing.AllocsPerRun(20, func() {
				for range 3 {
					Parallel(tasks, func(int) {})
				}
			})
		}
		if got := testing.AllocsPerRun(20, f); got > want {
			t.Errorf("%d rows: %v allocations a call, Parallel's %v", m, got, want)
		}
	}
}

// TestPackIntoReuses: refilling a pack at least as large keeps its
// storage (a training step's packs are allocated once), for every panel
// set, and a larger shape gets new storage.
func TestPackIntoReuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	big, small := randSlice(rng, 300*70), randSlice(rng, 64*17)
	pb := PackBInto(nil, 300, 70, big)
	p16, p64 := &pb.p16[0], pb.p64
	if again := PackBTInto(pb, 64, 17, small); again != pb || &again.p16[0] != p16 || (p64 != nil && &again.p64[0] != &p64[0]) {
		t.Error("PackBTInto did not reuse the float64 pack's storage")
	}
	pb32 := PackB32Into(nil, 300, 70, big)
	p32 := &pb32.p[0]
	if again := PackBT32Into(pb32, 64, 17, small); again != pb32 || &again.p[0] != p32 {
		t.Error("PackBT32Into did not reuse the float32 pack's storage")
	}
	if grown := PackB32Into(PackB32Into(nil, 2, 3, small), 300, 70, big); len(grown.p) < 300*70 {
		t.Errorf("a larger shape got %d panel elements", len(grown.p))
	}
}

// TestMulRows32ZerosAndNaN: with beta 0, MulRows32 zeroes c and adds the
// sums; that is GemmF32's c = acc bit for bit on rows whose sums are +0
// (a zero row, products of −0), a NaN, an Inf, and on c holding NaNs,
// whatever the kernel, with k of one and two k-blocks.
func TestMulRows32ZerosAndNaN(t *testing.T) {
	for _, kn := range kernels32() {
		for _, k := range []int{7, 300} {
			const m, n = 14, 40
			rng := rand.New(rand.NewPCG(37, 38))
			b := randSlice(rng, k*n)
			a := randSlice(rng, m*k)
			clear(a[:k]) // row 0: every product +0 or −0
			for p := range k {
				a[k+p] = math.Copysign(0, -1) // row 1: −0 times b
			}
			a[2*k+3] = math.NaN()
			a[3*k+1] = math.Inf(1)
			c0 := make([]float64, m*n)
			for i := range c0 {
				c0[i] = math.NaN()
			}
			want := slices.Clone(c0)
			gemm32(kn, false, true, m, n, k, 1, a, b, 0, want, 1)
			got := slices.Clone(c0)
			MulRowsSerial32(packB32Into(kn, nil, k, n, b, true), m, a, 0, got)
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("%s, k=%d: c[%d] = %v (bits %x), GemmF32 %v (bits %x)", kn.name, k, i, got[i], math.Float64bits(got[i]), want[i], math.Float64bits(want[i]))
			}
		}
	}
}
