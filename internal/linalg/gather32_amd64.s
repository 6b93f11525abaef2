//go:build amd64 && !purego

#include "textflag.h"

// func copyRows(dst []float32, w int, b []float32, boff []int, c0 int)
// Requires: AVX; w a positive multiple of 8.
TEXT ·copyRows(SB), NOSPLIT, $0-88
	MOVQ dst_base+0(FP), DI
	MOVQ w+24(FP), DX
	MOVQ b_base+32(FP), SI
	MOVQ boff_base+56(FP), R8
	MOVQ boff_len+64(FP), CX
	MOVQ c0+80(FP), R9
	LEAQ (SI)(R9*4), SI
	TESTQ CX, CX
	JZ   done
	CMPQ DX, $32
	JNE  row

row32:
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
	JNZ     row32
	JMP     done

row:
	MOVQ (R8), AX
	LEAQ (SI)(AX*4), AX
	MOVQ DX, R10

eight:
	VMOVUPS (AX), Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, AX
	ADDQ    $32, DI
	SUBQ    $8, R10
	JNZ     eight
	ADDQ    $8, R8
	DECQ    CX
	JNZ     row

done:
	VZEROUPPER
	RET

// func copyRowsMask(dst []float32, w int, b []float32, boff []int, c0 int, class []int32, vec []uint32)
// Requires: AVX; w a positive multiple of 8.
TEXT ·copyRowsMask(SB), NOSPLIT, $0-136
	MOVQ dst_base+0(FP), DI
	MOVQ w+24(FP), DX
	MOVQ b_base+32(FP), SI
	MOVQ boff_base+56(FP), R8
	MOVQ boff_len+64(FP), CX
	MOVQ c0+80(FP), R9
	MOVQ class_base+88(FP), R12
	MOVQ vec_base+112(FP), R13
	LEAQ (SI)(R9*4), SI
	MOVQ DX, R11
	SHLQ $2, R11
	TESTQ CX, CX
	JZ   mdone
	CMPQ DX, $32
	JNE  mrow

mrow32:
	MOVQ    (R8), AX
	LEAQ    (SI)(AX*4), AX
	MOVLQSX (R12), BX
	IMULQ   R11, BX
	ADDQ    R13, BX
	VMOVUPS (AX), Y0
	VMOVUPS 32(AX), Y1
	VMOVUPS 64(AX), Y2
	VMOVUPS 96(AX), Y3
	VANDPS  (BX), Y0, Y0
	VANDPS  32(BX), Y1, Y1
	VANDPS  64(BX), Y2, Y2
	VANDPS  96(BX), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $8, R8
	ADDQ    $4, R12
	ADDQ    $128, DI
	DECQ    CX
	JNZ     mrow32
	JMP     mdone

mrow:
	MOVQ    (R8), AX
	LEAQ    (SI)(AX*4), AX
	MOVLQSX (R12), BX
	IMULQ   R11, BX
	ADDQ    R13, BX
	MOVQ    DX, R10

meight:
	VMOVUPS (AX), Y0
	VANDPS  (BX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, AX
	ADDQ    $32, BX
	ADDQ    $32, DI
	SUBQ    $8, R10
	JNZ     meight
	ADDQ    $8, R8
	ADDQ    $4, R12
	DECQ    CX
	JNZ     mrow

mdone:
	VZEROUPPER
	RET
