// Package linalg holds the matrix products the layers use, behind one small
// set of functions so that the kernel can change without touching the layers.
//
// Every product goes through Gemm, which runs a packed, cache-blocked,
// register-blocked kernel of its own (see gemm.go for the design): an
// AVX-512 or AVX2/FMA micro-kernel in assembly, chosen at run time from the
// CPU's features, or a pure-Go micro-kernel on other CPUs, on other
// architectures and under the purego build tag. Large products are split
// over goroutines; the result does not depend on how many run them.
// GemmF32 (gemm32.go) is the same product computed in float32 on float32
// panels and kernels, with float64 operands and result.
package linalg

//go:generate go run -C asm . -out ../kernel_amd64.s -stubs ../kernel_amd64_stub.go -pkg linalg

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sync/atomic"
)

// Gemm computes c = alpha·op(a)·op(b) + beta·c on row-major matrices given as
// flat slices: op(a) is m×k, op(b) is k×n and c is m×n. When ta (tb) is true,
// a (b) is stored transposed, as k×m (n×k).
//
// As in BLAS, c is not read when beta is zero (NaNs in it do not
// propagate), and a and b are not read when alpha or k is zero.
//
// Products of at least 2¹⁸ multiply-adds are split over up to Workers()
// goroutines; tiny ones (at most 2048 multiply-adds, or at most 16
// elements of c) are computed element by element without tiling. Every
// element of c gets the same arithmetic, whatever the path, kernel or
// split: FMAs over k in one fixed order that depends only on k. So the
// result is bit-identical for any number of workers (and any GOMAXPROCS),
// any kernel, and any number of other rows or columns in the product.
//
// Built with the openblas tag (see openblas.go), Gemm calls OpenBLAS instead.
func Gemm(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64) {
	if backend != nil {
		backend(ta, tb, m, n, k, alpha, a, b, beta, c)
		return
	}
	gemm(nil, ta, tb, m, n, k, alpha, a, b, beta, c, Workers())
}

// backend, when not nil, replaces our kernel in Gemm: the openblas build
// sets it to OpenBLAS's dgemm.
var backend func(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64)

// Backend names what computes Gemm's products: "openblas" in the openblas
// build, else "flows/" followed by the kernel (see Kernel).
func Backend() string {
	if backend != nil {
		return "openblas"
	}
	return "flows/" + Kernel()
}

// GemmSerial is Gemm computed on the calling goroutine alone, for callers
// that already run products in parallel. Its result is bit-identical to
// Gemm's.
func GemmSerial(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64) {
	gemm(nil, ta, tb, m, n, k, alpha, a, b, beta, c, 1)
}

// Parallel calls fn(t) once for each t = 0, …, tasks−1, on the calling
// goroutine and up to Workers()−1 goroutines of the helper pool that Gemm
// uses, and returns when every call has returned. Which goroutine runs
// which task, and in what order, is unspecified, so fn must make its
// result independent of that (tasks that write disjoint parts of a
// result, each computed the same way whoever runs it): then the result is
// bit-identical for any number of workers. fn may call Gemm. A panic in
// fn, on whichever goroutine, reaches Parallel's caller once the running
// calls have returned (with one value if several panic), so a layer's
// "flows: ..." message reaches its caller, and a server's recovery, as
// without Parallel; the tasks not yet started may or may not run.
func Parallel(tasks int, fn func(t int)) {
	workers := min(Workers(), tasks)
	if workers <= 1 {
		for t := range tasks {
			fn(t)
		}
		return
	}
	var panicked atomic.Pointer[any]
	j := jobPool.Get().(*job)
	j.fn = func(t int) {
		defer func() {
			if r := recover(); r != nil {
				panicked.CompareAndSwap(nil, &r)
			}
		}()
		fn(t)
	}
	j.fnTasks = tasks
	j.next.Store(0)
	j.gen.Add(1)
	j.state.Store(int64(workers-1) << 32) // open
	offer(j, workers-1)
	j.work()
	j.close()
	j.fn = nil
	jobPool.Put(j)
	if r := panicked.Load(); r != nil {
		panic(*r)
	}
}

// maxWorkers is the SetWorkers setting; 0 means GOMAXPROCS.
var maxWorkers atomic.Int64

// SetWorkers caps the goroutines one Gemm call may use and returns the
// previous cap. n ≤ 0 restores the default, runtime.GOMAXPROCS(0) at the
// time of each call. It never changes results, only speed.
func SetWorkers(n int) (previous int) {
	return int(maxWorkers.Swap(int64(max(n, 0))))
}

// Workers returns how many goroutines one Gemm call may use now: the
// SetWorkers cap if one is set, else runtime.GOMAXPROCS(0).
func Workers() int {
	if w := int(maxWorkers.Load()); w > 0 {
		return w
	}
	return runtime.GOMAXPROCS(0)
}

// Kernel names the micro-kernel this process uses: "avx512" (12×16 tiles),
// "avx2" (6×8, AVX2 and FMA3) or "go" (4×4, portable). Every kernel gives
// bit-identical products, so the choice changes speed, never results.
func Kernel() string { return defaultKernel.name }

// KernelEnv is the environment variable that forces a micro-kernel by name
// ("avx512", "avx2" or "go") for the whole process, when the CPU runs it:
// the tests use it to check that every kernel gives the same bits. An
// unknown or unsupported name is ignored (Kernel tells which one runs).
const KernelEnv = "FLOWS_KERNEL"

// forced reports that KernelEnv chose the kernel; pickKernel then uses it
// for every shape.
var forced bool

// forceKernel makes the kernel named by KernelEnv the default, if it is
// among the kernels this CPU runs.
func forceKernel(available []*kernelInfo) {
	name := os.Getenv(KernelEnv)
	for _, kn := range available {
		if name != "" && kn.name == name {
			defaultKernel, forced = kn, true
		}
	}
}

// prepare checks Gemm's arguments, panicking for a negative size or a
// slice too short for its matrix, and does the degenerate cases (no output;
// op(a)·op(b) adding nothing, where, as in BLAS, a and b are not read). It
// reports whether a product remains to compute.
func prepare[A, B Float](m, n, k int, alpha float64, a []A, b []B, beta float64, c []float64) bool {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("linalg: negative dimension in Gemm (m=%d, n=%d, k=%d)", m, n, k))
	}
	if m == 0 || n == 0 {
		return false
	}
	if len(c) < m*n {
		panic(fmt.Sprintf("linalg: c has %d elements, want at least %d×%d", len(c), m, n))
	}
	if k == 0 || alpha == 0 {
		scale(c[:m*n], beta)
		return false
	}
	if len(a) < m*k {
		panic(fmt.Sprintf("linalg: a has %d elements, want at least %d×%d", len(a), m, k))
	}
	if len(b) < k*n {
		panic(fmt.Sprintf("linalg: b has %d elements, want at least %d×%d", len(b), k, n))
	}
	return true
}

// gemm is Gemm with kn's micro-kernel (nil: the one pickKernel chooses) on at
// most workers goroutines.
func gemm(kn *kernelInfo, ta, tb bool, m, n, k int, alpha float64, a, b []float64, beta float64, c []float64, workers int) {
	if !prepare(m, n, k, alpha, a, b, beta, c) {
		return
	}
	c = c[:m*n]
	if kn == nil {
		if m*n*k <= smallMACs || m*n <= smallOutput {
			small(ta, tb, m, n, k, alpha, a, b, beta, c)
			return
		}
		kn = pickKernel(m, n, false)
	}
	run(kn, ta, tb, m, n, k, alpha, a[:m*k], b[:k*n], beta, c, workers)
}

// scale sets c = beta·c, writing zeros without reading c when beta is 0.
func scale(c []float64, beta float64) {
	switch beta {
	case 0:
		clear(c)
	case 1:
	default:
		for i := range c {
			c[i] *= beta
		}
	}
}

// Products this small skip packing and tiling: c is computed element by
// element (see small).
const (
	smallMACs   = 1 << 11 // at most this many multiply-adds in all
	smallOutput = 16      // or at most this many elements of c
)

// small computes the product element by element, for tiny products (or tiny
// outputs with long k), where packing panels whose padding and set-up would
// cost more than the arithmetic. It does exactly the kernels' arithmetic
// (see gemm.go): per k-block, one FMA per step from zero in increasing p,
// then c = fma(alpha, acc, beta'·c) (alpha·acc when beta' is 0). So every
// element of c is the same, bit for bit, whichever path computes it: a
// row's result never depends on the other rows of its batch. Eight
// elements of a row of c run at once (then four, then one), as independent
// FMA chains.
func small(ta, tb bool, m, n, k int, alpha float64, a, b []float64, beta float64, c []float64) {
	// Element (i, p) of op(a) is a[i·ai + p·ap]; (p, j) of op(b) is
	// b[p·bp + j·bj].
	ai, ap := k, 1
	if ta {
		ai, ap = 1, m
	}
	bp, bj := n, 1
	if tb {
		bp, bj = 1, k
	}
	nkb := blocks(k, kcMax)
	kc := blocks(k, nkb)
	for p0 := 0; p0 < k; p0 += kc {
		p1 := min(p0+kc, k)
		bt := beta
		if p0 > 0 {
			bt = 1
		}
		for i := range m {
			ar := a[i*ai:]
			cr := c[i*n : (i+1)*n]
			j := 0
			for ; j+8 <= n; j += 8 {
				small8(ar, ap, b[j*bj:], bj, bp, p0, p1, cr[j:j+8], alpha, bt)
			}
			for ; j+4 <= n; j += 4 {
				var s0, s1, s2, s3 float64
				b0, b1, b2, b3 := b[j*bj:], b[(j+1)*bj:], b[(j+2)*bj:], b[(j+3)*bj:]
				for p := p0; p < p1; p++ {
					x := ar[p*ap]
					s0 = math.FMA(x, b0[p*bp], s0)
					s1 = math.FMA(x, b1[p*bp], s1)
					s2 = math.FMA(x, b2[p*bp], s2)
					s3 = math.FMA(x, b3[p*bp], s3)
				}
				update(cr[j:], s0, alpha, bt)
				update(cr[j+1:], s1, alpha, bt)
				update(cr[j+2:], s2, alpha, bt)
				update(cr[j+3:], s3, alpha, bt)
			}
			for ; j < n; j++ {
				var s float64
				bc := b[j*bj:]
				for p := p0; p < p1; p++ {
					s = math.FMA(ar[p*ap], bc[p*bp], s)
				}
				update(cr[j:], s, alpha, bt)
			}
		}
	}
}

// small8 is small's arithmetic for eight elements of a row of c at once,
// as eight independent FMA chains (four leave two FMA units waiting on
// their latency): element j gets Σ_p ar[p·ap]·b[j·bj + p·bp] over the
// k-block [p0, p1), then the update.
func small8(ar []float64, ap int, b []float64, bj, bp, p0, p1 int, c []float64, alpha, beta float64) {
	var s0, s1, s2, s3, s4, s5, s6, s7 float64
	for p := p0; p < p1; p++ {
		x, q := ar[p*ap], p*bp
		s0 = math.FMA(x, b[q], s0)
		s1 = math.FMA(x, b[q+bj], s1)
		s2 = math.FMA(x, b[q+2*bj], s2)
		s3 = math.FMA(x, b[q+3*bj], s3)
		s4 = math.FMA(x, b[q+4*bj], s4)
		s5 = math.FMA(x, b[q+5*bj], s5)
		s6 = math.FMA(x, b[q+6*bj], s6)
		s7 = math.FMA(x, b[q+7*bj], s7)
	}
	update(c[0:], s0, alpha, beta)
	update(c[1:], s1, alpha, beta)
	update(c[2:], s2, alpha, beta)
	update(c[3:], s3, alpha, beta)
	update(c[4:], s4, alpha, beta)
	update(c[5:], s5, alpha, beta)
	update(c[6:], s6, alpha, beta)
	update(c[7:], s7, alpha, beta)
}

// update sets c[0] = alpha·acc + beta·c[0] as the kernels do: fma(alpha,
// acc, beta·c), or alpha·acc without reading c when beta is 0.
func update(c []float64, acc, alpha, beta float64) {
	if beta == 0 {
		c[0] = alpha * acc
		return
	}
	c[0] = math.FMA(alpha, acc, beta*c[0])
}
