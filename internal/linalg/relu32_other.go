//go:build !amd64 || purego

package linalg

// reluConvert is the assembly conversion of the amd64 build; never called
// in this one (hasConvert is false).
func reluConvert(dst []float32, src []float64) {
	panic("linalg: reluConvert without assembly")
}
