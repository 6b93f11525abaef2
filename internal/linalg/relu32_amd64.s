//go:build amd64 && !purego

#include "textflag.h"

// absMask clears a float64's sign: Go's max(NaN, 0) is a NaN with the sign
// clear, and a kept lane is otherwise positive.
DATA absMask<>+0(SB)/8, $0x7fffffffffffffff
DATA absMask<>+8(SB)/8, $0x7fffffffffffffff
DATA absMask<>+16(SB)/8, $0x7fffffffffffffff
DATA absMask<>+24(SB)/8, $0x7fffffffffffffff
GLOBL absMask<>(SB), RODATA|NOPTR, $32

// func reluConvert(dst []float32, src []float64)
// Requires: AVX; len(src) a multiple of 4.
TEXT ·reluConvert(SB), NOSPLIT, $0-48
	MOVQ   dst_base+0(FP), DI
	MOVQ   src_base+24(FP), SI
	MOVQ   src_len+32(FP), CX
	SHRQ   $2, CX
	JZ     done
	VXORPD Y2, Y2, Y2
	VMOVUPD absMask<>(SB), Y3

four:
	VMOVUPD   (SI), Y0
	VCMPPD    $6, Y2, Y0, Y1 // src NLE_UQ 0: src > 0 or a NaN
	VANDPD    Y1, Y0, Y0
	VANDPD    Y3, Y0, Y0
	VCVTPD2PSY Y0, X0
	VMOVUPS   X0, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	DECQ      CX
	JNZ       four

done:
	VZEROUPPER
	RET
