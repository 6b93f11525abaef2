// Command asm generates the amd64 kernels of package vmath with avo.
//
// It lives in its own module so that the main module does not depend on
// avo. Regenerate from internal/vmath with
//
//	go generate
//
// which runs
//
//	go run -C asm . -out ../vmath_amd64.s -stubs ../vmath_amd64_stub.go -pkg vmath
//
// Each kernel computes a block of at most 64 elements, a whole number of
// vectors, and does per lane the same IEEE operations, in the same order,
// as the scalar code it reproduces, so each lane's result has the same
// bits:
//
//   - exp: the FMA path of the Go runtime's math.archExp (math/exp_amd64.s):
//     k = round-to-nearest-even(x·log2(e)) by the MXCSR (CVTSD2SL there,
//     VCVTPD2DQ here), the reduction x − k·ln2 in two fused steps, x/16,
//     the Taylor polynomial by fused multiply-adds, four squarings of the
//     form x·(x+2), a last fused x·p+1, and the product with 2^k built from
//     the exponent bits.
//   - tanh: math.tanh (math/tanh.go) as the Go compiler builds it on amd64
//     below GOAMD64=v3 (a multiply then an add, never fused): the rational
//     polynomial for |x| < 0.625, 1 − 2/(exp(2|x|)+1) with the sign of x
//     up to 0.5·MAXLOG, ±1 beyond, and x itself for ±0; all three
//     branches are computed and blended per lane.
//
// A lane the kernel does not reproduce (exp: x outside [−708, 709], which
// holds NaN, ±Inf, overflow and every result below the normal range;
// tanh: NaN) gets x itself in dst and a clear bit in the returned mask
// (bit i for element i); the caller finishes it with the scalar function.
package main

import (
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Comparison predicates of VCMPPD (ordered, quiet: false for NaN).
const (
	cmpEQ = 0x00
	cmpLT = 0x11
	cmpLE = 0x12
	cmpGE = 0x1D
	cmpGT = 0x1E
)

// The constants, each in one 64-byte row of the table (eight copies, so a
// 256-bit or 512-bit operand reads the same value in every lane).
var consts = []struct {
	name string
	bits uint64
}{
	{"log2e", math.Float64bits(1.4426950408889634073599246810018920)},
	{"ln2u", math.Float64bits(0.69314718055966295651160180568695068359375)},
	{"ln2l", math.Float64bits(0.28235290563031577122588448175013436025525412068e-12)},
	{"sixteenth", math.Float64bits(0.0625)},
	{"t8", math.Float64bits(2.4801587301587301587e-5)},
	{"t7", math.Float64bits(1.9841269841269841270e-4)},
	{"t6", math.Float64bits(1.3888888888888888889e-3)},
	{"t5", math.Float64bits(8.3333333333333333333e-3)},
	{"t4", math.Float64bits(4.1666666666666666667e-2)},
	{"t3", math.Float64bits(1.6666666666666666667e-1)},
	{"half", math.Float64bits(0.5)},
	{"one", math.Float64bits(1.0)},
	{"two", math.Float64bits(2.0)},
	{"bias", 1023},
	{"explo", math.Float64bits(-708)},
	{"exphi", math.Float64bits(709)},
	{"abs", 1<<63 - 1},
	{"sign", 1 << 63},
	{"zero", 0},
	{"p0", math.Float64bits(-9.64399179425052238628e-1)},
	{"p1", math.Float64bits(-9.92877231001918586564e1)},
	{"p2", math.Float64bits(-1.61468768441708447952e3)},
	{"q0", math.Float64bits(1.12811678491632931402e2)},
	{"q1", math.Float64bits(2.23548839060100448583e3)},
	{"q2", math.Float64bits(4.84406305325125486048e3)},
	{"tanhbig", math.Float64bits(0.5 * 8.8029691931113054295988e+01)}, // math.tanh's 0.5·MAXLOG
	{"tanhmid", math.Float64bits(0.625)},
	{"inf", math.Float64bits(math.Inf(1))},
}

var table Mem

// c is the table's row for the named constant.
func c(name string) Mem {
	for i, k := range consts {
		if k.name == name {
			return table.Offset(64 * i)
		}
	}
	panic("no constant " + name)
}

// isa is one instruction set's vector width and its mask operations.
type isa struct {
	name  string
	lanes int
	vec   func(i int) VecPhysical // vector register i at this width
	mask  []Register              // mask registers (ymm for AVX2, k for AVX-512)
	avx2  bool
}

var avx2 = isa{name: "AVX2", lanes: 4, avx2: true,
	vec:  func(i int) VecPhysical { return []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11}[i] },
	mask: []Register{Y12, Y13, Y14},
}

var avx512 = isa{name: "AVX512", lanes: 8,
	vec:  func(i int) VecPhysical { return []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11}[i] },
	mask: []Register{K1, K2, K3},
}

// cmp sets mask m to (x pred y) per lane.
func (a isa) cmp(pred int, y Op, x VecPhysical, m Register) { VCMPPD(U8(pred), y, x, m) }

// blend sets dst to set where mask m is set, else to clear.
func (a isa) blend(m Register, set Op, clear, dst VecPhysical) {
	if a.avx2 {
		VBLENDVPD(m, set, clear, dst)
	} else {
		VBLENDMPD(set, clear, m, dst)
	}
}

// andMask sets m2 to m1 AND m2.
func (a isa) andMask(m1, m2 Register) {
	if a.avx2 {
		VANDPD(m1, m2, m2)
	} else {
		KANDW(m1, m2, m2)
	}
}

// maskBits sets r to the mask's lane bits.
func (a isa) maskBits(m Register, r GPPhysical) {
	if a.avx2 {
		VMOVMSKPD(m, r)
	} else {
		KMOVW(m, r)
	}
}

// and, or: bitwise on 64-bit lanes (VPANDQ/VPORQ need only AVX-512F).
func (a isa) and(x Op, y, dst VecPhysical) {
	if a.avx2 {
		VPAND(x, y, dst)
	} else {
		VPANDQ(x, y, dst)
	}
}

func (a isa) or(x Op, y, dst VecPhysical) {
	if a.avx2 {
		VPOR(x, y, dst)
	} else {
		VPORQ(x, y, dst)
	}
}

// half is the register holding lanes int32s (half the vector's width).
func (a isa) half(v VecPhysical) Register {
	if a.avx2 {
		return v.AsX()
	}
	return v.AsY()
}

// expCore sets x to archExp(x) for lanes of x in [−708, 709] (other lanes
// get unspecified values), with k and t as scratch.
func (a isa) expCore(x, k, t VecPhysical) {
	VMULPD(c("log2e"), x, t)
	if a.avx2 {
		VCVTPD2DQY(t, a.half(k))
	} else {
		VCVTPD2DQ(t, a.half(k))
	}
	VCVTDQ2PD(a.half(k), t)
	VFNMADD231PD(c("ln2u"), t, x) // x −= k·ln2u, fused
	VFNMADD231PD(c("ln2l"), t, x)
	VMULPD(c("sixteenth"), x, x)
	VMOVUPD(c("t8"), t)
	for _, n := range []string{"t7", "t6", "t5", "t4", "t3", "half", "one"} {
		VFMADD213PD(c(n), x, t) // t = t·x + c, fused
	}
	VMULPD(t, x, x)
	for i := 0; i < 3; i++ {
		VADDPD(c("two"), x, t)
		VMULPD(t, x, x)
	}
	VADDPD(c("two"), x, t)
	VFMADD213PD(c("one"), t, x) // x = x·t + 1, fused
	VPMOVSXDQ(a.half(k), t)
	VPADDQ(c("bias"), t, t)
	VPSLLQ(U8(52), t, t)
	VMULPD(t, x, x)
}

// block emits a kernel's loop over the vectors of src (len(src)/lanes of
// them), calling body for each with the source and destination operands;
// body leaves the lane-OK mask in a.mask[0]. The mask bits of the vectors
// are gathered into the returned uint64.
func (a isa) block(name, doc string, body func(src, dst Mem)) {
	TEXT(name, NOSPLIT, "func(dst, src []float64) uint64")
	Pragma("noescape")
	Doc(name+" "+doc, "len(src) is a multiple of the vector width, at most 64; dst is at least as long.")
	Load(Param("src").Base(), RSI)
	Load(Param("dst").Base(), RDI)
	a.loop(name, []GPPhysical{RDI}, func(ptrs []Mem) { body(ptrs[0], ptrs[1]) })
}

// loop emits the loop of a kernel whose parameter src (in RSI) has
// len(src)/lanes vectors, the other pointers in outs stepping with it:
// body gets src's operand then the outs' and leaves the lane-OK mask in
// a.mask[0], whose bits over the vectors are the kernel's uint64 result.
func (a isa) loop(name string, outs []GPPhysical, body func(ptrs []Mem)) {
	Load(Param("src").Len(), R8)
	SHRQ(U8(map[int]uint64{4: 2, 8: 3}[a.lanes]), R8)
	XORQ(RBX, RBX) // the mask
	XORQ(RCX, RCX) // its shift
	TESTQ(R8, R8)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	ptrs := []Mem{{Base: RSI}}
	for _, r := range outs {
		ptrs = append(ptrs, Mem{Base: r})
	}
	body(ptrs)
	a.maskBits(a.mask[0], EAX)
	SHLQ(CL, RAX)
	ORQ(RAX, RBX)
	ADDQ(U8(a.lanes), RCX)
	for _, r := range append([]GPPhysical{RSI}, outs...) {
		ADDQ(U8(8*a.lanes), r)
	}
	DECQ(R8)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	Store(RBX, ReturnIndex(0))
	RET()
}

// genExp emits the exp kernel.
func genExp(a isa) {
	x, xo, k, t := a.vec(0), a.vec(1), a.vec(2), a.vec(3)
	ok, m := a.mask[0], a.mask[1]
	a.block("exp"+a.name, "sets dst[i] = math.Exp(src[i]) where src[i] is in [−708, 709] and mask bit i; elsewhere dst[i] = src[i].",
		func(src, dst Mem) {
			VMOVUPD(src, xo)
			a.cmp(cmpGE, c("explo"), xo, ok)
			a.cmp(cmpLE, c("exphi"), xo, m)
			a.andMask(m, ok)
			VMOVAPD(xo, x)
			a.expCore(x, k, t)
			a.blend(ok, x, xo, x)
			VMOVUPD(x, dst)
		})
}

// genTanh emits the tanh kernel.
func genTanh(a isa) {
	x, r := a.vec(0), a.vec(5)
	ok := a.mask[0]
	a.block("tanh"+a.name, "sets dst[i] = math.Tanh(src[i]) and mask bit i where src[i] is not NaN; elsewhere dst[i] = src[i].",
		func(src, dst Mem) {
			VMOVUPD(src, x)
			a.tanhCore("")
			a.cmp(cmpEQ, x, x, ok) // not NaN
			a.blend(ok, r, x, r)
			VMOVUPD(r, dst)
		})
}

// tanhCore sets vector 5 to math.Tanh of vector 0 for lanes that are not
// NaN, with vectors 1 to 4 and 6 to 8 and mask 1 as scratch. With a
// label skip (not ""), a vector with no lane of |x| ≥ 0.625 jumps over
// the exp branch (its lanes would all take the polynomial's value: the
// same bits, without an exp and a division), with R9 as scratch.
func (a isa) tanhCore(skip string) {
	x, z, s, n, d, r, e, k, t := a.vec(0), a.vec(1), a.vec(2), a.vec(3), a.vec(4), a.vec(5), a.vec(6), a.vec(7), a.vec(8)
	m := a.mask[1]
	{
		{
			a.and(c("abs"), x, z)
			// |x| < 0.625: x + x·s·((p0·s+p1)·s+p2)/(((s+q0)·s+q1)·s+q2), s = x·x.
			VMULPD(x, x, s)
			VMULPD(c("p0"), s, n)
			VADDPD(c("p1"), n, n)
			VMULPD(s, n, n)
			VADDPD(c("p2"), n, n)
			VADDPD(c("q0"), s, d)
			VMULPD(s, d, d)
			VADDPD(c("q1"), d, d)
			VMULPD(s, d, d)
			VADDPD(c("q2"), d, d)
			VMULPD(s, x, r)
			VMULPD(n, r, r)
			VDIVPD(d, r, r)
			VADDPD(r, x, r)
			a.cmp(cmpEQ, c("zero"), x, m) // ±0 → x
			a.blend(m, x, r, r)
			// |x| ≥ 0.625: ±(1 − 2/(exp(2|x|)+1)), ±1 beyond 0.5·MAXLOG.
			if skip != "" {
				a.cmp(cmpGE, c("tanhmid"), z, m)
				a.maskBits(m, R9L)
				TESTL(R9L, R9L)
				JZ(LabelRef(skip))
			}
			VADDPD(z, z, e)
			a.expCore(e, k, t)
			VADDPD(c("one"), e, e)
			VMOVUPD(c("two"), t)
			VDIVPD(e, t, e)
			VMOVUPD(c("one"), t)
			VSUBPD(e, t, e)
			a.cmp(cmpGT, c("tanhbig"), z, m)
			a.blend(m, c("one"), e, e)
			a.and(c("sign"), x, t)
			a.or(t, e, e)
			a.cmp(cmpGE, c("tanhmid"), z, m)
			a.blend(m, e, r, r)
			if skip != "" {
				Label(skip)
			}
		}
	}
}

// tanhExpBlock is block for the tanh-exp kernel: func(h, e, src []float64,
// div, mul float64) uint64, with div and mul broadcast into vectors 9 and
// 10 before the loop, and h and e stepped with src.
func (a isa) tanhExpBlock(name, doc string, body func(src, h, e Mem)) {
	TEXT(name, NOSPLIT, "func(h, e, src []float64, div, mul float64) uint64")
	Pragma("noescape")
	Doc(name+" "+doc, "len(src) is a multiple of the vector width, at most 64; h and e are at least as long.")
	Load(Param("src").Base(), RSI)
	Load(Param("h").Base(), RDI)
	Load(Param("e").Base(), RDX)
	for i, name := range []string{"div", "mul"} {
		v, err := Param(name).Resolve()
		if err != nil {
			panic(err)
		}
		VBROADCASTSD(v.Addr, a.vec(9+i))
	}
	a.loop(name, []GPPhysical{RDI, RDX}, func(ptrs []Mem) { body(ptrs[0], ptrs[1], ptrs[2]) })
}

// genTanhExp emits the tanh-exp kernel: per lane q = src/div, h =
// math.Tanh(q), e = math.Exp(mul·h), each operation math's and Go's.
func genTanhExp(a isa) {
	x, r, e, k, t, src := a.vec(0), a.vec(5), a.vec(6), a.vec(7), a.vec(8), a.vec(11)
	ok, m := a.mask[0], a.mask[2]
	a.tanhExpBlock("tanhExp"+a.name, "sets h[i] = math.Tanh(src[i]/div), e[i] = math.Exp(mul·h[i]) and mask bit i where src[i] is finite, the quotient is not NaN and mul·h[i] is in [−708, 709]; elsewhere h[i] = src[i] and e[i] is unspecified.",
		func(srcM, hM, eM Mem) {
			VMOVUPD(srcM, src)
			a.and(c("abs"), src, x)
			a.cmp(cmpLT, c("inf"), x, ok) // |src| < +Inf: finite (false for NaN)
			VDIVPD(a.vec(9), src, x)      // x = src/div
			a.cmp(cmpEQ, x, x, m)         // the quotient is not NaN
			a.andMask(m, ok)
			a.tanhCore("tanhExp" + a.name + "_small")
			VMULPD(a.vec(10), r, e) // e = mul·h
			a.cmp(cmpGE, c("explo"), e, m)
			a.andMask(m, ok)
			a.cmp(cmpLE, c("exphi"), e, m)
			a.andMask(m, ok)
			a.expCore(e, k, t)
			a.blend(ok, r, src, r)
			VMOVUPD(r, hM)
			VMOVUPD(e, eM)
		})
}

func main() {
	ConstraintExpr("amd64,!purego") // avo v0.5 takes the old +build syntax
	table = GLOBL("vmathconst", RODATA|NOPTR)
	for i, k := range consts {
		for l := 0; l < 8; l++ {
			DATA(64*i+8*l, U64(k.bits))
		}
	}
	for _, a := range []isa{avx2, avx512} {
		genExp(a)
		genTanh(a)
		genTanhExp(a)
	}
	Generate()
}
