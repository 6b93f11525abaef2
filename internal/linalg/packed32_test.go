package linalg

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPacked32MatchesGemmF32: MulAdd32 gives GemmF32Of's c = a·B + c bit
// for bit, and MulTiles32 hands over the tiles of its c = a·B, with a
// float64 and float32, for row counts around every kernel's tile and
// above a chunk (mcMax), widths around the panels', and k across one and
// several k-blocks, with the weights packed for each kernel Packed32 may
// use (packKernels32: the narrow 12×8 one too) and the products compared
// with GemmF32 on the portable kernel.
func TestPacked32MatchesGemmF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, kn := range packKernels32() {
		for _, k := range []int{1, 3, 8, 64, 129, 300} {
			for _, n := range []int{1, 5, 16, 17, 33, 70} {
				b := randSlice(rng, k*n)
				pb := packB32(kn, k, n, b)
				for _, m := range []int{1, 4, 5, 6, 7, 12, 13, 25, 150} {
					a := randSlice(rng, m*k)
					a32 := make([]float32, len(a))
					for i, v := range a {
						a32[i] = float32(v)
					}
					c0 := randSlice(rng, m*n)
					want := slices.Clone(c0)
					gemm32(goKernel, false, false, m, n, k, 1, a, b, 1, want, 1)
					got := slices.Clone(c0)
					MulAdd32(pb, m, a, got)
					if i := firstDiff(got, want); i >= 0 {
						t.Fatalf("%s: m=%d n=%d k=%d: c[%d] = %v, GemmF32 %v", kn.name, m, n, k, i, got[i], want[i])
					}
					got = slices.Clone(c0)
					MulAdd32(pb, m, a32, got)
					if i := firstDiff(got, want); i >= 0 {
						t.Fatalf("%s: float32 a, m=%d n=%d k=%d: c[%d] = %v, GemmF32 %v", kn.name, m, n, k, i, got[i], want[i])
					}
					if !pb.OneBlock() {
						continue
					}
					gemm32(goKernel, false, false, m, n, k, 1, a, b, 0, want, 1)
					for i := range got {
						got[i] = math.NaN()
					}
					seen := 0
					MulTiles32(pb, m, a32, func(i, j, rows, cols int, tile []float64, ldt int) {
						for r := range rows {
							copy(got[(i+r)*n+j:(i+r)*n+j+cols], tile[r*ldt:r*ldt+cols])
						}
						seen += rows * cols
					})
					if i := firstDiff(got, want); i >= 0 || seen != m*n {
						t.Fatalf("%s: MulTiles32, m=%d n=%d k=%d: c[%d] differs, %d of %d elements seen", kn.name, m, n, k, i, seen, m*n)
					}
				}
			}
		}
	}
}

// TestPacked32NoAllocs: MulAdd32, MulTiles32 and MulBiasReLU32 allocate nothing, with a
// float64 and a float32 a (read in place by the kernels that can).
func TestPacked32NoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops buffers")
	}
	rng := rand.New(rand.NewPCG(23, 24))
	pb := PackB32(64, 70, randSlice(rng, 64*70))
	for _, m := range []int{1, 16, 120} {
		a, c := randSlice(rng, m*64), randSlice(rng, m*70)
		sum := 0.0
		f := func(i, j, rows, cols int, tile []float64, ldt int) { sum += tile[0] }
		a32 := make([]float32, len(a))
		for i, v := range a {
			a32[i] = float32(v)
		}
		out := make([]float32, m*70)
		if got := testing.AllocsPerRun(20, func() {
			MulAdd32(pb, m, a, c)
			MulTiles32(pb, m, a, f)
			MulAdd32(pb, m, a32, c)
			MulTiles32(pb, m, a32, f)
			MulBiasReLU32(pb, m, a32, c, out)
			MulBiasReLU32(pb, m, a, c, out)
		}); got != 0 {
			t.Errorf("%d rows: %v allocations a call", m, got)
		}
	}
}

// TestMulBiasReLU32: MulBiasReLU32 gives MulTiles32's tiles passed through
// BiasReLU32 bit for bit, with a float64 and float32, for row counts
// around every kernel's tile and above a chunk, widths around the panels'
// (whole tiles run the AVX-512 kernels with the ReLU in their update, the
// others the callback's path), biases that make many sums negative, and
// a NaN in a (its row's sums are NaNs, whose sign the ReLU clears).
func TestMulBiasReLU32(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, kn := range packKernels32() {
		for _, k := range []int{1, 4, 37, 128, 256} {
			for _, n := range []int{5, 16, 32, 33, 64, 128} {
				pb := packB32(kn, k, n, randSlice(rng, k*n))
				bias := randSlice(rng, n)
				for j := range bias {
					bias[j] -= 0.5
				}
				for _, m := range []int{1, 6, 11, 12, 13, 24, 150} {
					a := randSlice(rng, m*k)
					if m > 5 {
						a[5*k+k/2] = math.NaN()
					}
					a32 := make([]float32, len(a))
					for i, v := range a {
						a32[i] = float32(v)
					}
					want := make([]float32, m*n)
					MulTiles32(pb, m, a32, func(i, j, rows, cols int, tile []float64, ldt int) {
						for r := range rows {
							BiasReLU32(want[(i+r)*n+j:(i+r)*n+j+cols], tile[r*ldt:], bias[j:])
						}
					})
					for _, in32 := range []bool{false, true} {
						got := make([]float32, m*n)
						for i := range got {
							got[i] = float32(math.Inf(-1))
						}
						if in32 {
							MulBiasReLU32(pb, m, a32, bias, got)
						} else {
							MulBiasReLU32(pb, m, a, bias, got)
						}
						for i := range got {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s: float32 a %v, m=%d n=%d k=%d: out[%d] = %v, want %v", kn.name, in32, m, n, k, i, got[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}

// packKernels32 lists the kernels Packed32 may use: kernels32 and the one
// PackB32 takes for a single column (the narrow 12×8 kernel on AVX-512
// CPUs, unless a kernel is forced).
func packKernels32() []*kernelInfo {
	ks := kernels32()
	if kn := packKernel32(1); !slices.Contains(ks, kn) {
		ks = append(ks, kn)
	}
	return ks
}

// TestMulAddReLU32: MulAddReLU32's out is MulAdd32's c passed through
// float32(max(c, 0)), bit for bit, for k across one and several k-blocks,
// with a float64 and float32, row counts around the tiles and widths
// around the panels, c starting at a bias that makes many sums negative.
func TestMulAddReLU32(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	for _, kn := range packKernels32() {
		for _, k := range []int{3, 256, 300, 512} {
			for _, n := range []int{7, 32, 40, 64} {
				pb := packB32(kn, k, n, randSlice(rng, k*n))
				for _, m := range []int{1, 12, 13, 150} {
					a := randSlice(rng, m*k)
					a32 := make([]float32, len(a))
					for i, v := range a {
						a32[i] = float32(v)
					}
					c0 := randSlice(rng, m*n)
					for i := range c0 {
						c0[i] -= 0.5 + 0.1*float64(k)
					}
					want := slices.Clone(c0)
					MulAdd32(pb, m, a32, want)
					for _, in32 := range []bool{false, true} {
						c := slices.Clone(c0)
						got := make([]float32, m*n)
						if in32 {
							MulAddReLU32(pb, m, a32, c, got)
						} else {
							MulAddReLU32(pb, m, a, c, got)
						}
						for i, v := range want {
							if w := float32(max(v, 0)); math.Float32bits(got[i]) != math.Float32bits(w) {
								t.Fatalf("%s: float32 a %v, m=%d n=%d k=%d: out[%d] = %v, want %v", kn.name, in32, m, n, k, i, got[i], w)
							}
						}
					}
				}
			}
		}
	}
}
