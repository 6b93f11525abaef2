package linalg

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"runtime"
	"testing"
)

// exactFMA32 is x·y + z rounded once to float32, by big.Float.
func exactFMA32(x, y, z float32) float32 {
	p := new(big.Float).SetPrec(256).SetFloat64(float64(x))
	p.Mul(p, new(big.Float).SetFloat64(float64(y)))
	p.Add(p, new(big.Float).SetFloat64(float64(z)))
	f, _ := p.Float32()
	return f
}

// TestFMA32 checks the portable fused multiply-add against big.Float on
// random operands over a wide range of exponents and on cases where
// rounding the sum to float64 first would land on a float32 tie.
func TestFMA32(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 1))
	r32 := func() float32 {
		v := float32(rng.Float64()*2-1) * float32(math.Ldexp(1, rng.IntN(60)-30))
		return v
	}
	type tc struct{ x, y, z float32 }
	cases := []tc{
		// 2²⁴+2 + (1+2⁻²³)(1−2⁻²³) = 2²⁴+3 − 2⁻⁴⁶: rounded to float64 it is
		// the tie 2²⁴+3, which rounds to even 2²⁴+4; the answer is 2²⁴+2.
		{1 + 0x1p-23, 1 - 0x1p-23, 0x1p24 + 2},
		{-(1 + 0x1p-23), 1 - 0x1p-23, -(0x1p24 + 2)},
		{1 + 0x1p-23, 1 + 0x1p-23, -1},
		{0x1p-149, 0.5, 0}, {0x1p-149, 1.5, 0x1p-149}, {3, 0x1p-130, -0x1p-128},
		{float32(math.Inf(1)), 2, 1}, {2, 3, float32(math.Inf(-1))},
		{math.MaxFloat32, 2, -math.MaxFloat32},
	}
	for range 200000 {
		x, y, z := r32(), r32(), r32()
		cases = append(cases, tc{x, y, z})
		// z near −x·y: heavy cancellation.
		cases = append(cases, tc{x, y, -float32(float64(x)*float64(y)) * (1 + float32(rng.IntN(5)-2)*0x1p-23)})
	}
	for _, c := range cases {
		got, want := fma32(c.x, c.y, c.z), exactFMA32(c.x, c.y, c.z)
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", c.x, c.y, c.z, got, want)
		}
	}
	if nan := fma32(float32(math.Inf(1)), 0, 1); nan == nan {
		t.Errorf("fma32(Inf, 0, 1) = %v, want NaN", nan)
	}
}

// checkClose32 compares GemmF32's got with the float64 product want. The
// tolerance, derived: each product of float32-rounded inputs is within
// 2·2⁻²⁴ (relative) of the exact one; a k-block's float32 sum of kc' ≤ kc
// FMAs is within kc'·2⁻²⁴ of the terms' magnitude (one rounding per step,
// γ_kc'); c's float64 update adds ≈2⁻⁵³ per block. So
// |got − want| ≤ (kc + 2)·2⁻²⁴·|alpha|·Σ_p|a_ip·b_pj| plus float64-sized
// terms (1e-12·k of all magnitudes, want's own error). A missing or wrong
// term is off by ≥ 1/k of the magnitude, far above (kc+2)·2⁻²⁴ ≤ 1.6e-5.
func checkClose32(t *testing.T, name string, m, n, k int, alpha, beta float64, mag, c0, got, want []float64) {
	t.Helper()
	nkb := blocks(k, kcMax)
	kc := blocks(k, max(nkb, 1))
	bad := 0
	for i := range m * n {
		tol := float64(kc+2)*0x1p-24*math.Abs(alpha)*mag[i] +
			1e-12*float64(max(k, 1))*(math.Abs(alpha)*mag[i]+math.Abs(beta*c0[i]))
		if g, w := got[i], want[i]; !(math.Abs(g-w) <= tol) {
			if bad < 5 {
				t.Errorf("%s: c[%d,%d] = %v, want %v (tolerance %g)", name, i/n, i%n, g, w, tol)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements differ", name, bad, m*n)
	}
}

// TestGemmF32AgainstGonum runs every float32 kernel (and GemmF32's own
// choice, small path included) on every shape, transpose and alpha/beta
// pair, serially and on several goroutines, against float64 Dgemm.
func TestGemmF32AgainstGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 2))
	differs := false
	for _, kn := range append([]*kernelInfo{nil}, kernels32()...) {
		kname := "auto"
		if kn != nil {
			kname = kn.name
		}
		for _, s := range testShapes {
			slow := kn == goKernel || (kn == nil && defaultKernel == goKernel) // the portable FMA
			if (testing.Short() || slow) && s.m*s.n*s.k > 1e6 {
				continue
			}
			a, b, c0 := randSlice(rng, s.m*s.k), randSlice(rng, s.k*s.n), randSlice(rng, s.m*s.n)
			for _, tr := range transposes {
				mag := absProduct(tr.ta, tr.tb, s.m, s.n, s.k, a, b)
				for _, sc := range scalars {
					want := append([]float64(nil), c0...)
					refGemm(tr.ta, tr.tb, s.m, s.n, s.k, sc.alpha, a, b, sc.beta, want)
					for _, workers := range []int{1, 3} {
						name := fmt.Sprintf("%s/%s/%dx%dx%d/alpha=%v,beta=%v/workers=%d",
							kname, tr.name, s.m, s.n, s.k, sc.alpha, sc.beta, workers)
						got := append([]float64(nil), c0...)
						gemm32(kn, tr.ta, tr.tb, s.m, s.n, s.k, sc.alpha, a, b, sc.beta, got, workers)
						checkClose32(t, name, s.m, s.n, s.k, sc.alpha, sc.beta, mag, c0, got, want)
						for i := range got {
							differs = differs || got[i] != want[i]
						}
					}
				}
			}
		}
	}
	if !differs {
		t.Error("GemmF32 gave float64's results everywhere: is it computing in float32?")
	}
}

// TestGemmF32Aliased: a and b may be the same slice (xᵀ·x, as Audit's
// correlations), and c with beta = 0 is not read (NaNs in it vanish).
func TestGemmF32Aliased(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 4))
	for _, kn := range append([]*kernelInfo{nil}, kernels32()...) {
		for _, s := range []shape{{5, 5, 3}, {40, 40, 300}, {64, 64, 1000}} {
			x := randSlice(rng, s.k*s.m)
			got := make([]float64, s.m*s.m)
			for i := range got {
				got[i] = math.NaN()
			}
			gemm32(kn, true, false, s.m, s.m, s.k, 1, x, x, 0, got, 2)
			want := make([]float64, s.m*s.m)
			refGemm(true, false, s.m, s.m, s.k, 1, x, x, 0, want)
			mag := absProduct(true, false, s.m, s.m, s.k, x, x)
			checkClose32(t, fmt.Sprintf("%v xᵀx %v", kn, s), s.m, s.m, s.k, 1, 0, mag, make([]float64, s.m*s.m), got, want)
		}
	}
}

// TestGemmF32Deterministic: bit-identical for any GOMAXPROCS, worker count,
// GemmSerialF32 and every float32 kernel this CPU runs, every transpose.
func TestGemmF32Deterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 6))
	shapes := []shape{{256, 64, 256}, {200, 150, 300}, {1024, 72, 33}, {40, 300, 700}, {7, 9, 40}}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, s := range shapes {
		a, b, c0 := randSlice(rng, s.m*s.k), randSlice(rng, s.k*s.n), randSlice(rng, s.m*s.n)
		for _, tr := range transposes {
			var ref []float64
			compare := func(name string, got []float64) {
				t.Helper()
				if ref == nil {
					ref = got
					return
				}
				for i := range got {
					if math.Float64bits(got[i]) != math.Float64bits(ref[i]) {
						t.Fatalf("%v %s %s: c[%d] = %v, first run gave %v", s, tr.name, name, i, got[i], ref[i])
					}
				}
			}
			for _, procs := range []int{1, 2, 4} {
				runtime.GOMAXPROCS(procs)
				c := append([]float64(nil), c0...)
				GemmF32(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b, 1.5, c)
				compare(fmt.Sprintf("GOMAXPROCS=%d", procs), c)
			}
			runtime.GOMAXPROCS(1)
			prev := SetWorkers(4)
			c := append([]float64(nil), c0...)
			GemmF32(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b, 1.5, c)
			compare("GOMAXPROCS=1, SetWorkers(4)", c)
			SetWorkers(prev)
			runtime.GOMAXPROCS(4)
			c = append([]float64(nil), c0...)
			GemmSerialF32(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b, 1.5, c)
			compare("GemmSerialF32", c)
			for _, kn := range kernels32() {
				if kn == goKernel && s.m*s.n*s.k > 1e7 {
					continue // the portable FMA is slow; the smaller shapes cover it
				}
				for _, w := range []int{1, 2, 7} {
					c := append([]float64(nil), c0...)
					gemm32(kn, tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b, 1.5, c, w)
					compare(fmt.Sprintf("kernel %s, %d workers", kn.name, w), c)
				}
			}
			c = append([]float64(nil), c0...)
			small32(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b, 1.5, c)
			compare("small32", c)
		}
	}
}

// TestGemmF32RowIndependent: a row of c does not depend on how many other
// rows share the product (small path and tiled kernels alike).
func TestGemmF32RowIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 8))
	for _, s := range []shape{{300, 8, 3}, {300, 64, 8}, {513, 2, 700}, {40, 130, 9}, {3, 5, 2}} {
		for _, tr := range transposes {
			a, b, c0 := randSlice(rng, s.m*s.k), randSlice(rng, s.k*s.n), randSlice(rng, s.m*s.n)
			want := append([]float64(nil), c0...)
			GemmF32(tr.ta, tr.tb, s.m, s.n, s.k, 0.75, a, b, 1.25, want)
			for _, rows := range []int{1, 2, 5, 17, 256} {
				for r0 := 0; r0+rows <= s.m; r0 += rows * 7 {
					sub := make([]float64, rows*s.k)
					for i := range rows {
						for p := range s.k {
							sub[i*s.k+p] = opAt(a, tr.ta, s.m, s.k, r0+i, p)
						}
					}
					got := append([]float64(nil), c0[r0*s.n:(r0+rows)*s.n]...)
					GemmF32(false, tr.tb, rows, s.n, s.k, 0.75, sub, b, 1.25, got)
					for i, v := range got {
						if math.Float64bits(v) != math.Float64bits(want[r0*s.n+i]) {
							t.Fatalf("%v %s: rows %d..%d alone: c[%d] = %v, in the full product %v",
								s, tr.name, r0, r0+rows, r0*s.n+i, v, want[r0*s.n+i])
						}
					}
				}
			}
		}
	}
}

// TestGemmF32NoAllocs: after warm-up, calls allocate nothing.
func TestGemmF32NoAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumented build")
	}
	rng := rand.New(rand.NewPCG(39, 10))
	for _, s := range []shape{{33, 17, 65}, {128, 128, 128}} {
		a, b := randSlice(rng, s.m*s.k), randSlice(rng, s.k*s.n)
		c := make([]float64, s.m*s.n)
		GemmF32(true, false, s.m, s.n, s.k, 1, a, b, 0, c)
		allocs := testing.AllocsPerRun(50, func() {
			GemmF32(true, false, s.m, s.n, s.k, 1, a, b, 0, c)
		})
		if allocs > 0.1 {
			t.Errorf("%dx%dx%d: %v allocations per call, want 0", s.m, s.n, s.k, allocs)
		}
	}
}

// TestPackContig32 checks the packing conversion (assembly where the CPU
// has AVX) against Go's float32 conversion, bit for bit, on values that
// round, overflow to ±Inf, become subnormal or zero, and NaN, for every
// panel width and partial row count.
func TestPackContig32(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 12))
	const ld, np = 37, 9
	src := make([]float64, ld*(np+1))
	for i := range src {
		src[i] = (rng.Float64()*2 - 1) * math.Ldexp(1, rng.IntN(330)-165)
	}
	src[3], src[40], src[77] = math.NaN(), math.Inf(-1), 0x1p-150*3
	for _, w := range []int{4, 6, 12, 16, 32} {
		for rows := 1; rows <= w; rows++ {
			dst := make([]float32, np*w)
			for i := range dst {
				dst[i] = 7
			}
			packContig32(dst, w, src, ld, 2, rows, 1, np)
			for p := range np {
				for i := range w {
					want := float32(0)
					if i < rows {
						want = float32(src[(1+p)*ld+2+i])
					}
					if got := dst[p*w+i]; math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("w=%d rows=%d: dst[%d,%d] = %v, want %v", w, rows, p, i, got, want)
					}
				}
			}
		}
	}
}

// kernels32 lists the kernels this CPU runs that have a float32 form (the
// one-row float64 kernel has none).
func kernels32() []*kernelInfo {
	var ks []*kernelInfo
	for _, kn := range kernels() {
		if kn.mr32 > 0 {
			ks = append(ks, kn)
		}
	}
	return ks
}

// round32 returns x rounded to float32, and the rounded values widened.
func round32(x []float64) ([]float32, []float64) {
	s, w := make([]float32, len(x)), make([]float64, len(x))
	for i, v := range x {
		s[i] = float32(v)
		w[i] = float64(s[i])
	}
	return s, w
}

// TestGemmF32Of: float32 operands give GemmF32's bits on the same values
// held in float64, with either operand or both in float32, every
// transpose, every float32 kernel this CPU runs, any worker count, and the
// small path.
func TestGemmF32Of(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 14))
	for _, s := range []shape{{256, 64, 256}, {200, 150, 300}, {37, 130, 9}, {7, 9, 4}} {
		a32, a := round32(randSlice(rng, s.m*s.k))
		b32, b := round32(randSlice(rng, s.k*s.n))
		c0 := randSlice(rng, s.m*s.n)
		for _, tr := range transposes {
			want := append([]float64(nil), c0...)
			GemmF32(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b, 1.5, want)
			check := func(name string, got []float64) {
				t.Helper()
				for i := range got {
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
						t.Fatalf("%v %s %s: c[%d] = %v, GemmF32 gives %v", s, tr.name, name, i, got[i], want[i])
					}
				}
			}
			run := func(name string, f func(c []float64)) {
				t.Helper()
				c := append([]float64(nil), c0...)
				f(c)
				check(name, c)
			}
			run("a32", func(c []float64) { GemmF32Of(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a32, b, 1.5, c) })
			run("b32", func(c []float64) { GemmF32Of(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b32, 1.5, c) })
			run("a32 b32 serial", func(c []float64) { GemmSerialF32Of(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a32, b32, 1.5, c) })
			run("small32", func(c []float64) { small32(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a32, b32, 1.5, c) })
			for _, kn := range kernels32() {
				for _, w := range []int{1, 3} {
					run(fmt.Sprintf("kernel %s, %d workers", kn.name, w), func(c []float64) {
						gemm32(kn, tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a32, b32, 1.5, c, w)
					})
				}
			}
		}
	}
}
