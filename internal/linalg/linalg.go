// Package linalg holds the matrix products the layers use, behind one small
// set of functions so that the kernel can change without touching the layers.
//
// Every product goes through Gemm, which runs a packed, cache-blocked,
// register-blocked kernel of its own (see gemm.go for the design): an
// AVX-512 or AVX2/FMA micro-kernel in assembly, chosen at run time from the
// CPU's features, or a pure-Go micro-kernel on other CPUs, on other
// architectures and under the purego build tag. Large products are split
// over goroutines; the result does not depend on how many run them.
package linalg

//go:generate go run -C asm . -out ../kernel_amd64.s -stubs ../kernel_amd64_stub.go -pkg linalg

import (
	"fmt"
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
// elements of c) are computed as plain dot products. The split of c into
// blocks depends only on the shape, and each element's sum runs over k in
// one fixed order, so the result is bit-identical for any number of
// workers (and any GOMAXPROCS).
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

// gemm is Gemm with kn's micro-kernel (nil: the one pickKernel chooses) on at
// most workers goroutines.
func gemm(kn *kernelInfo, ta, tb bool, m, n, k int, alpha float64, a, b []float64, beta float64, c []float64, workers int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("linalg: negative dimension in Gemm (m=%d, n=%d, k=%d)", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	if len(c) < m*n {
		panic(fmt.Sprintf("linalg: c has %d elements, want at least %d×%d", len(c), m, n))
	}
	c = c[:m*n]
	if k == 0 || alpha == 0 {
		// op(a)·op(b) contributes nothing; as in BLAS, a and b are not read.
		scale(c, beta)
		return
	}
	if len(a) < m*k {
		panic(fmt.Sprintf("linalg: a has %d elements, want at least %d×%d", len(a), m, k))
	}
	if len(b) < k*n {
		panic(fmt.Sprintf("linalg: b has %d elements, want at least %d×%d", len(b), k, n))
	}
	if kn == nil {
		if m*n*k <= smallMACs || m*n <= smallOutput {
			small(ta, tb, m, n, k, alpha, a, b, beta, c)
			return
		}
		kn = pickKernel(m, n)
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
// element as dot products (see small).
const (
	smallMACs   = 1 << 11 // at most this many multiply-adds in all
	smallOutput = 16      // or at most this many elements of c
)

// small computes the product as m·n dot products of length k. For tiny
// products (or tiny outputs with long k) this beats packing panels whose
// padding and set-up would cost more than the arithmetic. Each dot product
// keeps four partial sums (steps p ≡ 0, 1, 2, 3 mod 4), added as
// (s0+s1)+(s2+s3) at the end; the order depends only on k.
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
	for i := range m {
		for j := range n {
			s := dot(a[i*ai:], ap, b[j*bj:], bp, k)
			if beta == 0 {
				c[i*n+j] = alpha * s
			} else {
				c[i*n+j] = float64(alpha*s) + float64(beta*c[i*n+j])
			}
		}
	}
}

// dot returns Σ_p x[p·sx]·y[p·sy] over p < k, with four partial sums
// (steps p ≡ 0, 1, 2, 3 mod 4) added as (s0+s1)+(s2+s3). Every product is
// rounded before it is added (the float64 conversions forbid the compiler
// to fuse them into FMAs, as it may on arm64), so the result is the same on
// every architecture.
func dot(x []float64, sx int, y []float64, sy int, k int) float64 {
	var s0, s1, s2, s3 float64
	k4 := k &^ 3
	if sx == 1 && sy == 1 {
		x, y = x[:k], y[:k]
		for p := 0; p < k4; p += 4 {
			xp, yp := (*[4]float64)(x[p:]), (*[4]float64)(y[p:])
			s0 += float64(xp[0] * yp[0])
			s1 += float64(xp[1] * yp[1])
			s2 += float64(xp[2] * yp[2])
			s3 += float64(xp[3] * yp[3])
		}
	} else {
		for p := 0; p < k4; p += 4 {
			s0 += float64(x[p*sx] * y[p*sy])
			s1 += float64(x[(p+1)*sx] * y[(p+1)*sy])
			s2 += float64(x[(p+2)*sx] * y[(p+2)*sy])
			s3 += float64(x[(p+3)*sx] * y[(p+3)*sy])
		}
	}
	for p := k4; p < k; p++ {
		s0 += float64(x[p*sx] * y[p*sy])
	}
	return (s0 + s1) + (s2 + s3)
}
