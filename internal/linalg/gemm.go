package linalg

// The product, after Goto and van de Geijn ("Anatomy of high-performance
// matrix multiplication", 2008) and BLIS.
//
// Micro-kernel (asm/asm.go, kernel_go.go): keeps an MR×NR tile of c in
// registers (12×16 with AVX-512, 6×8 with AVX2, 4×4 in Go) and adds one
// outer product per k step with FMAs: an MR-element column of an A panel,
// element i at a[i·lda + p·adk], times an NR-element row of a B panel, NR
// contiguous doubles at b[p·ldb]. It then writes c = alpha·acc + beta·c
// (the first k-block uses the caller's beta, later ones beta = 1).
//
// Panels: those strides let the kernel read most panels in place, and the
// rest are packed, so one kernel serves all four transpose cases:
//
//   - B: when b is not transposed, row p of op(b) is row p of b, so a full
//     panel is read in place (ldb = n). When b is stored transposed (n×k),
//     op(b) is packed once per call into micro-panels (panel q holds
//     op(b)[p][q·NR+j] at q·NR·k + p·NR + j), shared by all tasks; the
//     packing is split into units that goroutines claim like tasks.
//   - A: when a is stored transposed (k×m), step p of a panel is MR
//     contiguous doubles, m apart (lda = 1, adk = m). When it is not, the
//     panel is MR rows of a, k apart (lda = k, adk = 1): MR sequential
//     streams, unless k·8 bytes is near a nonzero multiple of 4 KiB and
//     the rows would evict each other from the same L1 sets; then each
//     task packs its panels per k-block (panel r holds op(a)[i0+r·MR+i]
//     [p0+p] at r·MR·kc + p·MR + i).
//   - A last, partial panel (m or n not a multiple of the tile) is always
//     packed, padded with zeros, and its tiles run on a copy of c in a
//     small buffer, so the assembly has no edge cases.
//
// Packing in Go costs about half a nanosecond per element, as much as ~30
// multiply-adds: packing op(a) of X·W with n = 64 would cost about an
// eighth of the product, so panels are packed only where the layout needs
// it (op(b) of dY·Wᵀ, whose weights are small next to the batch).
//
// Blocking: k is split into equal k-blocks of at most kcMax steps; c into
// task blocks of whole micro-panels, at most mcMax×ncMax (see makePlan). A
// task runs its k-blocks in order; within one, B panel outer, A panel
// inner, so a kc×NR B panel (32 KiB at kc = 256 with AVX-512, 16 KiB with
// AVX2) is reused from L1 by the task's A panels (mc×kc, at most 288 KiB)
// from L2. The 12×16 kernel needs only about 9 bytes per cycle from its
// panels (2 loads of B per 24 FMAs), which L2 supplies easily, so the
// blocking is not delicate: kc from 128 to 512 measured within 3% on Zen 4.
//
// Parallelism: the tasks and packing units of a call are claimed one at a
// time from an atomic counter by the calling goroutine and by helpers
// (long-lived goroutines, see pool.go). Products under parallelMACs run on
// the caller alone.
//
// Determinism: each element of c gets, per k-block in increasing order,
// alpha·(one FMA per step in increasing p, from zero) + beta'·c. That
// depends only on k (the k-blocking) and not on the task partition, on
// which goroutine ran a task, on how many ran, on whether a panel was
// packed or read in place, or on which kernel ran (the assembly kernels and
// the Go one do the same arithmetic per element, FMA for FMA). The
// partition depends only on the shape.

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Blocking parameters.
const (
	// kcMax is the most k steps in one k-block. k is split into equal
	// k-blocks of at most kcMax (depending only on k), so that a B panel,
	// kc×NR doubles, fits a typical L1.
	kcMax = 256
	// mcMax is the most rows of a task's block of c (a multiple of every
	// kernel's MR: 12, 6 and 4), so that its A panels, mc×kc doubles, stay
	// in L2 while the task sweeps its B panels.
	mcMax = 144
	// ncMax is the most columns of a task's block of c (a multiple of every
	// NR). Packed A panels are packed once per task and k-block, so a
	// larger nc packs them fewer times.
	ncMax = 512
	// minTasks is how many tasks the partition aims for, by splitting c
	// finer than mcMax×ncMax when the shape is small, so that two or more
	// goroutines share the work evenly.
	minTasks = 8
	// minTaskMACs is the fewest multiply-adds a task should hold: the
	// partition does not split c finer than that.
	minTaskMACs = 1 << 16
	// parallelMACs is the fewest multiply-adds for which Gemm offers the
	// work to helpers; smaller products (a few microseconds) run on the
	// caller alone.
	parallelMACs = 1 << 18
	// packUnitElems is about how many elements of op(b) one packing unit
	// copies; units are shared out like tasks.
	packUnitElems = 1 << 13
)

// microKernel computes one MR×NR tile: see asm/asm.go for the contract.
// Step p reads a[i·lda + p·adk] for i < MR and b[p·ldb : p·ldb+NR]; c holds
// the tile at row stride ldc. The slices must be at least
// (MR-1)·lda+(k-1)·adk+1, (k-1)·ldb+NR and (MR-1)·ldc+NR long.
type microKernel func(k int, a []float64, lda, adk int, b []float64, ldb int, c []float64, ldc int, alpha, beta float64)

// kernelInfo describes one micro-kernel and its float32 counterpart (see
// gemm32.go), which the same name forces.
type kernelInfo struct {
	name       string
	mr, nr     int
	fn         microKernel
	mr32, nr32 int
	fn32       microKernel32
}

// tile returns the kernel's tile, float32's when f32.
func (kn *kernelInfo) tile(f32 bool) (mr, nr int) {
	if f32 {
		return kn.mr32, kn.nr32
	}
	return kn.mr, kn.nr
}

// defaultKernel is the best kernel the CPU runs; set by the build's init.
var defaultKernel *kernelInfo

// plan is the blocking of one product; it depends only on the shape, on
// whether op(b) is packed, and on the kernel's tile.
type plan struct {
	kc, nkb int // k-block length (the last may be shorter) and count
	mp, np  int // micro-panels down (⌈m/MR⌉) and across (⌈n/NR⌉)
	mb, nb  int // task blocks down and across
	tasks   int // tasks (mb·nb)
	upp     int // B micro-panels per packing unit
	upb     int // packing units per column block
	units   int // packing units in all (0 unless b is stored transposed)
}

// makePlan splits k into k-blocks and c into task blocks. Block ib of mb
// holds row micro-panels [ib·mp/mb, (ib+1)·mp/mb), so blocks differ by at
// most one micro-panel (likewise across), and a block spans at most mcMax
// rows and ncMax columns. Blocks are then split further, rows first, down
// to one micro-panel, until there are minTasks, as long as tasks keep at
// least minTaskMACs multiply-adds.
func makePlan(mr, nr int, tb bool, m, n, k int) plan {
	var p plan
	p.nkb = blocks(k, kcMax)
	p.kc = blocks(k, p.nkb)

	p.mp, p.np = blocks(m, mr), blocks(n, nr)
	p.mb, p.nb = blocks(p.mp, mcMax/mr), blocks(p.np, ncMax/nr)
	macs := m * n * k
	for p.mb*p.nb < minTasks {
		if p.mb < p.mp && macs/((p.mb+1)*p.nb) >= minTaskMACs {
			p.mb++
		} else if p.nb < p.np && macs/(p.mb*(p.nb+1)) >= minTaskMACs {
			p.nb++
		} else {
			break
		}
	}
	p.tasks = p.mb * p.nb

	if tb {
		p.upp = max(1, packUnitElems/(nr*k))
		p.upb = blocks(blocks(p.np, p.nb), p.upp)
		p.units = p.nb * p.upb
	}
	return p
}

// rowBlock returns the rows [i0, i1) of row block ib.
func (p *plan) rowBlock(ib, mr, m int) (i0, i1 int) {
	return ib * p.mp / p.mb * mr, min((ib+1)*p.mp/p.mb*mr, m)
}

// colPanels returns the B micro-panels [q0, q1) of column block jb.
func (p *plan) colPanels(jb int) (q0, q1 int) {
	return jb * p.np / p.nb, (jb + 1) * p.np / p.nb
}

// unit returns the column block of packing unit t and the micro-panels
// [q0, q1) it packs (possibly none).
func (p *plan) unit(t int) (jb, q0, q1 int) {
	jb, u := t/p.upb, t%p.upb
	b0, b1 := p.colPanels(jb)
	q0 = min(b0+u*p.upp, b1)
	return jb, q0, min(q0+p.upp, b1)
}

// nearMultiple4K reports whether a stride of s bytes is within 512 bytes
// of a nonzero multiple of 4 KiB.
func nearMultiple4K(s int) bool {
	r := s % 4096
	return s >= 4096-512 && (r < 512 || r > 4096-512)
}

// blocks returns ⌈n/size⌉.
func blocks(n, size int) int { return (n + size - 1) / size }

// job is one Gemm call shared by the goroutines that work on it.
type job struct {
	kn      *kernelInfo
	ta, tb  bool
	m, n, k int
	alpha   float64
	beta    float64
	a, b, c []float64
	p       plan
	pb      []float64 // packed op(b): see run
	// direct is whether full micro-panels of op(a) are read in place
	// rather than packed: always when a is stored transposed (a panel's k
	// steps are then MR contiguous doubles, m apart); otherwise (the
	// kernel then reads MR rows of a, k apart, one element of each per
	// step) unless k·8 bytes is within 512 bytes of a nonzero multiple of
	// 4 KiB, where the rows would fall in the same few L1 sets and evict
	// each other.
	direct bool

	// next hands out work: first the packing units, then the tasks.
	next atomic.Int64
	// packed counts, per column block, the packing units done.
	packed []atomic.Int32
	// state admits helpers: bit 62 is set once the job is closed to new
	// helpers, bits 32–61 hold how many may join, bits 0–31 how many are
	// working on it.
	state atomic.Int64
	// done receives one value from the helper that leaves a closed job
	// last, if any was working on it when it closed.
	done chan struct{}
	// gen counts the calls that have used this job (it is pooled).
	gen atomic.Uint64
	// prev is the job this one replaced on offer, put back when this one
	// closes (see pool.go).
	prev *job

	// fn, when not nil, makes this a Parallel job: its tasks are fn(t)
	// for t < fnTasks, not a product's.
	fn      func(t int)
	fnTasks int

	// f32 makes this a float32 product (gemm32.go): every panel is packed,
	// converted to float32, op(b)'s into pb32 by the packing units. Its
	// operands are a or a32 and b or b32 (GemmF32Of), the others nil.
	f32      bool
	pb32     []float32
	a32, b32 []float32
}

// workBuf is one goroutine's scratch: the packed A block (float64 or
// float32) and an edge tile (the largest kernel's: 12×32).
type workBuf struct {
	pa   []float64
	pa32 []float32
	tile []float64
}

var (
	jobPool  = sync.Pool{New: func() any { return &job{done: make(chan struct{}, 1)} }}
	workPool = sync.Pool{New: func() any {
		return &workBuf{pa: make([]float64, mcMax*kcMax), pa32: make([]float32, mcMax*kcMax), tile: make([]float64, 12*32)}
	}}
	bPool   = sync.Pool{New: func() any { return new([]float64) }}
	b32Pool = sync.Pool{New: func() any { return new([]float32) }}
)

// run computes the product with at most workers goroutines.
func run(kn *kernelInfo, ta, tb bool, m, n, k int, alpha float64, a, b []float64, beta float64, c []float64, workers int) {
	j := jobPool.Get().(*job)
	j.kn, j.ta, j.tb, j.m, j.n, j.k = kn, ta, tb, m, n, k
	j.alpha, j.beta, j.a, j.b, j.c = alpha, beta, a, b, c
	j.f32 = false
	j.p = makePlan(kn.mr, kn.nr, tb, m, n, k)
	j.direct = ta || !nearMultiple4K(k*8)
	j.reset()
	// Packed op(b): every panel when b is stored transposed, else only a
	// last, partial panel (full panels are read in place).
	need := 0
	if tb {
		need = j.p.np * kn.nr * k
	} else if n%kn.nr != 0 {
		need = kn.nr * k
	}
	bp := bPool.Get().(*[]float64)
	if cap(*bp) < need {
		*bp = make([]float64, need)
	}
	j.pb = (*bp)[:need]
	if !tb && need > 0 {
		c0 := (j.p.np - 1) * kn.nr
		packContig(j.pb, kn.nr, b, n, c0, n-c0, 0, k)
	}

	j.runWith(workers)
	j.a, j.b, j.c, j.pb = nil, nil, nil, nil
	jobPool.Put(j)
	bPool.Put(bp)
}

// reset readies a pooled job's counters for its plan.
func (j *job) reset() {
	j.next.Store(0)
	if cap(j.packed) < j.p.nb {
		j.packed = make([]atomic.Int32, j.p.nb)
	}
	j.packed = j.packed[:j.p.nb]
	for i := range j.packed {
		j.packed[i].Store(0)
	}
}

// runWith works on the planned product with at most workers goroutines
// (one below parallelMACs).
func (j *job) runWith(workers int) {
	if j.m*j.n*j.k < parallelMACs {
		workers = 1
	}
	workers = min(workers, j.p.tasks)
	if workers > 1 {
		j.gen.Add(1)
		j.state.Store(int64(workers-1) << 32) // open
		offer(j, workers-1)
		j.work()
		j.close()
	} else {
		j.work()
	}
}

// work claims packing units, then tasks, until none are left.
func (j *job) work() {
	if j.fn != nil {
		for {
			t := j.next.Add(1) - 1
			if t >= int64(j.fnTasks) {
				return
			}
			j.fn(int(t))
		}
	}
	units, total := int64(j.p.units), int64(j.p.units+j.p.tasks)
	if j.next.Load() >= total {
		return
	}
	w := workPool.Get().(*workBuf)
	for {
		t := j.next.Add(1) - 1
		if t >= total {
			break
		}
		switch {
		case j.f32 && t < units:
			j.packUnit32(int(t))
		case j.f32:
			j.task32(int(t-units), w)
		case t < units:
			j.packUnit(int(t))
		default:
			j.task(int(t-units), w)
		}
	}
	workPool.Put(w)
}

// packUnit packs the unit t of op(b) (b stored transposed): micro-panels
// [q0, q1) of one column block, all k rows.
func (j *job) packUnit(t int) {
	nr := j.kn.nr
	jb, q0, q1 := j.p.unit(t)
	for q := q0; q < q1; q++ {
		c0 := q * nr
		// b is n×k: column c of op(b) is row c of b.
		packStrided(j.pb[q*nr*j.k:(q+1)*nr*j.k], nr, j.b, j.k, c0, min(nr, j.n-c0), 0, j.k)
	}
	j.packed[jb].Add(1)
}

// task computes block t of c (column-block major, so the first tasks need
// the first packed panels).
func (j *job) task(t int, w *workBuf) {
	p, kn := &j.p, j.kn
	mr, nr := kn.mr, kn.nr
	jb, ib := t/p.mb, t%p.mb
	i0, i1 := p.rowBlock(ib, mr, j.m)
	q0, q1 := p.colPanels(jb)
	j0 := q0 * nr
	mcur, ncur := i1-i0, min(q1*nr, j.n)-j0
	mpan := blocks(mcur, mr)
	n := j.n

	for kb := range p.nkb {
		p0 := kb * p.kc
		kcur := min(p.kc, j.k-p0)
		// Pack the micro-panels of op(a)[i0:i0+mcur, p0:p0+kcur] that are
		// not read in place (see job.direct), zero-padded to MR rows.
		for r := range mpan {
			rows := min(mr, mcur-r*mr)
			if rows == mr && j.direct {
				continue
			}
			dst := w.pa[r*mr*kcur : (r+1)*mr*kcur]
			if j.ta {
				packContig(dst, mr, j.a, j.m, i0+r*mr, rows, p0, kcur)
			} else {
				packStrided(dst, mr, j.a, j.k, i0+r*mr, rows, p0, kcur)
			}
		}
		if kb == 0 {
			// The packed panels of this column block must be complete;
			// whoever claimed their units is packing them now.
			for want := int32(p.upb); j.packed[jb].Load() < want; {
				runtime.Gosched()
			}
		}
		beta := j.beta
		if kb > 0 {
			beta = 1
		}
		for jr := 0; jr < ncur; jr += nr {
			cols := min(nr, ncur-jr)
			bp, ldb := j.bPanel((j0+jr)/nr, p0, kcur)
			for r := range mpan {
				rows := min(mr, mcur-r*mr)
				ap, lda, adk := w.pa[r*mr*kcur:(r+1)*mr*kcur], 1, mr
				if rows == mr && j.direct {
					if j.ta {
						lda, adk = 1, j.m
						ap = j.a[p0*j.m+i0+r*mr:]
					} else {
						lda, adk = j.k, 1
						ap = j.a[(i0+r*mr)*j.k+p0:]
					}
					ap = ap[:(mr-1)*lda+(kcur-1)*adk+1]
				}
				off := (i0+r*mr)*n + j0 + jr
				if rows == mr && cols == nr {
					kn.fn(kcur, ap, lda, adk, bp, ldb, j.c[off:off+(mr-1)*n+nr], n, j.alpha, beta)
					continue
				}
				// Edge tile: run the kernel on a padded copy.
				tile := w.tile[:mr*nr]
				if beta != 0 {
					for i := range rows {
						copy(tile[i*nr:i*nr+cols], j.c[off+i*n:off+i*n+cols])
					}
				}
				kn.fn(kcur, ap, lda, adk, bp, ldb, tile, nr, j.alpha, beta)
				for i := range rows {
					copy(j.c[off+i*n:off+i*n+cols], tile[i*nr:i*nr+cols])
				}
			}
		}
	}
}

// bPanel returns k steps [p0, p0+kc) of B micro-panel q and the stride of
// its steps: packed (stride NR), or, when b is stored untransposed and the
// panel is full, in place in b (stride n).
func (j *job) bPanel(q, p0, kc int) ([]float64, int) {
	nr := j.kn.nr
	switch {
	case j.tb:
		off := q*nr*j.k + p0*nr
		return j.pb[off : off+kc*nr], nr
	case (q+1)*nr <= j.n:
		off := p0*j.n + q*nr
		return j.b[off : off+(kc-1)*j.n+nr], j.n
	default:
		return j.pb[p0*nr : (p0+kc)*nr], nr
	}
}

// packContig packs into dst (w-wide micro-panel rows) the elements
// src[(p0+p)·ld + r0+i] for p < np, i < rows, zero for rows ≤ i < w:
// each packed row is a contiguous run of src.
func packContig(dst []float64, w int, src []float64, ld, r0, rows, p0, np int) {
	dst = dst[:np*w]
	src = src[p0*ld+r0:]
	if rows == w {
		// Whole rows: fixed-size array copies, no call per row.
		switch w {
		case 16:
			for p := range np {
				*(*[16]float64)(dst[p*16:]) = *(*[16]float64)(src[p*ld:])
			}
			return
		case 12:
			for p := range np {
				*(*[12]float64)(dst[p*12:]) = *(*[12]float64)(src[p*ld:])
			}
			return
		case 8:
			for p := range np {
				*(*[8]float64)(dst[p*8:]) = *(*[8]float64)(src[p*ld:])
			}
			return
		case 6:
			for p := range np {
				*(*[6]float64)(dst[p*6:]) = *(*[6]float64)(src[p*ld:])
			}
			return
		case 4:
			for p := range np {
				*(*[4]float64)(dst[p*4:]) = *(*[4]float64)(src[p*ld:])
			}
			return
		}
	}
	for p := range np {
		d := dst[p*w : p*w+w]
		copy(d, src[p*ld:p*ld+rows])
		clear(d[rows:])
	}
}

// packStrided packs into dst (w-wide micro-panel rows) the elements
// src[(r0+i)·ld + p0+p] for p < np, i < rows, zero for rows ≤ i < w: each
// packed row gathers one element from each of rows runs of src.
func packStrided(dst []float64, w int, src []float64, ld, r0, rows, p0, np int) {
	dst = dst[:np*w]
	i := 0
	// Four rows at a time: four sequential reads, one 32-byte write per p.
	for ; i+4 <= rows; i += 4 {
		s0 := src[(r0+i)*ld+p0 : (r0+i)*ld+p0+np]
		s1 := src[(r0+i+1)*ld+p0 : (r0+i+1)*ld+p0+np]
		s2 := src[(r0+i+2)*ld+p0 : (r0+i+2)*ld+p0+np]
		s3 := src[(r0+i+3)*ld+p0 : (r0+i+3)*ld+p0+np]
		s1, s2, s3 = s1[:len(s0)], s2[:len(s0)], s3[:len(s0)]
		for p, v := range s0 {
			d := (*[4]float64)(dst[p*w+i:])
			d[0], d[1], d[2], d[3] = v, s1[p], s2[p], s3[p]
		}
	}
	for ; i < rows; i++ {
		s := src[(r0+i)*ld+p0 : (r0+i)*ld+p0+np]
		for p, v := range s {
			dst[p*w+i] = v
		}
	}
	if rows < w {
		for p := range np {
			clear(dst[p*w+rows : p*w+w])
		}
	}
}
