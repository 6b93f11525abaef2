package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// refGemm is gonum's Dgemm on the same row-major operands: the reference.
func refGemm(ta, tb bool, m, n, k int, alpha float64, a, b []float64, beta float64, c []float64) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scale(c[:m*n], beta) // gonum rejects a zero leading dimension
		return
	}
	lda, ldb := k, n
	transA, transB := blas.NoTrans, blas.NoTrans
	if ta {
		lda, transA = m, blas.Trans
	}
	if tb {
		ldb, transB = k, blas.Trans
	}
	blas64.Implementation().Dgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, n)
}

// opAt returns op(x)[i][j] for a row-major x that holds op(x) (r×s),
// transposed if t.
func opAt(x []float64, t bool, r, s, i, j int) float64 {
	if t {
		return x[j*r+i]
	}
	return x[i*s+j]
}

func randSlice(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.Float64()*2 - 1
	}
	return x
}

// absProduct returns |op(a)|·|op(b)|, the size of the terms each element
// of the product sums.
func absProduct(ta, tb bool, m, n, k int, a, b []float64) []float64 {
	mag := make([]float64, m*n)
	for i := range m {
		for j := range n {
			s := 0.0
			for p := range k {
				s += math.Abs(opAt(a, ta, m, k, i, p) * opAt(b, tb, k, n, p, j))
			}
			mag[i*n+j] = s
		}
	}
	return mag
}

// checkClose compares got with want element by element. The tolerance is
// relative to the size of the terms summed, |alpha|·Σ_p |a_ip·b_pj| +
// |beta·c_ij| (mag holds the sums), times 1e-12·k: both results are sums
// of k products rounded in different orders (gonum's kernel blocks and
// orders the sum its own way, without FMA; ours uses one FMA per step), so
// each is within about k·2⁻⁵³ of the exact sum relative to the terms'
// magnitude and they differ by at most about twice that; 1e-12·k leaves
// ample margin and still catches any wrong or missing term (an error of
// one term is ~1e-1 relative).
func checkClose(t *testing.T, name string, m, n, k int, alpha, beta float64, mag, c0, got, want []float64) {
	t.Helper()
	bad := 0
	for i := range m * n {
		tol := 1e-12 * float64(max(k, 1)) * (math.Abs(alpha)*mag[i] + math.Abs(beta*c0[i]))
		if g, w := got[i], want[i]; !(math.Abs(g-w) <= tol) { // also catches NaN
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

type shape struct{ m, n, k int }

var testShapes = []shape{
	{1, 1, 1}, {1, 17, 1}, {17, 1, 1}, {1, 1, 17}, {2, 3, 4}, {2, 2, 1024}, {4, 4, 513},
	{7, 13, 5}, {33, 17, 65}, {12, 16, 1}, {13, 17, 3}, {24, 32, 8},
	{1000, 3, 7}, {3, 1000, 7}, // tall, wide
	{5, 6, 1000}, {37, 29, 600}, // deep: several k-blocks
	{256, 64, 64}, {256, 256, 64}, {64, 256, 256}, {512, 8, 64}, // MLP
	{300, 300, 300},
	{0, 5, 3}, {5, 0, 3}, {5, 3, 0}, {0, 0, 0},
}

var transposes = []struct {
	name   string
	ta, tb bool
}{{"NN", false, false}, {"TN", true, false}, {"NT", false, true}, {"TT", true, true}}

var scalars = []struct{ alpha, beta float64 }{
	{1, 0}, {1, 1}, {-0.5, 2}, {2, -1}, {0, 0.5}, {0, 0}, {0.75, 0.25},
}

// TestGemmAgainstGonum runs every kernel this build has on every shape,
// transpose and alpha/beta pair, serially and on several goroutines.
func TestGemmAgainstGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// nil is Gemm's own choice: the small path for tiny products, else
	// pickKernel's kernel.
	for _, kn := range append([]*kernelInfo{nil}, kernels()...) {
		kname := "auto"
		if kn != nil {
			kname = kn.name
		}
		for _, s := range testShapes {
			if testing.Short() && s.m*s.n*s.k > 1e6 {
				continue
			}
			a := randSlice(rng, s.m*s.k)
			b := randSlice(rng, s.k*s.n)
			c0 := randSlice(rng, s.m*s.n)
			for _, tr := range transposes {
				mag := absProduct(tr.ta, tr.tb, s.m, s.n, s.k, a, b)
				for _, sc := range scalars {
					want := append([]float64(nil), c0...)
					refGemm(tr.ta, tr.tb, s.m, s.n, s.k, sc.alpha, a, b, sc.beta, want)
					for _, workers := range []int{1, 3} {
						name := fmt.Sprintf("%s/%s/%dx%dx%d/alpha=%v,beta=%v/workers=%d",
							kname, tr.name, s.m, s.n, s.k, sc.alpha, sc.beta, workers)
						got := append([]float64(nil), c0...)
						gemm(kn, tr.ta, tr.tb, s.m, s.n, s.k, sc.alpha, a, b, sc.beta, got, workers)
						checkClose(t, name, s.m, s.n, s.k, sc.alpha, sc.beta, mag, c0, got, want)
					}
				}
			}
		}
	}
}

// TestGemmBetaZeroIgnoresNaN: with beta = 0, c is overwritten without being
// read, as in BLAS; with alpha = 0 (or k = 0), a and b are not read.
func TestGemmBetaZeroIgnoresNaN(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nan := math.NaN()
	for _, kn := range append([]*kernelInfo{nil}, kernels()...) {
		kname := "auto"
		if kn != nil {
			kname = kn.name
		}
		for _, s := range []shape{{1, 1, 1}, {2, 2, 100}, {7, 13, 5}, {30, 40, 300}, {256, 64, 64}} {
			a, b := randSlice(rng, s.m*s.k), randSlice(rng, s.k*s.n)
			for _, tr := range transposes {
				c := make([]float64, s.m*s.n)
				for i := range c {
					c[i] = nan
				}
				gemm(kn, tr.ta, tr.tb, s.m, s.n, s.k, 1, a, b, 0, c, 2)
				want := make([]float64, s.m*s.n)
				refGemm(tr.ta, tr.tb, s.m, s.n, s.k, 1, a, b, 0, want)
				zeros := make([]float64, s.m*s.n)
				mag := absProduct(tr.ta, tr.tb, s.m, s.n, s.k, a, b)
				checkClose(t, kname+"/"+tr.name, s.m, s.n, s.k, 1, 0, mag, zeros, c, want)
			}
		}
		// alpha = 0: a and b full of NaN are not read.
		an, bn := []float64{nan, nan, nan, nan}, []float64{nan, nan, nan, nan}
		c := []float64{1, 2, 3, 4}
		gemm(kn, false, false, 2, 2, 2, 0, an, bn, 2, c, 1)
		if c[0] != 2 || c[1] != 4 || c[2] != 6 || c[3] != 8 {
			t.Errorf("%s: alpha=0 gave %v, want [2 4 6 8]", kname, c)
		}
		c = []float64{nan, nan}
		gemm(kn, false, false, 1, 2, 0, 1, nil, nil, 0, c, 1)
		if c[0] != 0 || c[1] != 0 {
			t.Errorf("%s: k=0, beta=0 gave %v, want zeros", kname, c)
		}
	}
}

// TestGemmDeterministic: the result is bit-identical for any GOMAXPROCS,
// any worker count, GemmSerial, and any of this CPU's assembly kernels
// (they do the same arithmetic per element), for every transpose.
func TestGemmDeterministic(t *testing.T) {
	if Backend() == "openblas" {
		t.Skip("OpenBLAS's results depend on its own threading; the default build's do not")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := []shape{{256, 64, 256}, {300, 300, 600}, {1024, 72, 33}, {40, 520, 1030}}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, s := range shapes {
		a := randSlice(rng, s.m*s.k)
		b := randSlice(rng, s.k*s.n)
		c0 := randSlice(rng, s.m*s.n)
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
						t.Fatalf("%dx%dx%d %s %s: c[%d] = %v, first run gave %v",
							s.m, s.n, s.k, tr.name, name, i, got[i], ref[i])
					}
				}
			}
			for _, procs := range []int{1, 2, 4} {
				runtime.GOMAXPROCS(procs)
				for rep := range 2 {
					c := append([]float64(nil), c0...)
					Gemm(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b, 1.5, c)
					compare(fmt.Sprintf("GOMAXPROCS=%d rep %d", procs, rep), c)
				}
			}
			// More workers than Ps: helpers run when the caller yields.
			runtime.GOMAXPROCS(1)
			prev := SetWorkers(4)
			c := append([]float64(nil), c0...)
			Gemm(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b, 1.5, c)
			compare("GOMAXPROCS=1, SetWorkers(4)", c)
			SetWorkers(prev)
			runtime.GOMAXPROCS(4)
			c = append([]float64(nil), c0...)
			GemmSerial(tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b, 1.5, c)
			compare("GemmSerial", c)
			for _, kn := range kernels() {
				for _, w := range []int{1, 2, 7} {
					c := append([]float64(nil), c0...)
					gemm(kn, tr.ta, tr.tb, s.m, s.n, s.k, 0.5, a, b, 1.5, c, w)
					compare(fmt.Sprintf("kernel %s, %d workers", kn.name, w), c)
				}
			}
		}
	}
}

// TestGemmConcurrent runs products from several goroutines at once (run
// with -race): callers share the helper goroutines and pools.
func TestGemmConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const m, n, k = 200, 150, 120
	a, b := randSlice(rng, m*k), randSlice(rng, k*n)
	want := make([]float64, m*n)
	Gemm(false, true, m, n, k, 1, a, b, 0, want)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := make([]float64, m*n)
			for range 5 {
				Gemm(false, true, m, n, k, 1, a, b, 0, c)
				for i := range c {
					if c[i] != want[i] {
						errs <- fmt.Sprintf("goroutine %d: c[%d] = %v, want %v", g, i, c[i], want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestGemmNoAllocs: after warm-up, calls allocate nothing (buffers are
// pooled, helpers are long-lived).
func TestGemmNoAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumented build")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, s := range []shape{{33, 17, 65}, {256, 256, 256}} {
		a, b := randSlice(rng, s.m*s.k), randSlice(rng, s.k*s.n)
		c := make([]float64, s.m*s.n)
		Gemm(true, false, s.m, s.n, s.k, 1, a, b, 0, c)
		allocs := testing.AllocsPerRun(50, func() {
			Gemm(true, false, s.m, s.n, s.k, 1, a, b, 0, c)
		})
		// sync.Pool may drop its buffers at a GC; allow for a rare refill.
		if allocs > 0.1 {
			t.Errorf("%dx%dx%d: %v allocations per call, want 0", s.m, s.n, s.k, allocs)
		}
	}
}

// TestGemmPanics: short slices and negative sizes are rejected before any
// assembly runs.
func TestGemmPanics(t *testing.T) {
	cases := []struct {
		name    string
		m, n, k int
		la, lb  int
		lc      int
	}{
		{"short a", 4, 4, 4, 15, 16, 16},
		{"short b", 4, 4, 4, 16, 15, 16},
		{"short c", 4, 4, 4, 16, 16, 15},
		{"negative", -1, 4, 4, 16, 16, 16},
	}
	for _, tc := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			Gemm(false, false, tc.m, tc.n, tc.k, 1, make([]float64, tc.la), make([]float64, tc.lb), 0, make([]float64, tc.lc))
		}()
	}
}

// TestPlan checks the partition's invariants on many shapes: blocks tile
// c exactly, respect the size limits, and packing units cover every panel
// once.
func TestPlan(t *testing.T) {
	for _, kn := range kernels() {
		for _, m := range []int{1, 5, 12, 100, 256, 1000} {
			for _, n := range []int{1, 7, 16, 100, 513, 2000} {
				for _, k := range []int{1, 9, 256, 257, 1000} {
					p := makePlan(kn.mr, kn.nr, true, m, n, k)
					name := fmt.Sprintf("%s %dx%dx%d %+v", kn.name, m, n, k, p)
					if p.kc > kcMax || p.nkb*p.kc < k || (p.nkb-1)*p.kc >= k {
						t.Fatalf("%s: bad k-blocks", name)
					}
					next := 0
					for ib := range p.mb {
						i0, i1 := p.rowBlock(ib, kn.mr, m)
						if i0 != next || i1 <= i0 || i1-i0 > mcMax || (i0%kn.mr) != 0 {
							t.Fatalf("%s: row block %d is [%d, %d)", name, ib, i0, i1)
						}
						next = i1
					}
					if next != m {
						t.Fatalf("%s: row blocks end at %d", name, next)
					}
					next = 0
					for jb := range p.nb {
						q0, q1 := p.colPanels(jb)
						if q0 != next || q1 <= q0 || (q1-q0)*kn.nr > ncMax {
							t.Fatalf("%s: column block %d is panels [%d, %d)", name, jb, q0, q1)
						}
						next = q1
					}
					if next != p.np {
						t.Fatalf("%s: column blocks end at panel %d", name, next)
					}
					seen := make([]int, p.np)
					for u := range p.units {
						jb, q0, q1 := p.unit(u)
						b0, b1 := p.colPanels(jb)
						for q := q0; q < q1; q++ {
							if q < b0 || q >= b1 {
								t.Fatalf("%s: unit %d packs panel %d outside its block", name, u, q)
							}
							seen[q]++
						}
					}
					for q, s := range seen {
						if s != 1 {
							t.Fatalf("%s: panel %d packed %d times", name, q, s)
						}
					}
				}
			}
		}
	}
}

// TestGemmHelpersJoin: with two or more Ps, helper goroutines take part in
// large products (within a couple of seconds, even on a busy machine).
func TestGemmHelpersJoin(t *testing.T) {
	if Backend() == "openblas" {
		t.Skip("Gemm runs on OpenBLAS's threads, not ours")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	rng := rand.New(rand.NewPCG(11, 12))
	const m, n, k = 256, 256, 256
	a, b := randSlice(rng, m*k), randSlice(rng, k*n)
	c := make([]float64, m*n)
	joins := helperJoins.Load()
	deadline := time.Now().Add(5 * time.Second)
	for helperJoins.Load() == joins {
		if time.Now().After(deadline) {
			t.Fatal("no helper joined a parallel product in 5 s")
		}
		Gemm(false, false, m, n, k, 1, a, b, 0, c)
	}
}

// TestGemmRowIndependent checks that a row of c does not depend on how many
// other rows share the product: the small path (element by element) and
// the tiled kernels, whichever a shape takes, do the same arithmetic per
// element, so scoring a row alone or in a batch of any size gives the same
// bits. The same holds for columns.
func TestGemmRowIndependent(t *testing.T) {
	if Backend() == "openblas" {
		t.Skip("OpenBLAS chooses its own summation order by shape")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, s := range []shape{{300, 8, 3}, {300, 64, 8}, {513, 2, 700}, {40, 130, 9}, {3, 5, 2}} {
		for _, tr := range transposes {
			a, b := randSlice(rng, s.m*s.k), randSlice(rng, s.k*s.n)
			c0 := randSlice(rng, s.m*s.n)
			want := append([]float64(nil), c0...)
			Gemm(tr.ta, tr.tb, s.m, s.n, s.k, 0.75, a, b, 1.25, want)
			for _, rows := range []int{1, 2, 5, 17, 256} {
				for r0 := 0; r0+rows <= s.m; r0 += rows * 7 {
					// The rows [r0, r0+rows) of op(a) as a matrix of their own.
					sub := make([]float64, rows*s.k)
					for i := range rows {
						for p := range s.k {
							sub[i*s.k+p] = opAt(a, tr.ta, s.m, s.k, r0+i, p)
						}
					}
					got := append([]float64(nil), c0[r0*s.n:(r0+rows)*s.n]...)
					Gemm(false, tr.tb, rows, s.n, s.k, 0.75, sub, b, 1.25, got)
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
