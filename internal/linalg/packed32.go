package linalg

// Float32 products with a fixed right-hand side on small row blocks:
// Packed's counterpart for GemmF32.
//
// GemmF32 rounds op(b) to float32 and packs it into its kernel's panels on
// every call, plans the product and takes a job from the pool. Packed32
// keeps the weights rounded and packed once, in the panels of the kernel
// chosen when they were packed (NR32 columns, zero-padded), and runs the
// rows on the calling goroutine: each k-block of each chunk of at most
// mcMax rows packs the rows of a (float32 or float64, rounded to float32
// as GemmF32 rounds them) in tiles of MR32 rows, zero-padded, and the
// kernel computes tile by tile.
//
// Bits: the kernel does GemmF32's arithmetic per element (per k-block,
// one float32 FMA per step in increasing p from zero, then, in float64,
// c = fma(1, acc, c), or c = acc for a first k-block with beta 0), with
// GemmF32's k-blocks, on the same float32 operands, so MulAdd's c is
// GemmF32Of's bit for bit, whichever kernel packed the weights
// (TestPacked32MatchesGemmF32). MulTiles hands each tile of a·B (one
// k-block: c = acc) to a function of the caller's, which may add a bias and
// apply an activation while the tile is in cache: acc + b is fma(1, acc, b),
// GemmF32's bits on c = b.

// Packed32 is a k×n matrix B rounded to float32 and packed once for the
// products of MulAdd and MulTiles. It is immutable after PackB32, so safe
// for concurrent use.
type Packed32 struct {
	k, n int
	kn   *kernelInfo // the kernel whose panels p holds
	p    []float32   // panel q (columns [q·NR32, q·NR32+NR32)) at q·NR32·k, step p at p·NR32
	// inPlace is kn's kernel that reads a float32 A in place (nil where it
	// has none): a whole tile of MR32 rows of a float32 A is then not
	// packed, only the last, partial one.
	inPlace microKernel32S
	// relu and reluInPlace are kn's kernels with a bias and ReLU in their
	// update, reading A packed and in place (nil where kn has none): they
	// store MulBiasReLU32's whole tiles.
	relu        microKernel32R
	reluInPlace microKernel32SR
}

// microKernel32R is microKernel32 with a hidden layer's bias and ReLU in
// its update: c (float32) gets float32(max(acc + bias[j], 0)), acc
// widened to float64 and bias[i·ldb + j] added in float64 (ldb = 0: one
// bias row for the tile), with BiasReLU32's bits
// (kernel12x32AVX512F32R). microKernel32SR reads A in place as
// microKernel32S does (kernel12x32AVX512F32SR).
type (
	microKernel32R  func(k int, a []float32, b []float32, bias []float64, ldb int, c []float32, ldc int)
	microKernel32SR func(k int, a []float32, lda int, b []float32, bias []float64, ldb int, c []float32, ldc int)
)

// microKernel32S is microKernel32 reading A in place: element (i, p) of the
// tile's A at a[i·lda + p], the rows of a row-major float32 matrix. Its
// arithmetic is microKernel32's, so are its bits (kernel12x32AVX512F32S,
// kernel6x16AVX2F32S).
type microKernel32S func(k int, a []float32, lda int, b []float32, c []float64, ldc int, alpha, beta float64)

// PackB32 rounds the k×n row-major matrix b to float32 and packs it for the
// kernel the CPU runs (b is copied, not kept): on an AVX-512 CPU, a
// narrower kernel's panels where n is narrow enough that the AVX-512
// kernel's 32 columns would double the padded work (n ≤ 8: 12×8 tiles on
// 256-bit registers; n ≤ 16: the AVX2 kernel's 6×16, as pickKernel rules
// for a block of mcMax rows). Every kernel gives the same bits.
func PackB32(k, n int, b []float64) *Packed32 {
	return packB32(packKernel32(n), k, n, b)
}

// packB32 is PackB32 for the kernel kn.
func packB32(kn *kernelInfo, k, n int, b []float64) *Packed32 {
	if k < 1 || n < 1 || len(b) < k*n {
		panic("linalg: PackB32: bad shape")
	}
	nr := kn.nr32
	np := blocks(n, nr)
	p := make([]float32, np*nr*k)
	for q := range np {
		c0 := q * nr
		packContig32(p[q*nr*k:(q+1)*nr*k], nr, b, n, c0, min(nr, n-c0), 0, k)
	}
	pb := &Packed32{k: k, n: n, kn: kn, p: p, inPlace: stridedKernel32(kn)}
	pb.relu, pb.reluInPlace = reluKernels32(kn)
	return pb
}

// K returns the number of rows of B.
func (pb *Packed32) K() int { return pb.k }

// N returns the number of columns of B.
func (pb *Packed32) N() int { return pb.n }

// OneBlock reports whether B's k rows make one k-block of GemmF32's, as
// MulTiles requires.
func (pb *Packed32) OneBlock() bool { return pb.k <= kcMax }

// Tile32 receives a tile of a product: rows [i, i+rows) and columns
// [j, j+cols) of the result, element (r, c) at t[r·ldt+c].
type Tile32 func(i, j, rows, cols int, t []float64, ldt int)

// MulAdd32 sets c = a·B + c, with a m×k (row-major, contiguous, float32
// or float64) and c m×n (row-major, contiguous, float64), on the calling
// goroutine: bit for bit GemmF32Of(false, false, m, n, k, 1, a, B, 1, c).
func MulAdd32[A Float](pb *Packed32, m int, a []A, c []float64) {
	if len(c) < m*pb.n {
		panic("linalg: MulAdd32: short slice")
	}
	mulPacked32(pb, m, a, dest32{c: c}, nil)
}

// MulTiles32 computes a·B, with a m×k (row-major, contiguous, float32 or
// float64), on the calling goroutine, handing each tile to f in turn
// rather than storing it: element (i, j) is GemmF32Of(false, false, m, n,
// k, 1, a, B, 0, c)'s c[i·n+j], bit for bit. B must be one k-block
// (OneBlock). The tile's slice is reused for the next tile.
func MulTiles32[A Float](pb *Packed32, m int, a []A, f Tile32) {
	if !pb.OneBlock() {
		panic("linalg: MulTiles32: more than one k-block")
	}
	mulPacked32(pb, m, a, dest32{}, f)
}

// MulBiasReLU32 sets out (m×n, row-major, float32) to float32(max(a·B +
// bias, 0)), with a m×k (row-major, contiguous, float32 or float64) and
// bias of n at least, on the calling goroutine: bit for bit MulTiles32's
// tiles t passed through BiasReLU32(out row, t row, bias), a hidden layer
// of a float32 net with ReLU. B must be one k-block (OneBlock). On AVX-512
// CPUs whole tiles run kernels that add the bias and apply the ReLU in
// their update, the float64 tile never stored.
func MulBiasReLU32[A Float](pb *Packed32, m int, a []A, bias []float64, out []float32) {
	if !pb.OneBlock() {
		panic("linalg: MulBiasReLU32: more than one k-block")
	}
	if len(out) < m*pb.n || len(bias) < pb.n {
		panic("linalg: MulBiasReLU32: short slice")
	}
	mulPacked32(pb, m, a, dest32{bias: bias, out: out}, nil)
}

// MulAddReLU32 is MulAdd32 followed by out = float32(max(c, 0)) (m×n,
// row-major, float32), for a hidden layer of a float32 net with ReLU of
// more than one k-block, c set to its bias: it adds every k-block's sum
// but the last into c, and the last block's as MulBiasReLU32 adds a bias,
// c's row for each row (acc + c is fma(1, acc, c), MulAdd32's number), so
// out gets MulAdd32's c passed through ReLU, bit for bit, and c is left
// without the last block's sum.
func MulAddReLU32[A Float](pb *Packed32, m int, a []A, c []float64, out []float32) {
	if len(out) < m*pb.n || len(c) < m*pb.n {
		panic("linalg: MulAddReLU32: short slice")
	}
	mulPacked32(pb, m, a, dest32{bias: c, ldb: pb.n, out: out}, nil)
}

// dest32 is where mulPacked32 puts a·B when it is given no Tile32: c +=
// a·B (c set) or float32(max(a·B + bias, 0)) into out (out set), row i of
// the bias at bias[i·ldb] (ldb 0 or n; with n, the k-blocks before the
// last are added into bias as into c). (The
// Tile32 goes apart: the slices reach the kernels, function values to the
// escape analysis, and a function in the same struct would escape with
// them.)
type dest32 struct {
	c    []float64
	bias []float64
	ldb  int
	out  []float32
}

// mulPacked32 is MulAdd32, MulTiles32 (f set) and MulBiasReLU32 (by d's
// field set), over chunks of at most mcMax rows.
func mulPacked32[A Float](pb *Packed32, m int, a []A, d dest32, f Tile32) {
	k := pb.k
	if m == 0 {
		return
	}
	if len(a) < m*k {
		panic("linalg: Packed32: short slice")
	}
	w := workPool.Get().(*workBuf)
	defer workPool.Put(w)
	nkb := blocks(k, kcMax)
	kc := blocks(k, nkb)
	for i0 := 0; i0 < m; i0 += mcMax {
		i1 := min(i0+mcMax, m)
		for p0 := 0; p0 < k; p0 += kc {
			dp := d
			if d.out != nil && p0+kc < k { // a block before the last: into the bias rows
				dp = dest32{c: d.bias}
			}
			chunk32(pb, i0, i1, p0, min(kc, k-p0), a, dp, f, w)
		}
	}
}

// chunk32 computes rows [i0, i1) of the product for the k-block of kcur steps
// from p0: it packs those rows of a in tiles of MR32 rows into w.pa32 (a
// float32 a whose kernel reads it in place: the last, partial tile only),
// then runs the kernel panel by panel, tile by tile, into d.c (beta 1: c +=
// the block's sum), into w.tile (beta 0) handed to f, or into d.out.
func chunk32[A Float](pb *Packed32, i0, i1, p0, kcur int, a []A, d dest32, f Tile32, w *workBuf) {
	k, n, kn := pb.k, pb.n, pb.kn
	mr, nr := kn.mr32, kn.nr32
	a32, inPlace := any(a).([]float32)
	inPlace = inPlace && pb.inPlace != nil
	for i := i0; i < i1; i += mr {
		if inPlace && i+mr <= i1 {
			continue
		}
		dst := w.pa32[(i-i0)*kcur : (i-i0+mr)*kcur]
		packStrided32(dst, mr, a, k, i, min(mr, i1-i), p0, kcur)
	}
	// aIn returns the tile of rows [i, i+mr) of a read in place; ap its
	// packed panel.
	aIn := func(i int) []float32 { return a32[i*k+p0 : (i+mr-1)*k+p0+kcur] }
	ap := func(i int) []float32 { return w.pa32[(i-i0)*kcur : (i-i0+mr)*kcur] }
	// run computes the tile of rows [i, i+rows) into c (row stride ldc).
	run := func(i, rows int, bp []float32, c []float64, ldc int, beta float64) {
		if inPlace && rows == mr {
			pb.inPlace(kcur, aIn(i), k, bp, c, ldc, 1, beta)
			return
		}
		kn.fn32(kcur, ap(i), bp, c, ldc, 1, beta)
	}
	c := d.c
	for j := 0; j < n; j += nr {
		cols := min(nr, n-j)
		bp := pb.p[j*k+p0*nr : j*k+(p0+kcur)*nr]
		for i := i0; i < i1; i += mr {
			rows := min(mr, i1-i)
			off := i*n + j
			switch {
			case d.out != nil && rows == mr && cols == nr && pb.relu != nil:
				out, bias := d.out[off:off+(mr-1)*n+nr], d.bias[i*d.ldb+j:i*d.ldb+(mr-1)*d.ldb+j+nr]
				if inPlace {
					pb.reluInPlace(kcur, aIn(i), k, bp, bias, d.ldb, out, n)
				} else {
					pb.relu(kcur, ap(i), bp, bias, d.ldb, out, n)
				}
			case d.out != nil:
				tile := w.tile[:mr*nr]
				run(i, rows, bp, tile, nr, 0)
				for r := range rows {
					BiasReLU32(d.out[off+r*n:off+r*n+cols], tile[r*nr:], d.bias[(i+r)*d.ldb+j:])
				}
			case f != nil:
				tile := w.tile[:mr*nr]
				run(i, rows, bp, tile, nr, 0)
				f(i, j, rows, cols, tile, nr)
			case rows == mr && cols == nr:
				run(i, rows, bp, c[off:off+(mr-1)*n+nr], n, 1)
			default:
				tile := w.tile[:mr*nr]
				for r := range rows {
					copy(tile[r*nr:r*nr+cols], c[off+r*n:off+r*n+cols])
				}
				run(i, rows, bp, tile, nr, 1)
				for r := range rows {
					copy(c[off+r*n:off+r*n+cols], tile[r*nr:r*nr+cols])
				}
			}
		}
	}
}
