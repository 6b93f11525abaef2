//go:build amd64 && !purego

#include "textflag.h"

// func copyRows32(dst []float32, b []float32, boff []int, c0 int)
// Requires: AVX
TEXT ·copyRows32(SB), NOSPLIT, $0-80
	MOVQ dst_base+0(FP), DI
	MOVQ b_base+24(FP), SI
	MOVQ boff_base+48(FP), R8
	MOVQ boff_len+56(FP), CX
	MOVQ c0+72(FP), R9
	LEAQ (SI)(R9*4), SI
	TESTQ CX, CX
	JZ   done

loop:
	MOVQ    (R8), AX
	LEAQ    (SI)(AX*4), AX
	VMOVUPS (AX), Y0
	VMOVUPS 32(AX), Y1
	VMOVUPS 64(AX), Y2
	VMOVUPS 96(AX), Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $8, R8
	ADDQ    $128, DI
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET
