package vmath

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gonormflows/flows/internal/linalg"
)

// eachKernel runs f with each implementation this CPU and build run
// active in turn (as linalg.KernelEnv would force it).
func eachKernel(t *testing.T, f func(t *testing.T)) {
	saved := active
	defer func() { active = saved }()
	for _, k := range kernels() {
		active = k
		t.Run(k.name, f)
	}
}

// inputs returns the test arguments: random bits over the whole range,
// uniform values across exp's thresholds, magnitudes dense near 0, and the
// neighbourhoods (step by step in ulps) of every boundary of the kernels
// and of the scalar code they reproduce, with the special values.
func inputs(n int) []float64 {
	r := rand.New(rand.NewPCG(1, 2))
	var xs []float64
	for i := 0; i < n; i++ {
		xs = append(xs, math.Float64frombits(r.Uint64()))
		xs = append(xs, 1500*r.Float64()-750)
		xs = append(xs, 100*r.Float64()-50)
		m := math.Ldexp(1, -r.IntN(1100)) * (1 + r.Float64()) // down to denormals
		if r.IntN(2) == 0 {
			m = -m
		}
		xs = append(xs, m)
	}
	edges := []float64{0, 0.625, 0.5 * 8.8029691931113054295988e+01, 22.007, 708, 709, 709.782712893384,
		708.3964185322641, 745.1332191019411, 744.44007192138, 1, 0.5, 1e-8, 350}
	for _, e := range edges {
		for _, s := range []float64{1, -1} {
			x := s * e
			for i := 0; i < 2000; i++ {
				x = math.Nextafter(x, math.Inf(1))
			}
			for i := 0; i < 4000; i++ {
				xs = append(xs, x)
				x = math.Nextafter(x, math.Inf(-1))
			}
			for i := 0; i < 2000; i++ { // wider: 1e-9 relative steps
				xs = append(xs, s*e*(1+1e-9*float64(i-1000))+1e-12*float64(i-1000))
			}
		}
	}
	xs = append(xs, math.Inf(1), math.Inf(-1), math.NaN(), math.Copysign(0, -1), 0,
		math.Float64frombits(0x7FF0000000000001), math.Float64frombits(0xFFF8000000000123),
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64)
	r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	return xs
}

func testSize() int {
	if testing.Short() {
		return 100_000
	}
	return 1_500_000 // 6 million random arguments plus the edges
}

// checkBits compares dst with scalar(src) bit for bit.
func checkBits(t *testing.T, fn string, scalar func(float64) float64, src, dst []float64) {
	t.Helper()
	bad := 0
	for i, x := range src {
		if want := scalar(x); math.Float64bits(dst[i]) != math.Float64bits(want) {
			if bad++; bad <= 5 {
				t.Errorf("%s(%v [%#x]) = %v [%#x], math.%s gives %v [%#x]", fn, x, math.Float64bits(x),
					dst[i], math.Float64bits(dst[i]), fn, want, math.Float64bits(want))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements differ", fn, bad, len(src))
	}
}

var funcs = []struct {
	name   string
	vec    func(dst, src []float64)
	scalar func(float64) float64
}{
	{"Exp", Exp, math.Exp},
	{"Tanh", Tanh, math.Tanh},
}

// TestBits checks every input, in blocks of every alignment, both out of
// place and in place.
func TestBits(t *testing.T) {
	xs := inputs(testSize())
	eachKernel(t, func(t *testing.T) {
		for _, f := range funcs {
			dst := make([]float64, len(xs))
			f.vec(dst, xs)
			checkBits(t, f.name, f.scalar, xs, dst)
			in := append([]float64(nil), xs...)
			f.vec(in, in)
			checkBits(t, f.name+" in place", f.scalar, xs, in)
		}
	})
}

// TestTails checks lengths 0 to 33 at every offset of a slice (unaligned
// starts) and that nothing past len(src) is written.
func TestTails(t *testing.T) {
	xs := inputs(200)
	eachKernel(t, func(t *testing.T) {
		for _, f := range funcs {
			for n := 0; n <= 33; n++ {
				for off := 0; off < 9; off++ {
					src := xs[off*40 : off*40+n+off][off:]
					buf := make([]float64, n+off+3)
					for i := range buf {
						buf[i] = -7
					}
					dst := buf[off : off+n]
					f.vec(dst, src)
					checkBits(t, f.name, f.scalar, src, dst)
					for i, v := range buf {
						if (i < off || i >= off+n) && v != -7 {
							t.Fatalf("%s n=%d off=%d: wrote buf[%d] outside dst", f.name, n, off, i)
						}
					}
				}
			}
		}
	})
}

// TestSpecialBlock puts one special value in each lane of a block of
// ordinary ones, so the scalar finishing of a lane is checked at every
// position (mask bits 0 to 63).
func TestSpecialBlock(t *testing.T) {
	specials := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 710, -746, -720, 709.9, math.Copysign(0, -1)}
	eachKernel(t, func(t *testing.T) {
		for _, f := range funcs {
			for _, s := range specials {
				for pos := 0; pos < 64; pos++ {
					src := make([]float64, 64)
					for i := range src {
						src[i] = 0.37*float64(i) - 11
					}
					src[pos] = s
					dst := make([]float64, 64)
					f.vec(dst, src)
					checkBits(t, f.name, f.scalar, src, dst)
				}
			}
		}
	})
}

func TestShortDst(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Exp with a short dst did not panic")
		}
	}()
	Exp(make([]float64, 3), make([]float64, 4))
}

var sink float64

// BenchmarkExp reports the time per element (wall, ns/elem, and the
// process's CPU time, cpu-ns/elem) of Exp with each kernel and of a loop of
// math.Exp (sub-benchmark math), on 1024 arguments in [−10, 10].
func BenchmarkExp(b *testing.B) { benchFunc(b, Exp, math.Exp, 10) }

// BenchmarkTanh is BenchmarkExp for Tanh, arguments in [−3, 3].
func BenchmarkTanh(b *testing.B) { benchFunc(b, Tanh, math.Tanh, 3) }

func benchFunc(b *testing.B, vec func(dst, src []float64), scalar func(float64) float64, scale float64) {
	r := rand.New(rand.NewPCG(3, 4))
	src := make([]float64, 1024)
	for i := range src {
		src[i] = scale * (2*r.Float64() - 1)
	}
	dst := make([]float64, len(src))
	eachKernelB(b, func(b *testing.B) {
		perElem(b, len(src), func() { vec(dst, src) })
	})
	b.Run("math", func(b *testing.B) {
		perElem(b, len(src), func() {
			for i, x := range src {
				dst[i] = scalar(x)
			}
		})
	})
	sink = dst[0]
}

func eachKernelB(b *testing.B, f func(b *testing.B)) {
	saved := active
	defer func() { active = saved }()
	for _, k := range kernels() {
		active = k
		b.Run(k.name, f)
	}
}

// TestNoAllocs checks that Exp and Tanh allocate nothing, and do not make
// a caller's stack buffer escape.
func TestNoAllocs(t *testing.T) {
	eachKernel(t, func(t *testing.T) {
		n := testing.AllocsPerRun(100, func() {
			var buf [37]float64
			for i := range buf {
				buf[i] = float64(i) - 18
			}
			Exp(buf[:], buf[:])
			Tanh(buf[:], buf[:])
			sink = buf[3]
		})
		if n != 0 {
			t.Errorf("%v allocations per call pair, want 0", n)
		}
	})
}

// perElem times f, a pass over n elements, per element.
func perElem(b *testing.B, n int, f func()) {
	c0 := cpuNanos()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
	b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N*n), "cpu-ns/elem")
}

// TestKernelEnv checks that linalg.KernelEnv, which CI sets to each
// kernel in turn, selects that kernel here too when the CPU runs it.
func TestKernelEnv(t *testing.T) {
	name := os.Getenv(linalg.KernelEnv)
	if name == "" {
		t.Skipf("%s not set", linalg.KernelEnv)
	}
	for _, k := range kernels() {
		if k.name == name && Kernel() != name {
			t.Errorf("%s=%s, but Kernel() = %q", linalg.KernelEnv, name, Kernel())
		}
	}
	t.Logf("kernel %s", Kernel())
}
