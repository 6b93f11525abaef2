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

	gen32(kernel{
		name: "kernel6x16AVX2F32",
		doc: []string{
			"kernel6x16AVX2F32 computes a 6×16 tile of C in float32 with AVX2 and FMA3.",
			"Step p of the k loop reads the packed panels a[6p : 6p+6] and",
			"b[16p : 16p+16]; c (float64) holds the tile's rows at stride ldc.",
			"",
			"Registers: Y0–Y11 hold the 96 float32 accumulators, row i in Y(2i)",
			"(columns 0–7) and Y(2i+1) (columns 8–15); Y12, Y13 hold the current row",
			"of the B panel; Y14 holds a broadcast element of the A panel: per k step",
			"2 loads, 6 broadcasts, 12 FMAs. The update widens each accumulator to",
			"float64 (exactly) in Y14, Y15 and reuses it as scratch; Y12, Y13 hold",
			"alpha and beta.",
		},
		mr: 6, nr: 16, lanes: 4, vec: ymm,
	})

	gen32(kernel{
		name: "kernel12x32AVX512F32",
		doc: []string{
			"kernel12x32AVX512F32 computes a 12×32 tile of C in float32 with AVX-512F.",
			"Step p of the k loop reads the packed panels a[12p : 12p+12] and",
			"b[32p : 32p+32]; c (float64) holds the tile's rows at stride ldc.",
			"",
			"Registers: Z0–Z23 hold the 384 float32 accumulators, row i in Z(2i)",
			"(columns 0–15) and Z(2i+1) (columns 16–31); Z24, Z25 hold the current",
			"row of the B panel; A is broadcast by the FMAs from memory: per k step",
			"2 loads and 24 FMAs. The update widens each accumulator to float64",
			"(exactly) in Z26, Z27 and reuses it as scratch; Z24, Z25 hold alpha and beta.",
		},
		mr: 12, nr: 32, lanes: 8, vec: zmm, bcst: true,
	})

	gen32(kernel{
		name: "kernel6x16AVX2F32S",
		doc: []string{
			"kernel6x16AVX2F32S is kernel6x16AVX2F32 reading A in place: step p",
			"reads a[i·lda + p] for rows i < 6 (rows of a row-major float32",
			"matrix, no packed panel), with the same arithmetic, so the same bits.",
		},
		mr: 6, nr: 16, lanes: 4, vec: ymm, strided: true,
	})

	gen32(kernel{
		name: "kernel12x32AVX512F32S",
		doc: []string{
			"kernel12x32AVX512F32S is kernel12x32AVX512F32 reading A in place: step p",
			"reads a[i·lda + p] for rows i < 12 (rows of a row-major float32",
			"matrix, no packed panel), with the same arithmetic, so the same bits.",
		},
		mr: 12, nr: 32, lanes: 8, vec: zmm, bcst: true, strided: true,
	})

	gen32(kernel{
		name: "kernel12x8AVX512F32",
		doc: []string{
			"kernel12x8AVX512F32 computes a 12×8 tile of C in float32 with AVX-512F",
			"and AVX-512VL on 256-bit registers: for products of at most 8 columns",
			"(a coupling's output layer), where 32- or 16-column tiles would be",
			"mostly padding. Step p reads the packed panels a[12p : 12p+12] and",
			"b[8p : 8p+8]; c (float64) holds the tile's rows at stride ldc.",
			"",
			"Registers: Y0–Y11 hold the 96 float32 accumulators, row i in Y(i);",
			"Y12 holds the current row of the B panel; A is broadcast by the FMAs",
			"from memory (EVEX): per k step 1 load and 12 FMAs. The update widens",
			"each accumulator to float64 in Y14, Y15; Y12, Y13 hold alpha and beta.",
		},
		mr: 12, nr: 8, lanes: 4, vec: ymm, bcst: true,
	})

	gen32(kernel{
		name: "kernel12x8AVX512F32S",
		doc: []string{
			"kernel12x8AVX512F32S is kernel12x8AVX512F32 reading A in place: step p",
			"reads a[i·lda + p] for rows i < 12.",
		},
		mr: 12, nr: 8, lanes: 4, vec: ymm, bcst: true, strided: true,
	})

	gen32(kernel{
		name: "kernel12x32AVX512F32R",
		doc: []string{
			"kernel12x32AVX512F32R is kernel12x32AVX512F32 (packed panels) with a",
			"hidden layer's bias and ReLU in its update: c (float32, row stride ldc)",
			"gets float32(max(acc + bias[i·ldb + j], 0)) with BiasReLU32's bits",
			"(ldb = 0: one bias row for every row of the tile).",
		},
		mr: 12, nr: 32, lanes: 8, vec: zmm, bcst: true, relu: true,
	})

	gen32(kernel{
		name: "kernel12x32AVX512F32SR",
		doc: []string{
			"kernel12x32AVX512F32SR is kernel12x32AVX512F32R reading A in place:",
			"step p reads a[i·lda + p] for rows i < 12.",
		},
		mr: 12, nr: 32, lanes: 8, vec: zmm, bcst: true, strided: true, relu: true,
	})

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
	Load(Param("lda"), R11)
	SHLQ(U8(3), R11)
	LEAQ(Mem{Base: R11, Index: R11, Scale: 2}, R12)
	for i := 1; i < len(g.aBase); i++ {
		LEAQ(Mem{Base: g.aBase[i-1], Index: R11, Scale: 4}, g.aBase[i])
	}
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
func (g *gen64) aAt(i int) Mem {
	m := Mem{Base: g.aBase[i/4]}
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

// gen32 emits one float32 kernel: kn.lanes is the doubles per vector
// register (floats: twice that). Its B panel is always packed float32:
// step p of B is the NR floats at b[p·NR]. Step p of A is the MR floats at
// a[p·MR] (a packed panel) or, when kn.strided, element (i, p) of A is
// a[i·lda + p] (rows of a row-major float32 matrix read in place, lda the
// argument after a). Per element it computes, in float32, acc = fma(a, b, acc) for p = 0 … k-1
// from zero, then in float64 c = alpha·acc (beta = 0, c not read) or
// fma(alpha, acc, beta·c), acc widened exactly.
func gen32(kn kernel) {
	sig := "func(k int, a []float32, b []float32, c []float64, ldc int, alpha, beta float64)"
	switch {
	case kn.relu && kn.strided:
		sig = "func(k int, a []float32, lda int, b []float32, bias []float64, ldb int, c []float32, ldc int)"
	case kn.relu:
		sig = "func(k int, a []float32, b []float32, bias []float64, ldb int, c []float32, ldc int)"
	case kn.strided:
		sig = "func(k int, a []float32, lda int, b []float32, c []float64, ldc int, alpha, beta float64)"
	}
	csize := 8 // bytes per element of c
	if kn.relu {
		csize = 4
	}
	TEXT(kn.name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(kn.doc...)

	lanes := 2 * kn.lanes // floats per vector register
	nv := kn.nr / lanes   // vector registers per tile row
	nacc := kn.mr * nv
	acc := func(i, v int) VecPhysical { return kn.vec[i*nv+v] }
	bReg := kn.vec[nacc : nacc+nv]
	aReg := kn.vec[nacc+nv] // only without embedded broadcast
	vsize := 4 * lanes      // bytes per vector register
	astep, bstep := 4*kn.mr, 4*kn.nr

	Comment("AX, BX: the A panel (or A's first row) and the packed B panel at the",
		"current step; CX counts k steps; DX is the current row of the C tile,",
		"SI is ldc times the size of c's elements.")
	Load(Param("k"), RCX)
	Load(Param("a").Base(), RAX)
	Load(Param("b").Base(), RBX)
	Load(Param("c").Base(), RDX)
	Load(Param("ldc"), RSI)
	if kn.relu {
		SHLQ(U8(2), RSI)
	} else {
		SHLQ(U8(3), RSI)
	}
	aBase := []GPPhysical{RAX, R13, RDI}[:(kn.mr+3)/4]
	if kn.strided {
		Comment("A in place: rows 0–3 from AX, 4–7 from R13, 8–11 from DI, as base,",
			"base+R11, base+2·R11, base+R12 with R11 = lda·4, R12 = 3·lda·4; the",
			"bases move 4 bytes a k step.")
		Load(Param("lda"), R11)
		SHLQ(U8(2), R11)
		LEAQ(Mem{Base: R11, Index: R11, Scale: 2}, R12)
		for i := 1; i < len(aBase); i++ {
			LEAQ(Mem{Base: aBase[i-1], Index: R11, Scale: 4}, aBase[i])
		}
	}
	// aAt returns the address of row i of A, u steps on.
	aAt := func(u, i int) Mem {
		if !kn.strided {
			return Mem{Base: RAX, Disp: u*astep + 4*i}
		}
		m := Mem{Base: aBase[i/4], Disp: 4 * u}
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
	// advance moves A and B on by u steps.
	advance := func(u int) {
		if kn.strided {
			for _, r := range aBase {
				ADDQ(U32(4*u), r)
			}
		} else {
			ADDQ(U32(u*astep), RAX)
		}
		ADDQ(U32(u*bstep), RBX)
	}

	Comment("Zero the accumulators.")
	for i := 0; i < nacc; i++ {
		if kn.lanes == 8 {
			VPXORD(kn.vec[i], kn.vec[i], kn.vec[i])
		} else {
			VXORPS(kn.vec[i], kn.vec[i], kn.vec[i])
		}
	}

	Comment("Prefetch the C tile (every cache line of each row) for the final update.")
	MOVQ(RDX, R8)
	for i := 0; i < kn.mr; i++ {
		for off := 0; off < csize*kn.nr; off += 64 {
			PREFETCHT0(Mem{Base: R8, Disp: off})
		}
		if i < kn.mr-1 {
			ADDQ(RSI, R8)
		}
	}

	// step emits one k step, u steps past AX and BX.
	step := func(u int) {
		for v := 0; v < nv; v++ {
			VMOVUPS(Mem{Base: RBX, Disp: u*bstep + vsize*v}, bReg[v])
		}
		for i := 0; i < kn.mr; i++ {
			am := aAt(u, i)
			if kn.bcst {
				for v := 0; v < nv; v++ {
					VFMADD231PS_BCST(am, bReg[v], acc(i, v))
				}
			} else {
				VBROADCASTSS(am, aReg)
				for v := 0; v < nv; v++ {
					VFMADD231PS(bReg[v], aReg, acc(i, v))
				}
			}
		}
	}

	Comment("Main loop: four k steps per iteration.")
	CMPQ(RCX, U32(4))
	JB(LabelRef(kn.name + "_tail"))
	Label(kn.name + "_loop")
	for u := 0; u < 4; u++ {
		step(u)
	}
	advance(4)
	SUBQ(U32(4), RCX)
	CMPQ(RCX, U32(4))
	JAE(LabelRef(kn.name + "_loop"))

	Comment("Remaining k steps, one at a time.")
	Label(kn.name + "_tail")
	TESTQ(RCX, RCX)
	JZ(LabelRef(kn.name + "_update"))
	Label(kn.name + "_tailloop")
	step(0)
	advance(1)
	DECQ(RCX)
	JNZ(LabelRef(kn.name + "_tailloop"))

	Label(kn.name + "_update")
	if kn.relu {
		updateReLU32(kn, nv, vsize)
		return
	}
	update32(kn, nv, vsize)
}

// updateReLU32 emits a relu kernel's final update: per element, acc widened
// to float64 (exactly), bias[i·ldb + j] added in float64, then VMAXPD with zero
// (the sum where it is a NaN or a zero), the sign bit cleared, and
// VCVTPD2PS (round to nearest even): linalg.BiasReLU32's bits on c =
// acc, float32(max(acc + bias[i·ldb + j], 0)) as Go computes it. The
// AVX-512 form only (16 floats a register).
func updateReLU32(kn kernel, nv, vsize int) {
	if kn.lanes != 8 {
		panic("asm: updateReLU32 is AVX-512 only")
	}
	nacc := kn.mr * nv
	acc := func(i, v int) VecPhysical { return kn.vec[i*nv+v] }
	zero, mask := kn.vec[nacc], kn.vec[nacc+1]
	lo, hi := kn.vec[nacc+2], kn.vec[nacc+3]
	Comment("BX: the bias row, R9 = ldb·8; zero and the mask 0x7fff… (all ones",
		"shifted right by one).")
	Load(Param("bias").Base(), RBX)
	Load(Param("ldb"), R9)
	SHLQ(U8(3), R9)
	VPXORQ(zero, zero, zero)
	VPTERNLOGQ(U8(0xff), mask, mask, mask)
	VPSRLQ(U8(1), mask, mask)
	for i := 0; i < kn.mr; i++ {
		for v := 0; v < nv; v++ {
			a := acc(i, v)
			VCVTPS2PD(a.AsY(), lo)
			VEXTRACTF64X4(U8(1), a, hi.AsY())
			VCVTPS2PD(hi.AsY(), hi)
			for h, w := range []VecPhysical{lo, hi} {
				VADDPD(Mem{Base: RBX, Disp: 2*vsize*v + vsize*h}, w, w)
				VMAXPD(w, zero, w) // Intel: max(src1 = 0, src2 = sum)
				VPANDQ(mask, w, w)
				VCVTPD2PS(w, w.AsY())
				VMOVUPS(w.AsY(), Mem{Base: RDX, Disp: vsize*v + vsize/2*h})
			}
		}
		if i < kn.mr-1 {
			ADDQ(RSI, RDX)
			ADDQ(R9, RBX)
		}
	}
	VZEROUPPER()
	RET()
}

// update32 emits a float32 kernel's final update, c = alpha·acc (+ beta·c),
// widening each accumulator to float64 on the way.
func update32(kn kernel, nv, vsize int) {
	nacc := kn.mr * nv
	acc := func(i, v int) VecPhysical { return kn.vec[i*nv+v] }
	alphaReg, betaReg := kn.vec[nacc], kn.vec[nacc+1]
	lo, hi := kn.vec[nacc+2], kn.vec[nacc+3]
	alpha, err := Param("alpha").Resolve()
	check(err)
	beta, err := Param("beta").Resolve()
	check(err)
	VBROADCASTSD(alpha.Addr, alphaReg)
	VBROADCASTSD(beta.Addr, betaReg)
	Comment("R8 is zero exactly when beta is ±0: then C is not read (as BLAS).")
	MOVQ(beta.Addr, R8)
	SHLQ(U8(1), R8)
	// widen sets lo, hi to the float64 values of acc's low and high halves.
	widen := func(a VecPhysical) {
		if kn.lanes == 8 {
			VCVTPS2PD(a.AsY(), lo)
			VEXTRACTF64X4(U8(1), a, hi.AsY())
			VCVTPS2PD(hi.AsY(), hi)
		} else {
			VCVTPS2PD(a.AsX(), lo)
			VEXTRACTF128(U8(1), a, hi.AsX())
			VCVTPS2PD(hi.AsX(), hi)
		}
	}
	for _, withBeta := range []bool{false, true} {
		if withBeta {
			Comment("c = alpha·acc + beta·c")
			Label(kn.name + "_beta")
		} else {
			JNZ(LabelRef(kn.name + "_beta"))
			Comment("c = alpha·acc")
		}
		for i := 0; i < kn.mr; i++ {
			for v := 0; v < nv; v++ {
				widen(acc(i, v))
				for h, w := range []VecPhysical{lo, hi} {
					cm := Mem{Base: RDX, Disp: 2*vsize*v + vsize*h}
					if withBeta {
						VMULPD(cm, betaReg, acc(i, v))
						VFMADD231PD(alphaReg, w, acc(i, v))
						VMOVUPD(acc(i, v), cm)
					} else {
						VMULPD(alphaReg, w, w)
						VMOVUPD(w, cm)
					}
				}
			}
			if i < kn.mr-1 {
				ADDQ(RSI, RDX)
			}
		}
		VZEROUPPER()
		RET()
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
