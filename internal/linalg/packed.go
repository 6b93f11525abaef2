package linalg

// Products with a fixed right-hand side on small row blocks.
//
// A prepared layer (a conditioner's weights at fixed parameters) multiplies
// blocks of at most a few hundred rows by the same weights on every call.
// Gemm plans each product, takes a job from a pool, packs a partial last
// panel of the weights, and pads the rows to the kernel's tile: a block of
// 16 rows runs as 24 on the 12×16 kernel. Packed keeps the weights packed
// once, in panels of packedWidth columns, zero-padded, that every kernel
// reads in place (their NR, 16, 8 and 4, divides it; the 1×64 row kernel
// reads panels of 64), and MulAdd runs the rows on the calling goroutine:
// whole tiles of the default kernel, then the remaining rows on whichever
// kernel pads them least.
//
// Bits: every kernel does Gemm's arithmetic per element (per k-block, one
// FMA per step in increasing p from zero, then c = fma(1, acc, c)), with
// Gemm's k-blocks, so MulAdd's c is Gemm's, bit for bit, whichever kernel
// runs which rows (TestPackedMatchesGemm).

// packedWidth is the width of a panel of Packed: a multiple of every
// kernel's NR.
const packedWidth = 16

// Packed is a k×n matrix B (row-major), packed once for the products
// c = a·B + c of MulAdd. It is immutable after PackB, so safe for
// concurrent use.
type Packed struct {
	k, n int
	p16  []float64 // panel q (columns [16q, 16q+16)) at q·16·k, step p at p·16
	p64  []float64 // the same in panels of 64 columns, for the row kernel; nil without it
}

// PackB packs the k×n row-major matrix b (it is copied, not kept).
func PackB(k, n int, b []float64) *Packed {
	if k < 1 || n < 1 || len(b) < k*n {
		panic("linalg: PackB: bad shape")
	}
	pb := &Packed{k: k, n: n, p16: packPanels(k, n, b, packedWidth)}
	if rowKernelUsable() {
		pb.p64 = packPanels(k, n, b, 64)
	}
	return pb
}

// packPanels returns b (k×n) in zero-padded panels of w columns.
func packPanels(k, n int, b []float64, w int) []float64 {
	np := blocks(n, w)
	out := make([]float64, np*w*k)
	for q := range np {
		c0 := q * w
		packContig(out[q*w*k:(q+1)*w*k], w, b, n, c0, min(w, n-c0), 0, k)
	}
	return out
}

// K and N return the shape of B.
func (pb *Packed) K() int { return pb.k }

// N returns the number of columns of B.
func (pb *Packed) N() int { return pb.n }

// MulAdd sets c = a·B + c, with a m×k and c m×n (row-major, contiguous),
// on the calling goroutine: bit for bit Gemm(false, false, m, n, k, 1, a,
// B, 1, c).
func (pb *Packed) MulAdd(m int, a, c []float64) { pb.mul(m, a, 1, c) }

// Mul sets c = a·B, with a m×k and c m×n (row-major, contiguous), on the
// calling goroutine, without reading c: bit for bit Gemm(false, false, m,
// n, k, 1, a, B, 0, c). With one k-block (OneBlock), each element is one
// rounded FMA chain, so Mul followed by c += b is MulAdd on c = b, bit for
// bit (fma(1, acc, b) is acc + b): a bias can be added in the pass that
// applies an activation.
func (pb *Packed) Mul(m int, a, c []float64) { pb.mul(m, a, 0, c) }

// OneBlock reports whether B's k rows make one k-block of Gemm's.
func (pb *Packed) OneBlock() bool { return pb.k <= kcMax }

// mul is MulAdd (beta 1) and Mul (beta 0).
func (pb *Packed) mul(m int, a []float64, beta float64, c []float64) {
	k, n := pb.k, pb.n
	if m == 0 {
		return
	}
	if len(a) < m*k || len(c) < m*n {
		panic("linalg: Packed.MulAdd: short slice")
	}
	w := workPool.Get().(*workBuf)
	defer workPool.Put(w)
	kn := pb.kernel(m)
	whole := m / kn.mr * kn.mr
	pb.tiles(kn, 0, whole, a, beta, c, w)
	if whole < m {
		pb.tiles(pb.kernel(m-whole), whole, m, a, beta, c, w)
	}
}

// kernel picks the kernel for m rows: the one with the fewest padded
// multiply-adds, weighted by the kernel's cost per multiply-add (weight;
// on a tie the later in restKernels' list). MulAdd runs the whole tiles
// of the kernel it picks for all rows, then picks again for the rest.
func (pb *Packed) kernel(m int) *kernelInfo {
	best := defaultKernel
	cost := blocks(m, best.mr) * best.mr * blocks(pb.n, best.nr) * best.nr * best.weight()
	for _, kn := range restKernels() {
		if kn == rowKernelInfo() && pb.p64 == nil {
			continue
		}
		if c := blocks(m, kn.mr) * kn.mr * blocks(pb.n, kn.nr) * kn.nr * kn.weight(); c <= cost {
			best, cost = kn, c
		}
	}
	return best
}

// tiles computes rows [i0, i1) of c with kernel kn, k-block by k-block
// (Gemm's: the first with beta, the rest with 1), tile by tile; edge tiles
// (rows short of MR, columns past n) run on padded copies in w.
func (pb *Packed) tiles(kn *kernelInfo, i0, i1 int, a []float64, beta0 float64, c []float64, w *workBuf) {
	k, n := pb.k, pb.n
	mr, nr := kn.mr, kn.nr
	panels, pw := pb.p16, packedWidth
	if nr > pw {
		panels, pw = pb.p64, nr
	}
	packAll := nearMultiple4K(k * 8) // rows 4 KiB apart would share L1 sets
	nkb := blocks(k, kcMax)
	kc := blocks(k, nkb)
	for p0 := 0; p0 < k; p0 += kc {
		kcur := min(kc, k-p0)
		beta := beta0
		if p0 > 0 {
			beta = 1
		}
		for i := i0; i < i1; i += mr {
			rows := min(mr, i1-i)
			ap, lda, adk := a[i*k+p0:], k, 1
			if rows < mr || packAll {
				ap, lda, adk = w.pa[:mr*kcur], 1, mr
				packStrided(ap, mr, a, k, i, rows, p0, kcur)
			} else {
				ap = ap[:(mr-1)*k+kcur]
			}
			for j := 0; j < n; j += nr {
				cols := min(nr, n-j)
				q, o := j/pw, j%pw
				bp := panels[q*pw*k+p0*pw+o:]
				bp = bp[:(kcur-1)*pw+nr]
				off := i*n + j
				if rows == mr && cols == nr {
					kn.fn(kcur, ap, lda, adk, bp, pw, c[off:off+(mr-1)*n+nr], n, 1, beta)
					continue
				}
				tile := w.tile[:mr*nr]
				if beta != 0 {
					for r := range rows {
						copy(tile[r*nr:r*nr+cols], c[off+r*n:off+r*n+cols])
					}
				}
				kn.fn(kcur, ap, lda, adk, bp, pw, tile, nr, 1, beta)
				for r := range rows {
					copy(c[off+r*n:off+r*n+cols], tile[r*nr:r*nr+cols])
				}
			}
		}
	}
}
