package linalg

import (
	"fmt"
	"slices"
	"sync"
)

// GemmGatherF32 is a float32 product whose operands are read where they
// lie, for convolutions: with A given transposed (at, k × m at row stride
// lda) and B given by offsets into b,
//
//	c[i·n + j] = Σ_p at[p·lda + i] · b[boff[p] + coff[j]] + beta·c[i·n + j]
//
// for i < m, j < n, p < k (c is m × n, float64). Row p of B is so any
// view of b, and its columns any gather: im2col's shifted rows of a padded
// image, without writing col(X) (the copy into the kernel's panels is the
// only one). The arithmetic is GemmF32's, FMA for FMA (the same k-blocks,
// micro-kernels and update of c, alpha = 1), so the result is bit-identical
// to GemmSerialF32Of(true, false, m, n, k, 1, at, B, beta, c) on the
// gathered B, for any kernel; it runs on the calling goroutine.
//
// A column panel whose offsets are consecutive is packed by row copies, a
// panel gathered element by element otherwise. It panics if an offset
// reads outside b or a slice is too short.
//
// c may be longer than m·n: if it holds ⌈m/12⌉·12 rows of n, the rows past
// m are scratch, which the kernels may overwrite with partial sums, so
// that the last row panel is computed in place rather than through a copy
// (12 is a multiple of every kernel's tile height).
func GemmGatherF32(m, n, k int, at []float32, lda int, b []float32, boff, coff []int, beta float64, c []float64) {
	gemmGather32(nil, m, n, k, at, lda, b, boff, coff, nil, beta, c)
}

// A GatherMask zeroes entries of GemmGatherMaskF32's B: entry (p, j) is
// b[boff[p] + coff[j]] where bit j of mask Class[p] is set and zero where
// it is not, for a convolution whose input is not padded: the taps that
// leave the image read a neighbour's pixels, which the mask drops.
//
// A GatherMask keeps its masks expanded to the kernels' panels once
// computed, so it must not change after its first use (build it once and
// reuse it: the expansion costs about as much as packing a panel).
type GatherMask struct {
	Class []int32  // row p's mask, 0 ≤ Class[p]
	Bits  []uint32 // mask r's bit j: Bits[r·Words + j/32] >> (j%32) & 1
	Words int      // words a mask, at least ⌈n/32⌉

	lanes sync.Map // panel width → []uint32, see GatherMask.expand
}

// GemmGatherMaskF32 is GemmGatherF32 with the entries of B that mask
// clears taken as zero (b's value there, even a NaN, is dropped: the
// packing ANDs it with the mask). Every b[boff[p] + coff[j]] must still lie
// inside b. The result is bit-identical to GemmSerialF32Of on the masked,
// gathered B, for any kernel. It panics if the mask is too short for k
// rows and n columns or a class is negative.
func GemmGatherMaskF32(m, n, k int, at []float32, lda int, b []float32, boff, coff []int, mask *GatherMask, beta float64, c []float64) {
	gemmGather32(nil, m, n, k, at, lda, b, boff, coff, mask, beta, c)
}

// gemmGather32 is GemmGatherMaskF32 (mask nil: none) with kn's
// micro-kernel (nil: the one pickKernel chooses).
func gemmGather32(kn *kernelInfo, m, n, k int, at []float32, lda int, b []float32, boff, coff []int, mask *GatherMask, beta float64, c []float64) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("linalg: GemmGatherF32: negative dimension (m=%d, n=%d, k=%d)", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	if len(boff) < k || len(coff) < n || len(c) < m*n || k > 0 && (lda < m || len(at) < (k-1)*lda+m) {
		panic(fmt.Sprintf("linalg: GemmGatherF32: a slice is too short for its %d×%d×%d product", m, n, k))
	}
	scratch := len(c) >= blocks(m, 12)*12*n
	c = c[:m*n]
	if k == 0 {
		scale(c, beta) // adding nothing, as GemmF32
		return
	}
	checkOffsets(len(b), boff[:k], coff[:n])
	nclass := checkMask(mask, n, k)
	if kn == nil {
		kn = pickKernel(m, n, true)
	}
	mr, nr := kn.mr32, kn.nr32
	if scratch {
		c = c[:blocks(m, mr)*mr*n]
	}
	nkb := blocks(k, kcMax)
	kc := blocks(k, nkb)
	mpan := blocks(m, mr)
	w := gatherPool.Get().(*gatherBuf)
	defer gatherPool.Put(w)
	w.pa = grow(w.pa, mpan*mr*kc)
	w.pb = grow(w.pb, nr*kc)
	if len(w.tile) < mr*nr {
		w.tile = make([]float64, mr*nr)
	}
	var lanes []uint32
	if mask != nil {
		lanes = mask.expand(nr)
	}
	for kb := range nkb {
		p0 := kb * kc
		kcur := min(kc, k-p0)
		for r := range mpan {
			rows := min(mr, m-r*mr)
			packRows(w.pa[r*mr*kcur:(r+1)*mr*kcur], mr, at[p0*lda+r*mr:], lda, rows, kcur)
		}
		bt := beta
		if kb > 0 {
			bt = 1
		}
		for j0 := 0; j0 < n; j0 += nr {
			cols := min(nr, n-j0)
			bp := w.pb[:kcur*nr]
			if mask == nil {
				packGather(bp, nr, b, boff[p0:p0+kcur], coff[j0:j0+cols])
			} else {
				vec := lanes[j0*nclass:][:nclass*nr] // panel j0/nr's
				packGatherMask(bp, nr, b, boff[p0:p0+kcur], coff[j0:j0+cols], mask.Class[p0:p0+kcur], vec)
			}
			for r := range mpan {
				rows := min(mr, m-r*mr)
				ap := w.pa[r*mr*kcur : (r+1)*mr*kcur]
				off := r*mr*n + j0
				if (rows == mr || scratch) && cols == nr {
					kn.fn32(kcur, ap, bp, c[off:off+(mr-1)*n+nr], n, 1, bt)
					continue
				}
				tile := w.tile[:mr*nr]
				if bt != 0 {
					for i := range rows {
						copy(tile[i*nr:i*nr+cols], c[off+i*n:off+i*n+cols])
					}
				}
				kn.fn32(kcur, ap, bp, tile, nr, 1, bt)
				for i := range rows {
					copy(c[off+i*n:off+i*n+cols], tile[i*nr:i*nr+cols])
				}
			}
		}
	}
}

// packGather packs one B panel of GemmGatherF32: dst[p·w + j] =
// b[boff[p] + coff[j]] for j < len(coff), zero for len(coff) ≤ j < w.
func packGather(dst []float32, w int, b []float32, boff, coff []int) {
	cols := len(coff)
	if cols == w && coff[cols-1]-coff[0] == cols-1 && consecutive(coff) {
		c0 := coff[0]
		if w%8 == 0 && hasConvert {
			dst = dst[:len(boff)*w]
			copyRows(dst, w, b, boff, c0) // in bounds: checkOffsets
			return
		}
		for p, o := range boff {
			copy(dst[p*w:p*w+w], b[o+c0:o+c0+w])
		}
		return
	}
	for p, o := range boff {
		d := dst[p*w : p*w+w]
		for j, cj := range coff {
			d[j] = b[o+cj]
		}
		clear(d[cols:])
	}
}

// packRows packs an A panel of GemmGatherF32: dst[p·w + i] = at[p·lda +
// i] for i < rows, zero for rows ≤ i < w, p < np.
func packRows(dst []float32, w int, at []float32, lda, rows, np int) {
	if rows == 12 && w == 12 { // the AVX-512 kernel's full panel
		for p := range np {
			*(*[12]float32)(dst[p*12:]) = *(*[12]float32)(at[p*lda:])
		}
		return
	}
	for p := range np {
		d := dst[p*w : (p+1)*w]
		copy(d[:rows], at[p*lda:p*lda+rows])
		clear(d[rows:])
	}
}

// checkOffsets panics unless every b[boff[p] + coff[j]] is inside a slice
// of length nb.
func checkOffsets(nb int, boff, coff []int) {
	lo, hi := slices.Min(boff)+slices.Min(coff), slices.Max(boff)+slices.Max(coff)
	if lo < 0 || hi >= nb {
		panic(fmt.Sprintf("linalg: GemmGatherF32: offsets reach b[%d] and b[%d], b has %d elements", lo, hi, nb))
	}
}

// consecutive reports whether coff[j] = coff[0] + j for every j.
func consecutive(coff []int) bool {
	for j, v := range coff {
		if v != coff[0]+j {
			return false
		}
	}
	return true
}

// grow returns s with length n, reallocated when its capacity is short.
func grow[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}

// gatherBuf holds GemmGatherF32's panels and edge tile between calls.
type gatherBuf struct {
	pa, pb []float32
	tile   []float64
}

var gatherPool = sync.Pool{New: func() any { return new(gatherBuf) }}
