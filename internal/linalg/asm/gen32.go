package main

// The float32 kernels: packed panels (the GemmF32 kernels), A read in
// place (strided), a bias and ReLU in the update (relu), and the narrow
// 12×8 one (see ../packed32.go).

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// genKernels32 emits the float32 kernels.
func genKernels32() {
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
	g := newGen32(kn)
	g.setup()
	g.loop()
	Label(kn.name + "_update")
	if kn.relu {
		updateReLU32(kn, g.nv, g.vsize)
		return
	}
	update32(kn, g.nv, g.vsize)
}

// gen32s is the state of one float32 kernel's generation: its tile, its
// accumulator and panel registers, and the registers that address A.
type gen32s struct {
	kn           kernel
	nv, nacc     int // vector registers per tile row; accumulators
	bReg         []VecPhysical
	aReg         VecPhysical // only without embedded broadcast
	vsize        int         // bytes per vector register
	astep, bstep int         // bytes per k step of the packed panels
	aBase        []GPPhysical
}

func newGen32(kn kernel) *gen32s {
	lanes := 2 * kn.lanes // floats per vector register
	nv := kn.nr / lanes
	nacc := kn.mr * nv
	return &gen32s{kn: kn, nv: nv, nacc: nacc, bReg: kn.vec[nacc : nacc+nv], aReg: kn.vec[nacc+nv],
		vsize: 4 * lanes, astep: 4 * kn.mr, bstep: 4 * kn.nr, aBase: []GPPhysical{RAX, R13, RDI}[:(kn.mr+3)/4]}
}

// acc is the accumulator of row i, vector v of the tile.
func (g *gen32s) acc(i, v int) VecPhysical { return g.kn.vec[i*g.nv+v] }

// setup emits the kernel's header, loads the arguments, zeroes the
// accumulators and prefetches the C tile.
func (g *gen32s) setup() {
	kn := g.kn
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
	if kn.strided {
		Comment("A in place: rows 0–3 from AX, 4–7 from R13, 8–11 from DI, as base,",
			"base+R11, base+2·R11, base+R12 with R11 = lda·4, R12 = 3·lda·4; the",
			"bases move 4 bytes a k step.")
		loadStrided(2, g.aBase)
	}

	Comment("Zero the accumulators.")
	for i := 0; i < g.nacc; i++ {
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
}

// aAt returns the address of row i of A, u steps on.
func (g *gen32s) aAt(u, i int) Mem {
	if !g.kn.strided {
		return Mem{Base: RAX, Disp: u*g.astep + 4*i}
	}
	return stridedAt(g.aBase, i, 4*u)
}

// advance emits the moves of A and B on by u steps.
func (g *gen32s) advance(u int) {
	if g.kn.strided {
		for _, r := range g.aBase {
			ADDQ(U32(4*u), r)
		}
	} else {
		ADDQ(U32(u*g.astep), RAX)
	}
	ADDQ(U32(u*g.bstep), RBX)
}

// step emits one k step, u steps past A and BX.
func (g *gen32s) step(u int) {
	kn := g.kn
	for v := 0; v < g.nv; v++ {
		VMOVUPS(Mem{Base: RBX, Disp: u*g.bstep + g.vsize*v}, g.bReg[v])
	}
	for i := 0; i < kn.mr; i++ {
		am := g.aAt(u, i)
		if kn.bcst {
			for v := 0; v < g.nv; v++ {
				VFMADD231PS_BCST(am, g.bReg[v], g.acc(i, v))
			}
		} else {
			VBROADCASTSS(am, g.aReg)
			for v := 0; v < g.nv; v++ {
				VFMADD231PS(g.bReg[v], g.aReg, g.acc(i, v))
			}
		}
	}
}

// loop emits the k loop: four steps an iteration, then one at a time.
func (g *gen32s) loop() {
	name := g.kn.name
	Comment("Main loop: four k steps per iteration.")
	CMPQ(RCX, U32(4))
	JB(LabelRef(name + "_tail"))
	Label(name + "_loop")
	for u := 0; u < 4; u++ {
		g.step(u)
	}
	g.advance(4)
	SUBQ(U32(4), RCX)
	CMPQ(RCX, U32(4))
	JAE(LabelRef(name + "_loop"))

	Comment("Remaining k steps, one at a time.")
	Label(name + "_tail")
	TESTQ(RCX, RCX)
	JZ(LabelRef(name + "_update"))
	Label(name + "_tailloop")
	g.step(0)
	g.advance(1)
	DECQ(RCX)
	JNZ(LabelRef(name + "_tailloop"))
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
