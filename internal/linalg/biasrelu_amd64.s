//go:build amd64 && !purego

#include "textflag.h"

DATA absmask<>+0(SB)/8, $0x7fffffffffffffff
GLOBL absmask<>(SB), RODATA|NOPTR, $8

// func biasReLU32x8(dst *float32, src, b *float64, n int)
// Requires: AVX512F
TEXT ·biasReLU32x8(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	VPXORQ Z2, Z2, Z2
	VBROADCASTSD absmask<>(SB), Z3
loop:
	VMOVUPD (SI), Z0
	VADDPD (DX), Z0, Z0
	// Intel VMAXPD dst, src1=0, src2=sum: sum where either is a NaN or
	// both are zeros.
	VMAXPD Z0, Z2, Z1
	VPANDQ Z3, Z1, Z1
	VCVTPD2PS Z1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ loop
	VZEROUPPER
	RET

// func biasReLU64x8(dst, src, b *float64, n int)
// Requires: AVX512F
TEXT ·biasReLU64x8(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	VPXORQ Z2, Z2, Z2
	VBROADCASTSD absmask<>(SB), Z3
loop64:
	VMOVUPD (SI), Z0
	VADDPD (DX), Z0, Z0
	VMAXPD Z0, Z2, Z1
	VPANDQ Z3, Z1, Z1
	VMOVUPD Z1, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $8, CX
	JNZ loop64
	VZEROUPPER
	RET
