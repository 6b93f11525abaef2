// Command asm generates the amd64 micro-kernels of package linalg with avo.
//
// It lives in its own module so that the main module does not depend on
// avo. Regenerate from internal/linalg with
//
//	go generate
//
// which runs
//
//	go run -C asm . -out ../kernel_amd64.s -stubs ../kernel_amd64_stub.go -pkg linalg
//
// Both kernels compute one register-blocked MR×NR tile of C from a panel of
// A whose element (i, p) is a[i·lda + p·adk] and a panel of B whose step p
// is the NR contiguous doubles at b[p·ldb] (see ../gemm.go: packed panels,
// or panels read in place from a or b):
//
//	acc[i][j] = Σ_p a[i·lda+p·adk] · b[p·ldb+j]      (p = 0 … k-1, in order, one FMA each)
//	c[i·ldc+j] = alpha·acc[i][j] + beta·c[i·ldc+j]   (c is not read when beta is 0)
//
// Every element's arithmetic is the same in both kernels (one accumulator
// per element, FMAs in increasing p, then one multiply and one FMA), so the
// AVX2 and the AVX-512 kernel give bit-identical results.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// kernel describes one micro-kernel.
type kernel struct {
	name   string
	doc    []string
	mr, nr int           // tile rows and columns
	lanes  int           // doubles per vector register
	vec    []VecPhysical // the vector registers, by number
	bcst   bool          // broadcast A through the FMA's memory operand (AVX-512)
	// strided: a float32 kernel that reads A in place, element (i, p) at
	// a[i·lda + p], rather than from a packed panel (see gen32).
	strided bool
	// relu: a float32 kernel whose update stores float32(max(acc + bias, 0))
	// into a float32 c rather than alpha·acc (+ beta·c) into a float64 one,
	// row i of the bias at bias[i·ldb] (ldb = 0: one row for all; see
	// updateReLU32).
	relu bool
}

var ymm = []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}

var zmm = []VecPhysical{
	Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
	Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31,
}

func main() {
	ConstraintExpr("amd64,!purego") // avo v0.5 takes the old +build syntax

	gen(kernel{
		name: "kernel6x8AVX2",
		doc: []string{
			"kernel6x8AVX2 computes a 6×8 tile of C with AVX2 and FMA3.",
			"Step p of the k loop reads a[i·lda + p·adk] for rows i < 6 and",
			"b[p·ldb : p·ldb+8]; c holds the tile's rows at stride ldc.",
			"",
			"Registers: Y0–Y11 hold the 48 accumulators, row i in Y(2i) (columns 0–3)",
			"and Y(2i+1) (columns 4–7); Y12, Y13 hold the current row of the B panel;",
			"Y14 holds a broadcast element of the A panel. Per k step: 2 loads,",
			"6 broadcasts, 12 FMAs, so 12 independent FMA chains hide the FMA latency",
			"(4 cycles × 2 pipes needs at least 8). The final update reuses Y12–Y14",
			"for alpha, beta and scratch.",
		},
		mr: 6, nr: 8, lanes: 4, vec: ymm,
	})

	gen(kernel{
		name: "kernel12x16AVX512",
		doc: []string{
			"kernel12x16AVX512 computes a 12×16 tile of C with AVX-512F.",
			"Step p of the k loop reads a[i·lda + p·adk] for rows i < 12 and",
			"b[p·ldb : p·ldb+16]; c holds the tile's rows at stride ldc.",
			"",
			"Registers: Z0–Z23 hold the 192 accumulators, row i in Z(2i) (columns 0–7)",
			"and Z(2i+1) (columns 8–15); Z24, Z25 hold the current row of the B panel.",
			"Each element of the A panel is broadcast straight from memory by the FMA",
			"(embedded broadcast), so per k step: 2 loads and 24 FMAs, with 24",
			"independent FMA chains. The final update reuses Z24–Z26 for alpha, beta, scratch.",
		},
		mr: 12, nr: 16, lanes: 8, vec: zmm, bcst: true,
	})

	gen(kernel{
		name: "kernel1x64AVX512",
		doc: []string{
			"kernel1x64AVX512 computes a 1×64 tile of C with AVX-512F: a product of",
			"one row (a scoring call of one row), where the 12×16 kernel's tile",
			"would be eleven rows of padding.",
			"Step p of the k loop reads a[p·adk] and b[p·ldb : p·ldb+64].",
			"",
			"Registers: Z0–Z7 hold the 64 accumulators; Z8–Z15 the current row of",
			"the B panel. Per k step: 8 loads and 8 FMAs (embedded broadcast of A),",
			"8 independent FMA chains. The final update reuses Z8–Z10.",
		},
		mr: 1, nr: 64, lanes: 8, vec: zmm, bcst: true,
	})

	genKernels32()

	genConvert()
	genPeak()

	Generate()
}

// gen emits one kernel.
func gen(kn kernel) {
	TEXT(kn.name, NOSPLIT, "func(k int, a []float64, lda, adk int, b []float64, ldb int, c []float64, ldc int, alpha, beta float64)")
	Pragma("noescape")
	Doc(kn.doc...)
	g := newGen64(kn)
	g.setup()
	g.loop()
	g.update()
}

// gen64 is the state of one float64 kernel's generation: its tile, its
// accumulator and panel registers, and the registers that address A.
type gen64 struct {
	kn    kernel
	nv    int // vector registers per tile row
	nacc  int
	bReg  []VecPhysical
	aReg  VecPhysical // only without embedded broadcast
	vsize int         // bytes per vector register
	aBase []GPPhysical
}

func newGen64(kn kernel) *gen64 {
	nv := kn.nr / kn.lanes
	nacc := kn.mr * nv
	return &gen64{kn: kn, nv: nv, nacc: nacc, bReg: kn.vec[nacc : nacc+nv], aReg: kn.vec[nacc+nv], vsize: 8 * kn.lanes,
		aBase: []GPPhysical{RAX, R13, RDI}[:(kn.mr+3)/4]}
}

// acc is the accumulator of row i, vector v of the tile.
func (g *gen64) acc(i, v int) VecPhysical { return g.kn.vec[i*g.nv+v] }

// setup loads the arguments, zeroes the accumulators and prefetches the C
// tile.
func (g *gen64) setup() {
	kn := g.kn
	Comment(
		"Element (i, p) of the A panel is at a + (i·lda + p·adk)·8: rows 0–3 are",
		"addressed from AX, rows 4–7 from R13, rows 8–11 from DI, as base,",
		"base+R11, base+2·R11, base+R12 with R11 = lda·8, R12 = 3·lda·8; each k",
		"step adds R8 = adk·8 to the bases. Step p of the B panel is at",
		"BX + p·ldb·8: R9, R10 hold ldb·8, 3·ldb·8, so four steps are addressed",
		"without adds. CX counts k steps; DX is the current row of the C tile,",
		"SI is ldc·8.",
	)
	Load(Param("k"), RCX)
	Load(Param("a").Base(), RAX)
	Load(Param("b").Base(), RBX)
	Load(Param("c").Base(), RDX)
	Load(Param("ldc"), RSI)
	SHLQ(U8(3), RSI)
	loadStrided(3, g.aBase)
	Load(Param("ldb"), R9)
	SHLQ(U8(3), R9)
	LEAQ(Mem{Base: R9, Index: R9, Scale: 2}, R10)

	Comment("Zero the accumulators.")
	for i := 0; i < g.nacc; i++ {
		if kn.lanes == 8 {
			VPXORQ(kn.vec[i], kn.vec[i], kn.vec[i])
		} else {
			VXORPD(kn.vec[i], kn.vec[i], kn.vec[i])
		}
	}

	Comment("Prefetch the C tile (first and last byte of each row) for the final update.")
	MOVQ(RDX, R8)
	for i := 0; i < kn.mr; i++ {
		PREFETCHT0(Mem{Base: R8})
		PREFETCHT0(Mem{Base: R8, Disp: 8*kn.nr - 1})
		if i < kn.mr-1 {
			ADDQ(RSI, R8)
		}
	}
	Load(Param("adk"), R8)
	SHLQ(U8(3), R8)
}

// aAt returns the address of row i of the A panel at the current step.
func (g *gen64) aAt(i int) Mem { return stridedAt(g.aBase, i, 0) }

// loadStrided emits the registers that address the rows of an A read at
// a row stride (lda, from the argument, times 1<<shift bytes): R11 the
// stride, R12 three strides, and bases[r] = bases[r−1] + 4 strides (rows
// 4r to 4r+3), bases[0] already loaded.
func loadStrided(shift uint8, bases []GPPhysical) {
	Load(Param("lda"), R11)
	SHLQ(U8(shift), R11)
	LEAQ(Mem{Base: R11, Index: R11, Scale: 2}, R12)
	for i := 1; i < len(bases); i++ {
		LEAQ(Mem{Base: bases[i-1], Index: R11, Scale: 4}, bases[i])
	}
}

// stridedAt returns the address of row i of an A addressed by loadStrided,
// disp bytes on: base, base+R11, base+2·R11, base+R12.
func stridedAt(bases []GPPhysical, i, disp int) Mem {
	m := Mem{Base: bases[i/4], Disp: disp}
	switch i % 4 {
	case 1:
		m.Index, m.Scale = R11, 1
	case 2:
		m.Index, m.Scale = R11, 2
	case 3:
		m.Index, m.Scale = R12, 1
	}
	return m
}

// bAt returns the address of byte disp of the B panel, u (0…3) steps on.
func bAt(u, disp int) Mem {
	m := Mem{Base: RBX, Disp: disp}
	switch u {
	case 1:
		m.Index, m.Scale = R9, 1
	case 2:
		m.Index, m.Scale = R9, 2
	case 3:
		m.Index, m.Scale = R10, 1
	}
	return m
}

// step emits one k step, u steps past BX (and at the A bases, which it
// then advances).
func (g *gen64) step(u int) {
	kn := g.kn
	for v := 0; v < g.nv; v++ {
		VMOVUPD(bAt(u, g.vsize*v), g.bReg[v])
	}
	for i := 0; i < kn.mr; i++ {
		if kn.bcst {
			for v := 0; v < g.nv; v++ {
				VFMADD231PD_BCST(g.aAt(i), g.bReg[v], g.acc(i, v))
			}
		} else {
			VBROADCASTSD(g.aAt(i), g.aReg)
			for v := 0; v < g.nv; v++ {
				VFMADD231PD(g.bReg[v], g.aReg, g.acc(i, v))
			}
		}
	}
	for _, r := range g.aBase {
		ADDQ(R8, r)
	}
}

// loop emits the k loop: four steps an iteration, then one at a time.
func (g *gen64) loop() {
	name := g.kn.name
	Comment("Main loop: four k steps per iteration.")
	CMPQ(RCX, U32(4))
	JB(LabelRef(name + "_tail"))
	Label(name + "_loop")
	for u := 0; u < 4; u++ {
		g.step(u)
	}
	LEAQ(Mem{Base: RBX, Index: R9, Scale: 4}, RBX)
	SUBQ(U32(4), RCX)
	CMPQ(RCX, U32(4))
	JAE(LabelRef(name + "_loop"))

	Comment("Remaining k steps, one at a time.")
	Label(name + "_tail")
	TESTQ(RCX, RCX)
	JZ(LabelRef(name + "_update"))
	Label(name + "_tailloop")
	g.step(0)
	ADDQ(R9, RBX)
	DECQ(RCX)
	JNZ(LabelRef(name + "_tailloop"))
}

// update emits c = alpha·acc, or alpha·acc + beta·c when beta is not ±0.
func (g *gen64) update() {
	kn := g.kn
	Label(kn.name + "_update")
	alphaReg, betaReg, tmp := kn.vec[g.nacc], kn.vec[g.nacc+1], kn.vec[g.nacc+2]
	alpha, err := Param("alpha").Resolve()
	check(err)
	beta, err := Param("beta").Resolve()
	check(err)
	VBROADCASTSD(alpha.Addr, alphaReg)
	Comment("beta is ±0 exactly when its bits shifted left by one are zero; then C is not read (as BLAS).")
	MOVQ(beta.Addr, R8)
	SHLQ(U8(1), R8)
	JNZ(LabelRef(kn.name + "_beta"))

	Comment("c = alpha·acc")
	for i := 0; i < kn.mr; i++ {
		for v := 0; v < g.nv; v++ {
			VMULPD(alphaReg, g.acc(i, v), g.acc(i, v))
			VMOVUPD(g.acc(i, v), Mem{Base: RDX, Disp: g.vsize * v})
		}
		if i < kn.mr-1 {
			ADDQ(RSI, RDX)
		}
	}
	VZEROUPPER()
	RET()

	Comment("c = alpha·acc + beta·c")
	Label(kn.name + "_beta")
	VBROADCASTSD(beta.Addr, betaReg)
	for i := 0; i < kn.mr; i++ {
		for v := 0; v < g.nv; v++ {
			cm := Mem{Base: RDX, Disp: g.vsize * v}
			VMULPD(cm, betaReg, tmp)
			VFMADD231PD(alphaReg, g.acc(i, v), tmp)
			VMOVUPD(tmp, cm)
		}
		if i < kn.mr-1 {
			ADDQ(RSI, RDX)
		}
	}
	VZEROUPPER()
	RET()
}

func check(err error) {
	if err != nil {
		panic(fmt.Sprint("asm: ", err))
	}
}

// genConvert emits convertPanel, which rounds panels of float64 to float32
// four at a time (VCVTPD2PS rounds as the float32 conversion does, to
// nearest even under the default MXCSR).
func genConvert() {
	TEXT("convertPanel", NOSPLIT, "func(dst []float32, w int, src []float64, ld, rows, np int)")
	Pragma("noescape")
	Doc(
		"convertPanel sets dst[p·w + i] = float32(src[p·ld + i]) for i < rows and",
		"p < np, with AVX: four elements per VCVTPD2PS, the rest one at a time.",
	)
	Load(Param("dst").Base(), RDI)
	Load(Param("w"), R8)
	SHLQ(U8(2), R8)
	Load(Param("src").Base(), RSI)
	Load(Param("ld"), R9)
	SHLQ(U8(3), R9)
	Load(Param("rows"), RDX)
	Load(Param("np"), RCX)
	TESTQ(RCX, RCX)
	JZ(LabelRef("convert_done"))
	Label("convert_row")
	MOVQ(RSI, R10)
	MOVQ(RDI, R11)
	MOVQ(RDX, R12)
	Label("convert_four")
	CMPQ(R12, U32(4))
	JB(LabelRef("convert_tail"))
	VCVTPD2PSY(Mem{Base: R10}, X0)
	VMOVUPS(X0, Mem{Base: R11})
	ADDQ(U32(32), R10)
	ADDQ(U32(16), R11)
	SUBQ(U32(4), R12)
	JMP(LabelRef("convert_four"))
	Label("convert_tail")
	TESTQ(R12, R12)
	JZ(LabelRef("convert_next"))
	CVTSD2SS(Mem{Base: R10}, X0)
	MOVSS(X0, Mem{Base: R11})
	ADDQ(U32(8), R10)
	ADDQ(U32(4), R11)
	DECQ(R12)
	JMP(LabelRef("convert_tail"))
	Label("convert_next")
	ADDQ(R9, RSI)
	ADDQ(R8, RDI)
	DECQ(RCX)
	JNZ(LabelRef("convert_row"))
	Label("convert_done")
	VZEROUPPER()
	RET()
}

// genPeak emits fmaPeakAVX512F32, the float32 peak benchmark's loop: n
// iterations of 24 independent register-to-register VFMADD231PS on 16
// lanes, nothing read from memory, so it runs at the cores' FMA throughput
// (the ceiling the products are measured against, see BenchmarkPeakF32).
func genPeak() {
	TEXT("fmaPeakAVX512F32", NOSPLIT, "func(n int) float32")
	Pragma("noescape")
	Doc(
		"fmaPeakAVX512F32 runs n iterations of 24 independent 16-lane float32",
		"fused multiply-adds (768 flops an iteration) with AVX-512F and returns",
		"lane 0 of their sum, so that the work cannot be skipped.",
	)
	Load(Param("n"), RCX)
	VXORPS(Z0, Z0, Z0)
	for i := 0; i < 24; i++ {
		VMOVAPS(Z0, zmm[i])
	}
	MOVL(U32(0x3f800001), EAX) // 1 + 2⁻²³: the sums grow slowly, stay finite
	VPBROADCASTD(EAX, Z30)
	VMOVAPS(Z30, Z31)
	TESTQ(RCX, RCX)
	JZ(LabelRef("peak_done"))
	Label("peak_loop")
	for i := 0; i < 24; i++ {
		VFMADD231PS(Z30, Z31, zmm[i])
	}
	DECQ(RCX)
	JNZ(LabelRef("peak_loop"))
	Label("peak_done")
	for i := 1; i < 24; i++ {
		VADDPS(zmm[i], Z0, Z0)
	}
	Store(X0, ReturnIndex(0))
	VZEROUPPER()
	RET()
}
